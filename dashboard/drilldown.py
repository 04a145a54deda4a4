"""Which conversations stand behind a metric's figure: the drill-down's rows, per metric, from the facts its provider
counts (analytics events; QA reviews for the QA metrics).

A metric's figure on the dashboard is the sum of its days, each day its provider read over that day alone
(``analytics.rollups``). So a row here is one member of one day's sample: a conversation closed on two days is two
rows, and the rows of a period number exactly the sample (n) the card shows. ``counted`` marks the rows in a share's
numerator; an average carries each row's ``figure`` (the score, the seconds) instead.

A slice (intent, stage, responder, prompt version) narrows the rows as the metric's provider narrows its count, with
the same helpers (``analytics.slices``; ``qa.metrics.reviewed_items`` for the QA metrics). Metrics whose evidence is
not conversations (a suite run, the state of the knowledge sources) point elsewhere (``ELSEWHERE``); the others have
nothing to drill into.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDate
from django.urls import reverse
from django.utils import timezone

from agent.models import Conversation, TurnTrace
from analytics.models import AnalyticsEvent, EventKind
from analytics.resolution import (
    DEFLECTED,
    RESOLVED,
    STAYED,
    matured,
    of_conversation,
    resolution_flags,
    return_window_days,
    returns_since,
)
from analytics.slices import PERSON_REACHED, about_slice, events_in_window, turn_of_slice
from dashboard.filters import Filters
from governance.metrics import MetricQuery
from governance.models import ApprovalStatus
from qa.metrics import reviewed_items
from qa.models import ReviewItem
from qa.models.review import FINAL_STATUSES

# Every drill-down query is annotated with these (``.values(*ROW_FIELDS)`` gives its rows): the conversation's id (a
# string), the day it counts on, when (the event, the review, the close), whether it is in the numerator (shares) and
# its figure (averages).
ROW_FIELDS = ("cid", "day", "at", "counted", "figure")


def console_url(conversation_id: str) -> str:
    """Return the handoff console's page of a conversation ("" when the id is not a conversation's)."""
    try:
        key = uuid.UUID(str(conversation_id))
    except ValueError:
        return ""
    return reverse("console:detail", args=[key])


@dataclass(frozen=True)
class DrillRow:
    cid: str
    day: date
    at: datetime
    counted: bool | None = None
    figure: float | None = None

    @property
    def console_url(self) -> str:
        return console_url(self.cid)


@dataclass(frozen=True)
class Drilldown:
    """How to list a metric's sample: ``rows`` returns the query; ``sample`` says what one row is, ``counted`` what a
    row in the numerator is (shares), ``figure`` what each row's number is (averages)."""

    rows: Callable[[Filters], QuerySet[Any]]  # annotated with ROW_FIELDS, newest first
    sample: str
    counted: str = ""
    figure: str = ""


@dataclass(frozen=True)
class Elsewhere:
    """A metric whose evidence is not conversations: where to look instead."""

    text: str
    url_name: str
    link_text: str

    @property
    def url(self) -> str:
        return reverse(self.url_name)


def period_bounds(filters: Filters) -> tuple[datetime, datetime]:
    """Return the period as aware datetimes: the start of its first day, the start of the day after its last."""
    start = timezone.make_aware(datetime.combine(filters.start, time.min))
    return start, timezone.make_aware(datetime.combine(filters.end + timedelta(days=1), time.min))


def metric_query(name: str, filters: Filters) -> MetricQuery:
    """The query a provider would read for ``name`` over the whole period, with the filters' channel and slice."""
    _, until = period_bounds(filters)
    return MetricQuery(
        filters.channel,
        name,
        intent=filters.intent,
        window_days=filters.days,
        until=until,
        stage=filters.stage,
        responder=filters.responder,
        prompt_version=filters.prompt_version,
    )


def _events(filters: Filters, *kinds: str) -> QuerySet[AnalyticsEvent]:
    """The period's events of ``kinds`` in the channel, each with the day it counts on."""
    return events_in_window(metric_query("", filters), *kinds).annotate(day=TruncDate("created_at"))


def _about_slice(events: QuerySet[AnalyticsEvent], filters: Filters) -> QuerySet[AnalyticsEvent]:
    """Keep the events of conversations about the slice, as the conversation metrics do (``analytics.slices``)."""
    return about_slice(events, metric_query("", filters))


