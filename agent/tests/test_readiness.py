"""The agent's line of the readiness report: enabled intents with examples, and action intents that can act."""

from __future__ import annotations

import pytest

from agent.models import Intent, Route
from agent.readiness import ACTIONS_TITLE, INTENTS_TITLE, intents_readiness
from governance.readiness import Status
from governance.tests.factories import ActionPolicyFactory

pytestmark = pytest.mark.django_db


def intent(name: str, **fields: object) -> Intent:
    values: dict[str, object] = {"label": name.replace("_", " "), "examples": [f"help with {name}"]}
    values.update(fields)
    return Intent.objects.create(name=name, **values)


def lines() -> dict[str, object]:
    return {line.title: line for line in intents_readiness()}


def test_enabled_intents_whose_actions_have_a_policy_and_an_executor_pass(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    intent("returns")
    intent("refund_request", route=Route.ACTION, action="refund")  # executed by connectors.actions
    intent("where_is_my_order", route=Route.ACTION, action="order_status_lookup")  # a lookup (agent.tools)
    ActionPolicyFactory(action="refund", tier="approval_required", approver_roles=["support_manager"])
    ActionPolicyFactory(action="order_status_lookup", tier="read_only")

    with django_assert_num_queries(2):
        report = lines()

    assert report[INTENTS_TITLE].status == Status.PASS and report[INTENTS_TITLE].detail == (
        "3 enabled intents with examples."
    )
    assert report[ACTIONS_TITLE].status == Status.PASS and report[ACTIONS_TITLE].detail == (
        "2 action intents, each can act."
    )


def test_no_enabled_intent_fails() -> None:
    intent("returns", enabled=False)

    report = lines()

    assert report[INTENTS_TITLE].status == Status.FAIL and "No intent is enabled" in report[INTENTS_TITLE].detail


def test_an_intent_without_examples_is_named() -> None:
    bare = intent("warranty", examples=[])
    intent("returns")

    line = lines()[INTENTS_TITLE]

    assert line.detail == "warranty: no example messages, so nothing routes to it"
    assert line.fix_url.endswith(f"?id__in={bare.pk}")


def test_each_action_intent_that_cannot_act_is_named_with_why() -> None:
    intent("nameless", route=Route.ACTION)
    intent("no_policy", route=Route.ACTION, action="refund")
    intent("switched_off", route=Route.ACTION, action="subscription_pause")
    ActionPolicyFactory(action="subscription_pause", enabled=False)
    intent("no_executor", route=Route.ACTION, action="teleport_parcel")
    ActionPolicyFactory(action="teleport_parcel")
    intent("disabled_one", route=Route.ACTION, action="refund", enabled=False)  # not enabled: not checked

    line = lines()[ACTIONS_TITLE]

    assert line.status == Status.FAIL
    assert line.detail == (
        "nameless: routes to an action but names none, "
        "no_executor: nothing carries out teleport_parcel (no executor or lookup), "
        "no_policy: no action policy for refund, "
        "switched_off: the action policy subscription_pause is disabled"
    )


def test_the_agent_app_registers_its_intents_check_with_governance() -> None:
    from agent.readiness import intents_readiness
    from governance.readiness import READINESS_CHECKS

    assert READINESS_CHECKS["intents"] is intents_readiness
