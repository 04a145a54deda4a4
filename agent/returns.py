"""Returns on the same topic: a customer coming back about an intent the agent already worked on for them.

When a conversation closes, ``conversation_returns_record`` looks for the same customer's earlier conversations
that closed at most ``STEWARD_RETURN_WINDOW_DAYS`` days before this one started and share an intent with it, and
records ``returned_on_topic`` on each earlier conversation, once per earlier conversation and intent. The
resolution metrics read it (analytics.resolution): an earlier conversation the customer came back about was not
resolved for good.

Detected at the later conversation's close, not its start: only then is it known which intents the agent worked on
in it, and whether it reached a person.
"""

from __future__ import annotations

import operator
from datetime import timedelta
from functools import reduce
from typing import Any

from django.conf import settings
from django.db.models import Q

from agent.models import Conversation, Intent, Owner, Route, TurnTrace
from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind

# Intents that are no topic a customer comes back about: greetings and thanks, verifying, asking for a person.
NOT_A_TOPIC = (Route.SMALLTALK, Route.VERIFY, Route.HUMAN)
# The events that say a conversation reached a person.
_PERSON_KINDS = (EventKind.ESCALATED, EventKind.HUMAN_TOOK_OVER, EventKind.TRAFFIC_TO_PERSON)


def same_customer(conversation: Conversation) -> Q | None:
    """Return the condition the same customer's other conversations meet, or None when nobody is known.

    The customer is their CRM customer id, else their e-mail address (case-insensitive), as far as the conversation
    knows them: two conversations are the same customer's when they share a customer id, or share an e-mail address
    and at most one of them has a customer id (two different customer ids are two customers). An anonymous visitor
    is known by the conversation alone (agent.handoff.traffic_subject: the widget sends no visitor id), so none of
    their conversations is a return.
    """
    customer_id, email = conversation.customer_id.strip(), conversation.customer_email.strip()
    conditions = []
    if customer_id:
        conditions.append(Q(customer_id=customer_id))
    if email:
        by_email = Q(customer_email__iexact=email)
        conditions.append(by_email & Q(customer_id="") if customer_id else by_email)
    return reduce(operator.or_, conditions) if conditions else None


def topics(conversation_ids: list[Any]) -> dict[str, set[str]]:
    """Return, per conversation, the intents the agent worked on in it (its turn traces), topics only."""
    rows = (
        TurnTrace.objects.filter(conversation_id__in=conversation_ids)
        .exclude(intent="")
        .exclude(intent__in=Intent.objects.filter(route__in=NOT_A_TOPIC).values("name"))
        .values_list("conversation_id", "intent")
        .distinct()
    )
    found: dict[str, set[str]] = {}
    for conversation_id, intent in rows:
        found.setdefault(str(conversation_id), set()).add(intent)
    return found


def conversation_returns_record(*, conversation: Conversation) -> list[AnalyticsEvent]:
    """Record ``returned_on_topic`` for each earlier conversation ``conversation`` (just closed) came back about.

    Call it in the close's transaction. The earlier conversations are locked (in id order) before the events already
    recorded are read, so two later conversations closing at once record each (conversation, intent) once.
    """
    if conversation.is_test:
        return []
    customer = same_customer(conversation)
    shared = topics([conversation.pk]).get(str(conversation.pk), set())
    if customer is None or not shared:
        return []
    window = timedelta(days=int(settings.STEWARD_RETURN_WINDOW_DAYS))
    earlier = list(
        Conversation.objects.select_for_update()
        .filter(
            customer,
            is_test=False,
            owner=Owner.CLOSED,
            closed_at__lte=conversation.created_at,
            closed_at__gte=conversation.created_at - window,
        )
        .exclude(pk=conversation.pk)
        .order_by("pk")
        .only("pk", "channel", "closed_at")
    )
    if not earlier:
        return []
    worked_on = topics([e.pk for e in earlier])
    recorded = set(
        AnalyticsEvent.objects.filter(
            kind=EventKind.RETURNED_ON_TOPIC, conversation_id__in=[str(e.pk) for e in earlier]
        ).values_list("conversation_id", "intent")
    )
    reached = _reached_person(conversation)
    events = []
    for previous in earlier:
        for intent in sorted(shared & worked_on.get(str(previous.pk), set())):
            if (str(previous.pk), intent) in recorded:
                continue
            events.append(
                event_record(
                    kind=EventKind.RETURNED_ON_TOPIC,
                    conversation_id=str(previous.pk),
                    channel=previous.channel,
                    intent=intent,
                    data={
                        "by": str(conversation.pk),
                        "seconds_after_close": _seconds(conversation.created_at, previous.closed_at),
                        "reached_person": reached,
                    },
                )
            )
    return events


def _reached_person(conversation: Conversation) -> bool:
    """Whether the conversation reached a person (escalated, taken over, or given to one by the traffic share) or
    got a helpdesk ticket."""
    if conversation.ticket_id:
        return True
    return AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk), kind__in=_PERSON_KINDS).exists()


def _seconds(later: Any, earlier: Any) -> float:
    return round(max((later - earlier).total_seconds(), 0.0), 1)