def _one_per_day(events: QuerySet[AnalyticsEvent], *also: str) -> QuerySet[AnalyticsEvent]:
    """Keep each conversation's last event of each day (and of each value of the annotations ``also``, e.g. a
    ticket): a provider counts a conversation once in a day's sample."""
    last = Func(ArrayAgg("pk", order_by=("-created_at", "-pk")), template="(%(expressions)s)[1]")
    latest = events.values("conversation_id", "day", *also).annotate(last=last).values("last")
    return AnalyticsEvent.objects.filter(pk__in=latest).annotate(day=TruncDate("created_at"))


def _event_rows(events: QuerySet[AnalyticsEvent], *, counted: Any = None, figure: Any = None) -> QuerySet[Any]:
    return events.annotate(
        cid=F("conversation_id"),
        at=F("created_at"),
        counted=Value(None, output_field=BooleanField()) if counted is None else counted,
        figure=Value(None, output_field=FloatField()) if figure is None else figure,
    ).order_by("-at", "cid")


def _reached_person() -> Exists:
    return Exists(AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=PERSON_REACHED))


def containment_rows(filters: Filters) -> QuerySet[Any]:
    """Conversations closed each day, outside the traffic share's held-back ones; counted: never reached a person."""
    held_back = AnalyticsEvent.objects.filter(
        conversation_id=OuterRef("conversation_id"), kind=EventKind.TRAFFIC_TO_PERSON
    )
    closed = _about_slice(_events(filters, EventKind.CLOSED), filters).exclude(Exists(held_back))
    return _event_rows(_one_per_day(closed), counted=~_reached_person())


def escalation_rows(filters: Filters) -> QuerySet[Any]:
    """Conversations with an answered turn of the slice each day; counted: escalated that same day."""
    answered = _events(filters, EventKind.TURN_ANSWERED).filter(turn_of_slice(metric_query("", filters)))
    escalated = (
        AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind=EventKind.ESCALATED)
        .annotate(escalated_on=TruncDate("created_at"))
        .filter(escalated_on=OuterRef("day"))
    )
    return _event_rows(_one_per_day(answered), counted=Exists(escalated))


def _csat_rows(filters: Filters, *, reached_person: bool | None = None) -> QuerySet[Any]:
    """Each conversation's last rating of each day (with ``reached_person``: among those that did, or did not,
    reach a person)."""
    ratings = _about_slice(_events(filters, EventKind.CSAT), filters)
    if reached_person is not None:
        ratings = ratings.annotate(reached=_reached_person()).filter(reached=reached_person)
    return _event_rows(_one_per_day(ratings), figure=Cast(KT("data__score"), FloatField()))


def failed_retrieval_rows(filters: Filters) -> QuerySet[Any]:
    """Knowledge questions asked in turns of the slice (the intent on the event, the rest on its turn's
    ``turn_answered``); counted: no fitting source was found."""
    query = metric_query("", filters)
    asked = _events(filters, EventKind.KNOWLEDGE_ANSWERED, EventKind.KNOWLEDGE_UNKNOWN)
    if filters.intent:
        asked = asked.filter(intent=filters.intent)
    if query.stage is not None or query.responder or query.prompt_version:
        turns = (
            AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind=EventKind.TURN_ANSWERED)
            .filter(turn_of_slice(query))
            .annotate(turn_id=KT("data__turn"))
            .filter(turn_id=OuterRef("turn_id"))
        )
        asked = asked.annotate(turn_id=KT("data__turn")).filter(Exists(turns))
    unknown = ExpressionWrapper(Q(kind=EventKind.KNOWLEDGE_UNKNOWN), output_field=BooleanField())
    return _event_rows(asked, counted=unknown)


def _seconds(events: QuerySet[AnalyticsEvent]) -> QuerySet[Any]:
    timed = events.filter(data__has_key="seconds_since_handoff").exclude(data__seconds_since_handoff=None)
    return _event_rows(timed, figure=Cast(KT("data__seconds_since_handoff"), FloatField()))


