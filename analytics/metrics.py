"""Metric providers for the rollout gates (governance.metrics): numbers computed from analytics events.

Each provider takes a ``MetricQuery`` (a channel, a window of days, maybe a slice: intent, stage, responder, prompt
version) and returns a ``Measurement``: the value with the size of the sample it came from (a value of ``None`` when
the window holds no data to compute it from — a gate never counts missing data as met). Each is one query on
``analytics_event_channel_kind``. This module holds the conversation and handoff metrics and the registry; the
resolution metrics are ``analytics.resolution``, the approval and action figures ``analytics.actions``.
"""

from __future__ import annotations

from dataclasses import replace

from django.db.models import Avg, Count, Exists, FloatField, OuterRef, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from analytics.actions import approval_turnaround_s
from analytics.models import AnalyticsEvent, EventKind
from analytics.resolution import deflection_rate, durable_resolution, first_contact_resolution, reopen_rate
from analytics.slices import PERSON_REACHED, about_slice, events_in_window, in_channel, turn_of_slice
from governance.metrics import RATE, Measurement, MetricInfo, MetricProvider, MetricQuery


def _ended_by_the_ai(query: MetricQuery) -> QuerySet[AnalyticsEvent]:
    """The ``closed`` events in the window of the conversations the AI took (not the traffic share's), each annotated
    with whether its conversation ever reached a person."""
    reached = AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=PERSON_REACHED)
    held_back = AnalyticsEvent.objects.filter(
        conversation_id=OuterRef("conversation_id"), kind=EventKind.TRAFFIC_TO_PERSON
    )
    closed = events_in_window(query, EventKind.CLOSED).exclude(Exists(held_back))
    return closed.annotate(reached_person=Exists(reached))


_ENDED = Count("conversation_id", distinct=True)
_CONTAINED = Count("conversation_id", distinct=True, filter=Q(reached_person=False))


def containment_rate(query: MetricQuery) -> Measurement:
    """Share of the conversations closed in the window that never reached a person (no escalation, no takeover),
    among those the AI took (not the ones its traffic share gave to a person from the start); with a slice, the
    conversations about it (``analytics.slices.about_slice``, as for every conversation metric here)."""
    counts = about_slice(_ended_by_the_ai(query), query).aggregate(ended=_ENDED, contained=_CONTAINED)
    return Measurement.share(counts["contained"], counts["ended"])


def containment_by_intent(query: MetricQuery, intents: list[str]) -> dict[str, Measurement]:
    """``containment_rate`` of each of ``intents`` (the query's own intent is replaced by each in turn), in one query
    instead of one per intent: the dashboard's top intents."""
    ended = _ended_by_the_ai(replace(query, intent=""))
    turns = AnalyticsEvent.objects.filter(
        in_channel(query), turn_of_slice(replace(query, intent="")), kind=EventKind.TURN_ANSWERED, intent__in=intents
    )
    # From the turns' side: each turn about one of the intents whose conversation closed in the window (the
    # provider's about_slice, for every intent at once), grouped by intent, conversations counted once.
    rows = (
        turns.filter(conversation_id__in=ended.values("conversation_id"))
        .annotate(
            reached_person=Exists(
                AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=PERSON_REACHED)
            )
        )
        .values("intent")
        .annotate(ended=_ENDED, contained=_CONTAINED)
    )
    found = {row["intent"]: Measurement.share(row["contained"], row["ended"]) for row in rows}
    return {intent: found.get(intent, Measurement.share(0, 0)) for intent in intents}


def _csat(query: MetricQuery, *, reached_person: bool | None = None) -> Measurement:
    """Average of each conversation's last score in the window; with ``reached_person``, only the conversations that
    did (or did not) reach a person at any time."""
    ratings = about_slice(events_in_window(query, EventKind.CSAT), query)
    if reached_person is not None:
        reached = AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=PERSON_REACHED)
        ratings = ratings.annotate(reached_person=Exists(reached)).filter(reached_person=reached_person)
    latest = ratings.order_by("conversation_id", "-created_at").distinct("conversation_id").values("pk")
    figures = AnalyticsEvent.objects.filter(pk__in=latest).aggregate(
        score=Avg(Cast(KT("data__score"), FloatField())), rated=Count("pk")
    )
    average = figures["score"]
    return Measurement(None if average is None else float(average), figures["rated"])


def csat(query: MetricQuery) -> Measurement:
    """Average satisfaction score (1-5) given in the window; a conversation rated twice counts with its last score."""
    return _csat(query)


def csat_ai(query: MetricQuery) -> Measurement:
    """CSAT of the conversations the AI handled alone (never escalated, never taken over)."""
    return _csat(query, reached_person=False)


def csat_human(query: MetricQuery) -> Measurement:
    """CSAT of the conversations a person handled (escalated or taken over)."""
    return _csat(query, reached_person=True)


