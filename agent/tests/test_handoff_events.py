"""The handoff lifecycle in analytics: waiting → picked up → a person's replies → resolved, each with the person and
the times (docs/analytics.md)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User

from agent.messages import conversation_start, message_store_customer
from agent.models import Conversation
from agent.services import (
    conversation_close,
    conversation_escalate,
    conversation_hand_back,
    conversation_take_over,
    human_message_send,
)
from agent.tests.clock import Clock
from analytics.models import AnalyticsEvent, EventKind


def _started(*, is_test: bool = False) -> Conversation:
    conversation = conversation_start(is_test=is_test)
    message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="Where is my parcel?")
    return conversation


def _escalated(*, is_test: bool = False) -> Conversation:
    conversation = _started(is_test=is_test)
    return conversation_escalate(conversation_id=conversation.pk, reason="customer asked for a person", ticket_id="7")


def _data(conversation: Conversation, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return list(
        AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk), kind=kind)
        .order_by("pk")
        .values_list("data", flat=True)
    )


@pytest.mark.django_db
def test_picking_up_a_waiting_conversation_records_who_and_how_long_it_waited(
    clock: Clock, support_agent: User
) -> None:
    conversation = _escalated()
    clock.advance(90)

    conversation_take_over(conversation_id=conversation.pk, user=support_agent)

    assert _data(conversation, EventKind.HUMAN_TOOK_OVER) == [
        {"user": support_agent.pk, "from": "waiting", "seconds_waiting": 90.0}
    ]


@pytest.mark.django_db
def test_a_conversation_taken_straight_from_the_ai_did_not_wait(clock: Clock, support_agent: User) -> None:
    conversation = _started()
    clock.advance(30)

    conversation_take_over(conversation_id=conversation.pk, user=support_agent)

    assert _data(conversation, EventKind.HUMAN_TOOK_OVER) == [
        {"user": support_agent.pk, "from": "agent", "seconds_waiting": None}
    ]


@pytest.mark.django_db
def test_the_first_reply_after_a_handoff_counts_from_when_the_conversation_started_waiting(
    clock: Clock, support_agent: User
) -> None:
    conversation = _escalated()
    clock.advance(60)
    conversation_take_over(conversation_id=conversation.pk, user=support_agent)
    clock.advance(30)
    first = human_message_send(conversation_id=conversation.pk, user=support_agent, text="Hi, I'm Sam. Let me look.")
    clock.advance(10)
    second = human_message_send(conversation_id=conversation.pk, user=support_agent, text="It left today.")

    assert _data(conversation, EventKind.HUMAN_REPLIED) == [
        {"user": support_agent.pk, "seq": first.seq, "first": True, "seconds_since_handoff": 90.0},
        {"user": support_agent.pk, "seq": second.seq, "first": False, "seconds_since_handoff": None},
    ]


@pytest.mark.django_db
def test_after_a_hand_back_the_next_handoff_has_a_first_reply_of_its_own(
    clock: Clock, support_agent: User, support_manager: User
) -> None:
    conversation = _escalated()
    conversation_take_over(conversation_id=conversation.pk, user=support_agent)
    human_message_send(conversation_id=conversation.pk, user=support_agent, text="Sorted, handing you back.")
    conversation_hand_back(conversation_id=conversation.pk, user=support_agent)
    clock.advance(300)
    conversation_take_over(conversation_id=conversation.pk, user=support_manager)  # straight from the AI
    clock.advance(45)
    again = human_message_send(conversation_id=conversation.pk, user=support_manager, text="Me again.")

    replies = _data(conversation, EventKind.HUMAN_REPLIED)
    assert [reply["first"] for reply in replies] == [True, True]
    assert replies[-1] == {"user": support_manager.pk, "seq": again.seq, "first": True, "seconds_since_handoff": 45.0}


@pytest.mark.django_db
def test_closing_a_conversation_a_person_handled_records_who_closed_it_and_the_time_since_the_handoff(
    clock: Clock, support_agent: User, support_manager: User
) -> None:
    conversation = _escalated()
    clock.advance(60)
    conversation_take_over(conversation_id=conversation.pk, user=support_agent)
    clock.advance(30)
    human_message_send(conversation_id=conversation.pk, user=support_agent, text="Done: it ships today.")
    clock.advance(120)

    conversation_close(conversation_id=conversation.pk, actor=support_manager, reason="resolved")

    assert _data(conversation, EventKind.CLOSED) == [
        {
            "reason": "resolved",
            "by": support_manager.pk,
            "from": "human",
            "assignee": support_agent.pk,
            "seconds_open": 210.0,
            "seconds_waiting": None,
            "seconds_since_handoff": 210.0,
        }
    ]


@pytest.mark.django_db
def test_a_conversation_closed_while_still_waiting_records_how_long_nobody_picked_it_up(clock: Clock) -> None:
    conversation = _started()
    clock.advance(20)
    conversation_escalate(conversation_id=conversation.pk, reason="customer asked for a person")
    clock.advance(600)

    conversation_close(conversation_id=conversation.pk, actor=None, reason="inactive")

    (closed,) = _data(conversation, EventKind.CLOSED)
    assert closed == {
        "reason": "inactive",
        "by": None,
        "from": "waiting",
        "assignee": None,
        "seconds_open": 620.0,
        "seconds_waiting": 600.0,
        "seconds_since_handoff": None,
    }


@pytest.mark.django_db
def test_a_conversation_the_ai_closes_never_reached_a_person() -> None:
    conversation = _started()

    conversation_close(conversation_id=conversation.pk, actor=None, reason="inactive")

    (closed,) = _data(conversation, EventKind.CLOSED)
    assert (closed["from"], closed["by"], closed["assignee"], closed["seconds_since_handoff"]) == (
        "agent",
        None,
        None,
        None,
    )


@pytest.mark.django_db
def test_a_test_conversations_handoff_leaves_no_events(support_agent: User) -> None:
    conversation = _escalated(is_test=True)
    conversation_take_over(conversation_id=conversation.pk, user=support_agent)
    human_message_send(conversation_id=conversation.pk, user=support_agent, text="Hello")
    conversation_close(conversation_id=conversation.pk, actor=support_agent)

    assert not AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk)).exists()