def first_reply_rows(filters: Filters) -> QuerySet[Any]:
    """A person's first replies after a handoff; figure: seconds since the handoff."""
    return _seconds(_about_slice(_events(filters, EventKind.HUMAN_REPLIED), filters).filter(data__first=True))


def handle_time_rows(filters: Filters) -> QuerySet[Any]:
    """Conversations closed while a person had them; figure: seconds from the handoff to the close."""
    return _seconds(_about_slice(_events(filters, EventKind.CLOSED), filters))


def approval_rows(filters: Filters) -> QuerySet[Any]:
    """Approval requests decided (approved or rejected, not expired) of the conversations about the slice; figure:
    seconds from the request to the decision. A request made outside a conversation has no conversation to link."""
    decided = _about_slice(_events(filters, EventKind.APPROVAL_DECIDED), filters)
    decided = decided.exclude(data__outcome=ApprovalStatus.EXPIRED).filter(data__has_key="seconds_to_decision")
    decided = decided.exclude(data__seconds_to_decision=None)
    return _event_rows(decided, figure=Cast(KT("data__seconds_to_decision"), FloatField()))


# --- Resolution (analytics.resolution): the matured cohort of closed conversations, flagged per close ---------------


def _resolution_rows(filters: Filters, sample: Q, counted: Q) -> QuerySet[Any]:
    """The conversations closed each day (the AI took them; about the slice) whose resolution window has passed and
    that are in ``sample``; counted: ``counted``. The flags are ``analytics.resolution``'s own."""
    days = return_window_days()
    start, _ = period_bounds(filters)
    closed = _about_slice(_events(filters, EventKind.CLOSED), filters).exclude(
        Exists(of_conversation(EventKind.TRAFFIC_TO_PERSON))
    )
    cohort = _one_per_day(closed).annotate(**resolution_flags(days), first=~Q(conversation_id__in=returns_since(start)))
    return _event_rows(
        cohort.filter(matured(days) & sample), counted=ExpressionWrapper(counted, output_field=BooleanField())
    )


def reopen_rows(filters: Filters) -> QuerySet[Any]:
    """Helpdesk tickets solved each day (one row per ticket and day); counted: reopened after that solve."""
    solved = _about_slice(_events(filters, EventKind.TICKET_SOLVED), filters).exclude(conversation_id="")
    solved = solved.annotate(ticket=KT("data__ticket"))
    reopened_after = of_conversation(EventKind.TICKET_REOPENED).filter(
        created_at__gt=OuterRef("created_at"), data__ticket=OuterRef("data__ticket")
    )
    return _event_rows(_one_per_day(solved, "ticket"), counted=Exists(reopened_after))


def _review_rows(filters: Filters, provider: str, counted: Any) -> QuerySet[Any]:
    """The review items a QA metric counts over the period (``qa.metrics.reviewed_items``, given the whole query),
    by the day each came to stand."""
    items = reviewed_items(metric_query(provider, filters)).annotate(cid=Cast("conversation_id", CharField()))
    return (
        items.annotate(day=TruncDate("finalised_at"), at=F("finalised_at"), counted=counted)
        .annotate(figure=Value(None, output_field=FloatField()))
        .order_by("-at", "cid")
    )


def coverage_rows(filters: Filters) -> QuerySet[Any]:
    """Conversations the AI answered that were closed each day (not tests); counted: a QA review stands. As
    ``qa.metrics.qa_coverage`` reads them: by channel and intent (a turn about it)."""
    start, end = period_bounds(filters)
    ended = Conversation.objects.filter(
        Exists(TurnTrace.objects.filter(conversation=OuterRef("pk"))),
        is_test=False,
        closed_at__gte=start,
        closed_at__lt=end,
    )
    if filters.channel:
        ended = ended.filter(channel=filters.channel)
    if filters.intent:
        ended = ended.filter(Exists(TurnTrace.objects.filter(conversation=OuterRef("pk"), intent=filters.intent)))
    reviewed = ReviewItem.objects.filter(
        conversation=OuterRef("pk"), status__in=FINAL_STATUSES, final_review__isnull=False
    )
    return (
        ended.annotate(cid=Cast("id", CharField()))
        .annotate(day=TruncDate("closed_at"), at=F("closed_at"), counted=Exists(reviewed))
        .annotate(figure=Value(None, output_field=FloatField()))
        .order_by("-at", "cid")
    )


