"""Events are recorded where things happen: the conversation services and the turn loop, in their transactions."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from agent.identity import email_challenge_start, email_challenge_verify
from agent.messages import conversation_start
from agent.models import Owner
from agent.services import (
    OwnershipConflict,
    conversation_close,
    conversation_escalate,
    conversation_hand_back,
    conversation_rate,
    conversation_take_over,
)
from agent.tests.test_turn import Chat, demo_company  # noqa: F401 - the fixture, used by name
from analytics.models import AnalyticsEvent, EventKind


def _kinds(conversation_id: object) -> list[str]:
    return list(
        AnalyticsEvent.objects.filter(conversation_id=str(conversation_id))
        .order_by("pk")
        .values_list("kind", flat=True)
    )


@pytest.mark.django_db
def test_each_ownership_move_and_the_rating_is_an_event_of_the_conversations_channel(support_agent: User) -> None:
    conversation = conversation_start()
    conversation_escalate(conversation_id=conversation.pk, reason="customer asked for a person", ticket_id="T-1")
    conversation_take_over(conversation_id=conversation.pk, user=support_agent)
    conversation_hand_back(conversation_id=conversation.pk, user=support_agent)
    conversation_close(conversation_id=conversation.pk, actor=support_agent, reason="resolved")
    conversation_rate(conversation_id=conversation.pk, score=4)

    assert _kinds(conversation.pk) == ["escalated", "human_took_over", "handed_back", "closed", "csat"]
    events = {e.kind: e for e in AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk))}
    assert events["escalated"].data == {"reason": "customer asked for a person", "ticket": True}
    assert events["csat"].data == {"score": 4}
    assert {e.channel for e in events.values()} == {conversation.channel}


@pytest.mark.django_db
def test_a_move_that_is_refused_records_no_event(support_agent: User) -> None:
    conversation = conversation_start()
    with pytest.raises(OwnershipConflict):
        conversation_hand_back(conversation_id=conversation.pk, user=support_agent)  # the agent has it already
    assert _kinds(conversation.pk) == []
    conversation.refresh_from_db()
    assert conversation.owner == Owner.AGENT


@pytest.mark.django_db(transaction=True)
def test_turns_record_what_they_did_and_an_escalation_records_its_reason(demo_company) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    chat = Chat()
    chat.say("How long does delivery to the UK take?")
    chat.say("Do you sell tea?")  # nothing in the help centre says: the agent does not know
    chat.say("I want to talk to a human")

    kinds = _kinds(chat.conversation.id)
    assert kinds == [
        EventKind.TURN_ANSWERED,
        EventKind.KNOWLEDGE_ANSWERED,
        EventKind.TURN_ANSWERED,
        EventKind.KNOWLEDGE_UNKNOWN,
        EventKind.TURN_ANSWERED,
        EventKind.ESCALATED,
    ]
    escalated = AnalyticsEvent.objects.get(conversation_id=str(chat.conversation.id), kind=EventKind.ESCALATED)
    assert escalated.data["reason"] == "customer asked for a person" and escalated.channel == "web_chat"
    answered = AnalyticsEvent.objects.filter(kind=EventKind.TURN_ANSWERED).order_by("pk").first()
    assert answered.data["responder"] == "embedded" and answered.data["status"] == "done"
    assert answered.data["turn"] and answered.data["total_ms"] > 0


@pytest.mark.django_db
def test_a_wrong_code_and_a_right_one_are_a_failed_and_a_passed_verification(
    settings, mailoutbox, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    conversation = conversation_start()
    with django_capture_on_commit_callbacks(execute=True):
        email_challenge_start(conversation=conversation, email="mara.lindqvist@example.com")
    code = re.search(r"\b(\d{6})\b", mailoutbox[-1].subject + mailoutbox[-1].body).group(1)
    wrong = "000000" if code != "000000" else "111111"

    assert email_challenge_verify(conversation=conversation, code=wrong) is False
    assert email_challenge_verify(conversation=conversation, code=code) is True

    assert _kinds(conversation.pk) == [EventKind.VERIFICATION_FAILED, EventKind.VERIFICATION_PASSED]
    passed = AnalyticsEvent.objects.get(kind=EventKind.VERIFICATION_PASSED)
    assert passed.data == {"method": "email_code"} and "mara" not in str(passed.data)
