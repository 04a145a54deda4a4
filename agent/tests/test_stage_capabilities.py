"""Stage capabilities (governance.gates.STAGE_CAPABILITIES) enforced where they apply — governance's decision on an
action, the escalation's helpdesk ticket — and recorded on the turn's trace."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from agent.models import Owner, TurnTrace
from agent.tests import test_turn
from governance.authorization import authorize, authorize_with_capability
from governance.dry_run import DryRun, dry_run
from governance.gates import (
    CAPABILITY_STAGE,
    STAGE_CAPABILITIES,
    Capability,
    action_capability,
    capability_check,
)
from governance.models import AuditRecord, ChannelRollout, EventType
from governance.policies import Outcome
from governance.tests.factories import ActionPolicyFactory

Chat = test_turn.Chat
demo_company = test_turn.demo_company  # the fixture: the demo company, web_chat at stage 4

# --- Pure ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("capability", list(Capability))
def test_each_capability_is_refused_below_its_stage_and_allowed_from_it(capability: str) -> None:
    first = CAPABILITY_STAGE[capability]
    for stage in range(1, 6):
        check = capability_check(stage, capability)
        assert check.allowed is (stage >= first)
        assert f"allowed from rollout stage {first}" in check.reason
        assert ("this channel is at stage" in check.reason) is (stage < first)
        assert check.as_json() == {
            "capability": capability,
            "stage": stage,
            "allowed": check.allowed,
            "reason": check.reason,
        }


def test_the_capabilities_come_at_the_stages_the_docs_name() -> None:
    assert CAPABILITY_STAGE == {
        "knowledge_answers": 1,
        "crm_context": 2,
        "ticket_draft": 3,
        "handoff": 3,
        "low_risk_actions": 4,
        "omnichannel": 5,
    }
    assert all(STAGE_CAPABILITIES[stage] < STAGE_CAPABILITIES[stage + 1] for stage in range(1, 5))


@pytest.mark.parametrize(
    ("action", "tier", "capability"),
    [
        ("knowledge_search", "read_only", "knowledge_answers"),
        ("order_status_lookup", "read_only", "crm_context"),
        ("subscription_lookup", "read_only", "crm_context"),
        ("ticket_create", "automated", "handoff"),
        ("subscription_cancel", "approval_required", "ticket_draft"),
        ("reply_draft", "draft", "ticket_draft"),
        ("refund", "automated", "low_risk_actions"),
        ("crm_note", "automated", "low_risk_actions"),
    ],
)
def test_an_action_needs_the_capability_of_its_kind(action: str, tier: str, capability: str) -> None:
    assert action_capability(action, tier) == capability


# --- Governance's decision ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_lookup_of_the_customers_records_needs_crm_context_even_when_its_policy_allows_it_earlier(  # type: ignore[no-untyped-def]
    verified_customer,
) -> None:
    ActionPolicyFactory(action="order_status_lookup", tier="read_only", enabled_from_stage=1, min_verification=0)
    channel = ChannelRollout.objects.create(channel="web_chat", stage=1)

    decision, check = authorize_with_capability(actor=verified_customer, action="order_status_lookup", args={})
    assert decision.outcome == Outcome.DENY
    assert decision.reason == "crm_context is allowed from rollout stage 2; this channel is at stage 1"
    assert check is not None and check.capability == "crm_context" and not check.allowed
    record = AuditRecord.objects.get(event_type=EventType.ACTION_DECISION)
    assert (record.decision, record.reason, record.data["stage"]) == ("deny", decision.reason, 1)

    channel.stage = 2
    channel.save()
    decision, check = authorize_with_capability(actor=verified_customer, action="order_status_lookup", args={})
    assert decision.outcome == Outcome.ALLOW and check is not None and check.allowed


@pytest.mark.django_db
def test_an_automated_change_waits_for_low_risk_actions_whatever_its_policy_says(verified_customer) -> None:  # type: ignore[no-untyped-def]
    ActionPolicyFactory(action="crm_note", tier="automated", enabled_from_stage=3, min_verification=0)
    channel = ChannelRollout.objects.create(channel="web_chat", stage=3)

    refused = authorize(actor=verified_customer, action="crm_note", args={})
    channel.stage = 4
    channel.save()
    allowed = authorize(actor=verified_customer, action="crm_note", args={})

    assert refused.outcome == Outcome.DENY and "low_risk_actions is allowed from rollout stage 4" in refused.reason
    assert allowed.outcome == Outcome.ALLOW


@pytest.mark.django_db
def test_the_policys_own_stage_floor_keeps_its_reason(verified_customer) -> None:  # type: ignore[no-untyped-def]
    ActionPolicyFactory(action="refund", tier="automated", enabled_from_stage=5, min_verification=0)
    ChannelRollout.objects.create(channel="web_chat", stage=3)

    decision = authorize(actor=verified_customer, action="refund", args={})

    assert decision.reason == "refund is enabled from rollout stage 5; this channel is at stage 3"


@pytest.mark.django_db
def test_below_its_stage_an_action_is_refused_rather_than_asking_the_customer_to_verify(anonymous_visitor) -> None:  # type: ignore[no-untyped-def]
    ActionPolicyFactory(action="order_status_lookup", tier="read_only", enabled_from_stage=1, min_verification=1)
    ChannelRollout.objects.create(channel="web_chat", stage=1)

    decision = authorize(actor=anonymous_visitor, action="order_status_lookup", args={})

    assert decision.outcome == Outcome.DENY and decision.needs_verification is None
    assert "crm_context" in decision.reason


@pytest.mark.django_db
def test_a_suites_rehearsed_stage_decides_the_capability(verified_customer) -> None:  # type: ignore[no-untyped-def]
    ActionPolicyFactory(action="order_status_lookup", tier="read_only", enabled_from_stage=1, min_verification=0)
    ChannelRollout.objects.create(channel="web_chat", stage=4)

    with dry_run(DryRun(stage=1)):
        rehearsed = authorize(actor=verified_customer, action="order_status_lookup", args={})

    assert rehearsed.outcome == Outcome.DENY and "this channel is at stage 1" in rehearsed.reason


# --- In the turn, on the trace --------------------------------------------------------------------------------------


def _stage(stage: int) -> None:
    ChannelRollout.objects.filter(channel="web_chat").update(stage=stage)


@pytest.mark.django_db(transaction=True)
def test_at_stage_1_an_order_question_is_refused_for_crm_context_and_recorded(demo_company) -> None:  # type: ignore[no-untyped-def]
    _stage(1)

    reply = Chat().say("Where is my order BL-10042?")

    assert "a person from our team can" in reply.text and "email" not in reply.text  # no pointless verification
    trace = TurnTrace.objects.get(reply=reply)
    assert trace.stage == 1
    [call] = trace.tool_calls
    assert (call["action"], call["decision"], call["capability"]) == ("order_status_lookup", "deny", "crm_context")
    # The demo's policy has the same floor and keeps its own, more specific reason; the capability is recorded too.
    assert call["reason"] == "order_status_lookup is enabled from rollout stage 2; this channel is at stage 1"
    assert trace.capabilities == [
        {
            "capability": "crm_context",
            "stage": 1,
            "allowed": False,
            "reason": "crm_context is allowed from rollout stage 2; this channel is at stage 1",
        }
    ]


@pytest.mark.django_db(transaction=True)
def test_at_stage_2_an_order_question_is_answered_with_crm_context_recorded(demo_company) -> None:  # type: ignore[no-untyped-def]
    _stage(2)
    chat = Chat()
    chat.say("Where is my order BL-10042?")
    chat.say("mara.lindqvist@example.com")

    answer = chat.say(re.search(r"\d{6}", mail.outbox[-1].subject).group(0))

    assert "BL-10042" in answer.text
    trace = TurnTrace.objects.get(reply=answer)
    assert trace.stage == 2
    assert [(c["capability"], c["allowed"]) for c in trace.capabilities] == [
        ("crm_context", True),  # the CRM lookup of the verified address
        ("crm_context", True),  # the order lookup waiting for the verification
    ]


@pytest.mark.django_db(transaction=True)
def test_below_stage_3_an_escalation_reaches_the_waiting_queue_without_a_helpdesk_ticket(demo_company) -> None:  # type: ignore[no-untyped-def]
    _stage(2)
    chat = Chat()

    reply = chat.say("I want to talk to a human")

    assert chat.conversation.owner == Owner.WAITING and chat.conversation.ticket_id == ""
    assert chat.conversation.escalation_reason.endswith("(no helpdesk ticket below rollout stage 3)")
    trace = TurnTrace.objects.get(reply=reply)
    assert trace.capabilities == [
        {
            "capability": "handoff",
            "stage": 2,
            "allowed": False,
            "reason": "handoff is allowed from rollout stage 3; this channel is at stage 2",
        }
    ]


@pytest.mark.django_db(transaction=True)
def test_the_demo_at_stage_4_answers_knowledge_and_hands_over_with_a_ticket_as_before(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()

    answer = chat.say("How long does delivery to the UK take?")
    handed = chat.say("I want to talk to a human")

    knowledge = TurnTrace.objects.get(reply=answer)
    assert knowledge.stage == 4 and knowledge.capabilities == []  # every stage answers from knowledge
    assert chat.conversation.owner == Owner.WAITING and chat.conversation.ticket_id
    assert TurnTrace.objects.get(reply=handed).capabilities[0] == {
        "capability": "handoff",
        "stage": 4,
        "allowed": True,
        "reason": "handoff is allowed from rollout stage 3",
    }
