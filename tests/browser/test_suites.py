"""A regression suite run from the admin in a real browser: a support manager opens the demo suite, presses Run, sees
the run's progress while the real Celery worker runs it, then the finished result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "suite-run.png"
PASSWORD = "correct horse battery staple"  # governance.tests.factories.UserFactory
# The identity token secret the demo suite's signed-token cases sign with: an environment-variable secret, set before
# the session's worker process starts (it inherits this process's environment; conftest.service_env).
IDENTITY_SECRET_VAR = "STEWARD_BROWSER_TEST_IDENTITY_SECRET"
os.environ.setdefault(IDENTITY_SECRET_VAR, "a-browser-test-identity-secret-shared-with-the-host-site")


def _demo_suite():  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from governance.models import SecretKind
    from governance.secrets import secret_create
    from knowledge.demo import seed_knowledge
    from suites.demo import seed_suites
    from suites.models import RegressionSuite

    seed_knowledge()  # the whole help centre (the fixture seeds three sources)
    secret_create(
        actor=None,
        name="identity_token_secret",
        kind=SecretKind.ENVIRONMENT,
        env_var=IDENTITY_SECRET_VAR,
        owner=get_user_model().objects.get(username="maya.ops"),
    )
    seed_suites()
    return RegressionSuite.objects.get(name="demo")


def test_a_manager_runs_the_demo_suite_from_admin_and_sees_it_finish(demo_company_served, page) -> None:  # type: ignore[no-untyped-def]
    from governance.roles import Role, sync_roles
    from governance.tests.factories import UserFactory
    from suites.models import RunStatus, SuiteRun

    server = demo_company_served
    suite = _demo_suite()
    sync_roles()
    UserFactory(username="mo_manager", first_name="Mo", roles=[Role.SUPPORT_MANAGER])

    page.goto(f"{server.http}/admin/login/?next=/admin/suites/regressionsuite/{suite.pk}/change/")
    page.fill("#id_username", "mo_manager")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#run-suite")
    assert page.locator("#result_list, .inline-group").first.is_visible()

    page.click("#run-suite")
    page.wait_for_selector("#suite-run-progress")
    run = SuiteRun.objects.get(suite=suite)
    assert page.url.endswith(f"/admin/suites/suiterun/{run.pk}/change/")
    assert "Queued a run of demo" in page.content()
    # Progress moves while the worker runs the cases, then the page reloads with the result.
    page.wait_for_function(
        "() => /[1-9]\\d* of \\d+ cases/.test(document.getElementById('run-progress').textContent)", timeout=120_000
    )
    page.wait_for_selector("#run-result", timeout=180_000)

    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    assert page.inner_text("#run-result") == f"{run.passed} of {run.cases} passed"
    assert run.cases >= 30 and run.passed == run.cases, run.failures
    page.screenshot(path=str(SCREENSHOT))
