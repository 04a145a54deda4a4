"""What every metric provider narrows its events by: the channel, the window and the slice a query asks for.

A slice (``MetricQuery.intent``, ``stage``, ``responder``, ``prompt_version``) is read from the agent's turns: each
``turn_answered`` event carries the turn's intent (its column) and its stage, responder and prompt version (its data).
A conversation is *about a slice* when it has an answered turn of that slice in the query's channel, at any time;
a turn is of a slice when its own ``turn_answered`` event matches every part asked for.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from analytics.models import AnalyticsEvent, EventKind
from governance.metrics import MetricQuery

PERSON_REACHED = [EventKind.ESCALATED, EventKind.HUMAN_TOOK_OVER]


def in_channel(query: MetricQuery) -> Q:
    """The query's channel (an empty one: every channel, for reports)."""
    return Q(channel=query.channel) if query.channel else Q()


def events_in_window(query: MetricQuery, *kinds: str) -> QuerySet[AnalyticsEvent]:
    """The events of ``kinds`` in the query's channel recorded in its window (served by ``analytics_event_channel_kind``
    when a channel is named)."""
    start, end = query.bounds()
    return AnalyticsEvent.objects.filter(in_channel(query), kind__in=kinds, created_at__gte=start, created_at__lt=end)


def turn_of_slice(query: MetricQuery) -> Q:
    """The condition a ``turn_answered`` event of the query's slice meets (every part asked for)."""
    condition = Q()
    if query.intent:
        condition &= Q(intent=query.intent)
    if query.stage is not None:
        condition &= Q(data__stage=query.stage)
    if query.responder:
        condition &= Q(data__responder=query.responder)
    if query.prompt_version:
        condition &= Q(data__prompt_version=query.prompt_version)
    return condition


def about_slice(events: QuerySet[AnalyticsEvent], query: MetricQuery) -> QuerySet[AnalyticsEvent]:
    """Keep the events of the conversations about the query's slice (all of them when no slice is asked for)."""
    if not query.sliced:
        return events
    turns = AnalyticsEvent.objects.filter(in_channel(query), turn_of_slice(query), kind=EventKind.TURN_ANSWERED)
    return events.filter(conversation_id__in=turns.values("conversation_id"))
