"""Recording events: only known kinds, append-only in the database, and what one agent turn stands for."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from analytics.events import event_record, turn_event_kinds, turn_events
from analytics.models import AnalyticsEvent, EventKind
from config.sql import insert_statement


def test_a_turn_that_answered_from_knowledge_is_a_knowledge_answer() -> None:
    assert turn_event_kinds(answer_kind="knowledge", tool_calls=[]) == [(EventKind.KNOWLEDGE_ANSWERED, {})]
    assert turn_event_kinds(answer_kind="unknown", tool_calls=[]) == [(EventKind.KNOWLEDGE_UNKNOWN, {})]
    assert turn_event_kinds(answer_kind="smalltalk", tool_calls=[]) == []


def test_each_tool_call_is_proposed_then_denied_sent_for_approval_or_executed() -> None:
    calls = [
        {"action": "refund", "decision": "needs_approval", "reason": "above the automated limit"},
        {"action": "subscription_cancel", "decision": "deny", "reason": "needs identity verification"},
        {"action": "order_status_lookup", "decision": "allow", "reason": "read-only lookup"},
        {"action": "subscription_pause", "decision": "allow", "reason": "executed"},
        {"action": "order_status_lookup", "decision": "allow", "reason": "not found"},  # allowed, did nothing
    ]
    kinds = [kind for kind, _ in turn_event_kinds(answer_kind="", tool_calls=calls)]
    assert kinds == [
        EventKind.ACTION_PROPOSED,
        EventKind.APPROVAL_REQUESTED,
        EventKind.ACTION_PROPOSED,
        EventKind.ACTION_DENIED,
        EventKind.ACTION_PROPOSED,
        EventKind.ACTION_EXECUTED,
        EventKind.ACTION_PROPOSED,
        EventKind.ACTION_EXECUTED,
        EventKind.ACTION_PROPOSED,
    ]
    denied = turn_event_kinds(answer_kind="", tool_calls=calls[1:2])[1][1]
    assert denied == {"action": "subscription_cancel", "decision": "deny", "reason": "needs identity verification"}


def test_an_action_event_carries_the_tier_and_the_approval_request_the_call_recorded() -> None:
    calls = [
        {
            "action": "refund",
            "decision": "needs_approval",
            "reason": "approval-required tier",
            "tier": "approval_required",
            "result": {"approval_request": 41},
        },
        {"action": "order_status_lookup", "decision": "allow", "reason": "read-only lookup", "result": {"fields": {}}},
    ]
    events = turn_event_kinds(answer_kind="", tool_calls=calls)
    assert events[1] == (
        EventKind.APPROVAL_REQUESTED,
        {
            "action": "refund",
            "decision": "needs_approval",
            "reason": "approval-required tier",
            "tier": "approval_required",
            "request": 41,
        },
    )
    # A tool call recorded before calls carried a tier: the event has none (action_outcomes falls back to the policy).
    assert "tier" not in events[3][1] and "request" not in events[3][1]


@pytest.mark.django_db
def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown analytics event kind 'answered'"):
        event_record(kind="answered", conversation_id="c")
    assert not AnalyticsEvent.objects.exists()


@pytest.mark.django_db
def test_a_turn_is_recorded_in_one_insert_with_its_channel_and_intent(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    events = turn_events(
        conversation_id="c-1",
        channel="web_chat",
        intent="refund_request",
        answer_kind="",
        tool_calls=[{"action": "refund", "decision": "needs_approval", "reason": "above the limit"}],
        data={"confidence": 0.91},
    )
    with django_assert_num_queries(1), connection.cursor() as cursor:
        cursor.execute(*insert_statement(events))
        assert len(cursor.fetchall()) == 3
    rows = list(AnalyticsEvent.objects.order_by("pk").values_list("kind", "channel", "intent", "conversation_id"))
    assert [kind for kind, *_ in rows] == ["turn_answered", "action_proposed", "approval_requested"]
    assert {tuple(rest) for _, *rest in rows} == {("web_chat", "refund_request", "c-1")}
    assert AnalyticsEvent.objects.get(kind="turn_answered").data == {"confidence": 0.91}


def test_a_turns_other_events_name_the_turn() -> None:
    events = turn_events(
        conversation_id="c-1",
        channel="web_chat",
        intent="shipping_times",
        answer_kind="knowledge",
        tool_calls=[],
        data={"turn": 12, "stage": 3},
    )
    assert [(e.kind, e.data) for e in events] == [
        (EventKind.TURN_ANSWERED, {"turn": 12, "stage": 3}),
        (EventKind.KNOWLEDGE_ANSWERED, {"turn": 12}),
    ]


@pytest.mark.django_db
def test_the_database_refuses_to_change_an_event() -> None:
    event = event_record(kind=EventKind.CSAT, conversation_id="c", channel="web_chat", data={"score": 2})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AnalyticsEvent.objects.filter(pk=event.pk).update(data={"score": 5})
    event.refresh_from_db()
    assert event.data == {"score": 2}
