"""Facts the dashboard's tests build: analytics events recorded on chosen days through the real recorder, and a week
of support in web chat and e-mail with its past days rolled up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any
from unittest import mock

from django.utils import timezone

from agent.messages import conversation_start
from agent.models import Conversation
from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind
from analytics.rollups import rollup_days


@contextmanager
def recorded_at(when: datetime) -> Iterator[None]:
    """Let ``event_record`` stamp its events at ``when`` (the event's ``created_at`` default is the clock)."""
    created_at = AnalyticsEvent._meta.get_field("created_at")
    with mock.patch.object(created_at, "_get_default", lambda: when):
        yield


def at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def record(day: date, kind: str, conversation: Conversation | str, *, intent: str = "", **data: Any) -> None:
    """Record one event on ``day`` through the real recorder, in the conversation's channel."""
    channel = conversation.channel if isinstance(conversation, Conversation) else "web_chat"
    with recorded_at(at(day)):
        event_record(
            kind=kind,
            conversation_id=str(getattr(conversation, "pk", conversation)),
            channel=channel,
            intent=intent,
            data=data,
        )


def days_ago(n: int) -> date:
    return timezone.localdate() - timedelta(days=n)


def support_week() -> dict[str, Any]:
    """A week of web chat and one e-mail: four web conversations closed over two days (one escalated), ratings, a
    knowledge question answered and one not; one closed before the week; the past days rolled up."""
    first, second = days_ago(3), days_ago(2)
    web = [conversation_start(channel="web_chat") for _ in range(4)]
    mail = conversation_start(channel="email")
    early = conversation_start(channel="web_chat")
    for conversation in web[:2]:
        record(first, EventKind.TURN_ANSWERED, conversation, intent="where_is_my_order", turn=1, stage=2)
        record(first, EventKind.CLOSED, conversation)
    for conversation in web[2:]:
        record(second, EventKind.TURN_ANSWERED, conversation, intent="refund_request", turn=1, stage=3)
        record(second, EventKind.CLOSED, conversation)
    record(second, EventKind.ESCALATED, web[3], reason="asked for a person")
    record(second, EventKind.KNOWLEDGE_ANSWERED, web[2], intent="refund_request", turn=1)
    record(second, EventKind.KNOWLEDGE_UNKNOWN, web[3], intent="refund_request", turn=1)
    record(first, EventKind.CSAT, web[0], score=5)
    record(first, EventKind.CSAT, web[1], score=4)
    record(first, EventKind.CLOSED, mail)
    record(days_ago(20), EventKind.CLOSED, early)
    rollup_days(days_ago(6), days_ago(1))
    return {"web": web, "mail": mail, "early": early, "from": days_ago(6), "to": timezone.localdate()}


def period(week: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"from": week["from"].isoformat(), "to": week["to"].isoformat(), **extra}


def support_fortnight() -> dict[str, Any]:
    """Two weeks ago in web chat, old enough for the resolution window to have passed: a conversation the AI
    closed alone, one handed to a person with a ticket solved then reopened, one whose customer came back about the
    same intent, an approval decided, knowledge questions and ratings; the past days rolled up."""
    alone, handed, came_back, again = (conversation_start(channel="web_chat") for _ in range(4))
    d12, d11, d10, d9 = days_ago(12), days_ago(11), days_ago(10), days_ago(9)
    for conversation, day in ((alone, d12), (handed, d12), (came_back, d11), (again, d10)):
        record(day, EventKind.TURN_ANSWERED, conversation, intent="refund_request", turn=1, stage=3, responder="ai")
    record(d12, EventKind.KNOWLEDGE_ANSWERED, alone, intent="refund_request", turn=1)
    record(d12, EventKind.APPROVAL_DECIDED, alone, request=1, outcome="executed", seconds_to_decision=120.0)
    record(d12, EventKind.CLOSED, alone)
    record(d12, EventKind.CSAT, alone, score=5)
    record(d12, EventKind.ESCALATED, handed, reason="asked for a person", ticket=True)
    record(d12, EventKind.HUMAN_TOOK_OVER, handed, seconds_waiting=40.0)
    record(d12, EventKind.HUMAN_REPLIED, handed, first=True, seconds_since_handoff=60.0)
    record(d12, EventKind.CLOSED, handed, seconds_since_handoff=900.0)
    record(d12, EventKind.CSAT, handed, score=2)
    record(d11, EventKind.TICKET_SOLVED, handed, ticket="T-1")
    record(d9, EventKind.TICKET_REOPENED, handed, ticket="T-1")
    record(d11, EventKind.KNOWLEDGE_UNKNOWN, came_back, intent="refund_request", turn=1)
    record(d11, EventKind.CLOSED, came_back)
    record(d10, EventKind.CLOSED, again)
    came_back_again = {"by": str(again.pk), "seconds_after_close": 3600, "reached_person": False}
    record(d10, EventKind.RETURNED_ON_TOPIC, came_back, **came_back_again)
    rollup_days(days_ago(20), days_ago(1))
    return {"alone": alone, "handed": handed, "came_back": came_back, "again": again}