_SAME_JUDGEMENT = ExpressionWrapper(
    Q(final_review__was_escalated=F("final_review__escalation_needed")), output_field=BooleanField()
)

DRILLDOWNS: dict[str, Drilldown] = {
    "containment_rate": Drilldown(containment_rows, "conversations closed", counted="never reached a person"),
    "escalation_rate": Drilldown(escalation_rows, "conversations the agent answered", counted="escalated that day"),
    "csat": Drilldown(_csat_rows, "rated conversations", figure="score"),
    "csat_ai": Drilldown(
        lambda filters: _csat_rows(filters, reached_person=False),
        "rated conversations the AI handled alone",
        figure="score",
    ),
    "csat_human": Drilldown(
        lambda filters: _csat_rows(filters, reached_person=True),
        "rated conversations a person handled",
        figure="score",
    ),
    "failed_retrieval_rate": Drilldown(failed_retrieval_rows, "knowledge questions", counted="no fitting source"),
    "first_human_reply_s": Drilldown(first_reply_rows, "first replies after a handoff", figure="seconds"),
    "handle_time_after_handoff_s": Drilldown(
        handle_time_rows, "handed-over conversations closed", figure="seconds to close"
    ),
    "approval_turnaround_s": Drilldown(approval_rows, "approval requests decided", figure="seconds to decide"),
    "deflection_rate": Drilldown(
        lambda filters: _resolution_rows(filters, Q(), DEFLECTED),
        "conversations closed whose resolution window has passed",
        counted="deflected (no person, no return to one)",
    ),
    "first_contact_resolution": Drilldown(
        lambda filters: _resolution_rows(filters, Q(first=True), RESOLVED & STAYED),
        "first contacts closed whose resolution window has passed",
        counted="resolved, no reopen, no return",
    ),
    "durable_resolution": Drilldown(
        lambda filters: _resolution_rows(filters, RESOLVED, STAYED),
        "resolved conversations whose resolution window has passed",
        counted="no reopen, no return",
    ),
    "reopen_rate": Drilldown(reopen_rows, "helpdesk tickets solved", counted="reopened"),
    "qa_pass_rate": Drilldown(
        lambda filters: _review_rows(filters, "qa_pass_rate", F("final_review__passed")),
        "QA-reviewed conversations",
        counted="passed",
    ),
    "policy_breach_rate": Drilldown(
        lambda filters: _review_rows(filters, "policy_breach_rate", F("final_review__policy_breach")),
        "QA-reviewed conversations",
        counted="policy breach",
    ),
    "escalation_accuracy": Drilldown(
        lambda filters: _review_rows(filters, "escalation_accuracy", _SAME_JUDGEMENT),
        "QA-reviewed conversations",
        counted="escalation judged right",
    ),
    "qa_coverage": Drilldown(coverage_rows, "conversations the AI answered, closed", counted="reviewed"),
}

ELSEWHERE: dict[str, Elsewhere] = {
    "regression_pass_rate": Elsewhere(
        "This figure comes from the latest finished run of each regression suite linked to the channel's gates, not "
        "from customer conversations: its evidence is the suite runs and their case results.",
        "admin:suites_suiterun_changelist",
        "Suite runs",
    ),
    "source_freshness": Elsewhere(
        "This figure is the state of the approved knowledge sources on the day, not conversations: its evidence is "
        "the sources and their review dates.",
        "admin:knowledge_knowledgesource_changelist",
        "Knowledge sources",
    ),
}


def drill_summary(rows: QuerySet[Any]) -> dict[str, Any]:
    """Return how many rows, how many counted and the average figure, in one query over the rows.

    Written as SQL around the rows' own query: Django's ``aggregate()`` over these annotations (an ``Exists``, a
    boolean expression) names the annotation instead of its expression and the database refuses the query.
    """
    sql, params = rows.values(*ROW_FIELDS).order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE rows.counted::boolean), avg(rows.figure::float) "
            f"FROM ({sql}) AS rows",
            params,
        )
        n, counted, average = cursor.fetchone()
    return {"n": n, "counted": counted, "average": average}


def drill_row(values: dict[str, Any]) -> DrillRow:
    return DrillRow(**{field: values[field] for field in ROW_FIELDS})
