"""Fixtures of the suites tests: the demo company (agent/tests/test_turn.py's fixture) with its whole help centre and
the demo suite."""

from __future__ import annotations

import pytest

from agent.tests.test_turn import demo_company  # noqa: F401 - the shared demo company fixture


@pytest.fixture
def demo_help_centre(demo_company, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The demo company with every help-centre source (the internal SOPs included: they must never be quoted) and the
    identity token secret shared with the host site (signed-token cases)."""
    from django.contrib.auth import get_user_model

    from governance.models import SecretKind
    from governance.secrets import secret_create
    from knowledge.demo import seed_knowledge

    monkeypatch.setenv("STEWARD_TEST_IDENTITY_SECRET", "a-test-identity-secret-shared-with-the-host-site")
    secret_create(
        actor=None,
        name="identity_token_secret",
        kind=SecretKind.ENVIRONMENT,
        env_var="STEWARD_TEST_IDENTITY_SECRET",
        owner=get_user_model().objects.get(username="maya.ops"),  # seed_governance's support admin
    )
    seed_knowledge()


@pytest.fixture
def demo_suite(demo_help_centre):  # type: ignore[no-untyped-def]
    """The demo suite ``demo``, seeded as seed_demo seeds it."""
    from suites.demo import seed_suites
    from suites.models import RegressionSuite

    seed_suites()
    return RegressionSuite.objects.get(name="demo")
