"""Quiet conversations with the AI end by themselves; those with people never do."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from agent.messages import conversation_start, message_store_customer
from agent.models import Message, Owner
from agent.services import conversations_close_idle
from analytics.models import AnalyticsEvent
from governance.models import AuditRecord

pytestmark = pytest.mark.django_db


def _conversation(*, minutes_ago: int, owner: str = Owner.AGENT, assignee=None):  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    message, _ = message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="hello")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    type(conversation).objects.filter(pk=conversation.pk).update(owner=owner, assignee=assignee)
    return conversation


def test_a_quiet_conversation_with_the_ai_is_closed_once_and_audited(support_agent) -> None:  # type: ignore[no-untyped-def]
    quiet = _conversation(minutes_ago=45)
    recent = _conversation(minutes_ago=5)
    waiting = _conversation(minutes_ago=300, owner=Owner.WAITING)
    with_person = _conversation(minutes_ago=300, owner=Owner.HUMAN, assignee=support_agent)
    never_spoke = conversation_start()

    assert conversations_close_idle(idle_minutes=30) == 1
    assert conversations_close_idle(idle_minutes=30) == 0  # already closed

    for conversation in (quiet, recent, waiting, with_person, never_spoke):
        conversation.refresh_from_db()
    assert quiet.owner == Owner.CLOSED and quiet.closed_at is not None
    assert (recent.owner, waiting.owner, with_person.owner, never_spoke.owner) == (
        Owner.AGENT,
        Owner.WAITING,
        Owner.HUMAN,
        Owner.AGENT,
    )
    audit = AuditRecord.objects.get(conversation_id=str(quiet.pk), decision="owner:closed")
    assert audit.reason == "inactive"
    assert AnalyticsEvent.objects.filter(conversation_id=str(quiet.pk), kind="closed").count() == 1


def test_the_idle_time_comes_from_the_setting(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_IDLE_CLOSE_MINUTES = 60
    conversation = _conversation(minutes_ago=45)
    assert conversations_close_idle() == 0
    settings.STEWARD_IDLE_CLOSE_MINUTES = 40
    assert conversations_close_idle() == 1
    conversation.refresh_from_db()
    assert conversation.owner == Owner.CLOSED