def failed_retrieval_rate(query: MetricQuery) -> Measurement:
    """Share of the knowledge questions in the window the agent found no fitting source for; with a slice, the
    questions asked in turns of that slice."""
    events = _turns_of_slice(events_in_window(query, EventKind.KNOWLEDGE_ANSWERED, EventKind.KNOWLEDGE_UNKNOWN), query)
    counts = events.aggregate(asked=Count("pk"), unknown=Count("pk", filter=Q(kind=EventKind.KNOWLEDGE_UNKNOWN)))
    return Measurement.share(counts["unknown"], counts["asked"])


def _turns_of_slice(events: QuerySet[AnalyticsEvent], query: MetricQuery) -> QuerySet[AnalyticsEvent]:
    """Keep a turn's own events (knowledge, action) whose turn is of the query's slice: the intent is on the event
    itself, the stage, responder and prompt version on the turn's ``turn_answered`` (matched by ``data.turn``)."""
    if query.intent:
        events = events.filter(intent=query.intent)
    if query.stage is None and not query.responder and not query.prompt_version:
        return events
    turns = (
        AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind=EventKind.TURN_ANSWERED)
        .filter(turn_of_slice(query))
        .annotate(turn_id=KT("data__turn"))
        .filter(turn_id=OuterRef("turn_id"))
    )
    return events.annotate(turn_id=KT("data__turn")).filter(Exists(turns))


def escalation_rate(query: MetricQuery) -> Measurement:
    """Share of the conversations the agent answered in the window that it escalated to a person in the window; with
    a slice, the conversations with an answered turn of that slice in the window."""
    start, end = query.bounds()
    escalated = AnalyticsEvent.objects.filter(
        conversation_id=OuterRef("conversation_id"), kind=EventKind.ESCALATED, created_at__gte=start, created_at__lt=end
    )
    answered = events_in_window(query, EventKind.TURN_ANSWERED).filter(turn_of_slice(query))
    counts = answered.annotate(was_escalated=Exists(escalated)).aggregate(
        answered=Count("conversation_id", distinct=True),
        escalated=Count("conversation_id", distinct=True, filter=Q(was_escalated=True)),
    )
    return Measurement.share(counts["escalated"], counts["answered"])


def _average_seconds(events: QuerySet[AnalyticsEvent]) -> Measurement:
    figures = events.exclude(data__seconds_since_handoff=None).aggregate(
        seconds=Avg(Cast(KT("data__seconds_since_handoff"), FloatField())), n=Count("pk")
    )
    return Measurement(None if figures["seconds"] is None else float(figures["seconds"]), figures["n"])


def first_human_reply_s(query: MetricQuery) -> Measurement:
    """Average seconds from a handoff to a person's first reply, over the first replies in the window."""
    events = about_slice(events_in_window(query, EventKind.HUMAN_REPLIED), query).filter(data__first=True)
    return _average_seconds(events.filter(data__has_key="seconds_since_handoff"))


def handle_time_after_handoff_s(query: MetricQuery) -> Measurement:
    """Average seconds from a handoff to the close, over the handed-over conversations closed in the window."""
    events = about_slice(events_in_window(query, EventKind.CLOSED), query)
    return _average_seconds(events.filter(data__has_key="seconds_since_handoff"))


PROVIDERS: dict[str, MetricProvider] = {
    "first_human_reply_s": first_human_reply_s,
    "handle_time_after_handoff_s": handle_time_after_handoff_s,
    "csat_ai": csat_ai,
    "csat_human": csat_human,
    "containment_rate": containment_rate,
    "csat": csat,
    "failed_retrieval_rate": failed_retrieval_rate,
    "escalation_rate": escalation_rate,
    "reopen_rate": reopen_rate,
    "first_contact_resolution": first_contact_resolution,
    "durable_resolution": durable_resolution,
    "deflection_rate": deflection_rate,
    "approval_turnaround_s": approval_turnaround_s,
}

# Metrics analytics adds to the catalogue governance knows (governance.metrics.METRICS).
EXTRA_METRICS: dict[str, MetricInfo] = {
    "first_human_reply_s": MetricInfo("Average seconds from a handoff to a person's first reply.", "seconds"),
    "handle_time_after_handoff_s": MetricInfo("Average seconds from a handoff to the close.", "seconds"),
    "csat_ai": MetricInfo("Average satisfaction of the conversations the AI handled alone.", "score (1 to 5)"),
    "csat_human": MetricInfo("Average satisfaction of the conversations a person handled.", "score (1 to 5)"),
    "escalation_rate": MetricInfo("Share of conversations the agent answered that it escalated to a person.", RATE),
    "first_contact_resolution": MetricInfo(
        "Share of first contacts resolved with no reopened ticket and no return on the topic within the window.", RATE
    ),
    "durable_resolution": MetricInfo(
        "Share of resolved conversations with no reopened ticket and no return on the topic within the window.", RATE
    ),
    "deflection_rate": MetricInfo(
        "Share of the AI's conversations that never needed a person, then or on a return within the window.", RATE
    ),
    "approval_turnaround_s": MetricInfo("Average seconds from an approval request to its decision.", "seconds"),
}
