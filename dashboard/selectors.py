"""The dashboard's reads: each report metric's series and period figure, each channel's gates against their
thresholds, the top intents and failed queries, the sources past their review date and the approval backlog.

Metrics come from ``analytics.rollups`` (stored daily rollups plus today, live) and gate criteria from the same
providers the gates read (``governance.metrics.metric_read``), so the dashboard never has a definition of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import CharField, Count, Func, Max, Q, QuerySet, Value
from django.db.models.functions import Cast, Lower
from django.utils import timezone

from agent.models import Conversation, Intent, PromptVersion
from agent.responders import RESPONDERS
from analytics.metrics import containment_by_intent
from analytics.models import AnalyticsEvent, EventKind, MetricRollup
from analytics.report import REPORT_METRICS, slices_not_narrowed
from analytics.rollups import metric_series, rolled_up_metrics, series_total
from analytics.slices import events_in_window, turn_of_slice
from dashboard.drilldown import console_url, metric_query, period_bounds
from dashboard.figures import Figure, SeriesPoint, metric_label
from dashboard.filters import Filters
from governance.gates import CriterionResult, evaluate_criteria, metric_key
from governance.metrics import MetricQuery, metric_read
from governance.models import (
    ApprovalRequest,
    ApprovalStatus,
    ChannelRollout,
    GateCriterion,
    GateEvaluation,
    RolloutGate,
    RolloutStage,
)
from governance.models.gates import CriterionKind
from knowledge.models import FailedRetrieval, Freshness, KnowledgeSource, SourceStatus

TOP_INTENTS = 10
TOP_FAILED_QUERIES = 20
LIST_LIMIT = 50


# --- Metrics -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSeries:
    """One report metric over the period: its days and the period's figure (``measured`` False: no provider yet)."""

    name: str
    unit: str
    definition: str
    measured: bool
    total: Figure
    points: list[SeriesPoint] = field(default_factory=list)

    @property
    def label(self) -> str:
        return metric_label(self.name)


def metric_names() -> list[str]:
    """Every report metric, in the report's order (new ones appear by themselves)."""
    return list(REPORT_METRICS)


def _unknown_series(name: str, filters: Filters, why: str, *, measured: bool) -> MetricSeries:
    """Every day unknown, saying why (a metric not measured yet, or a slice its provider does not narrow by)."""
    spec = REPORT_METRICS[name]
    unknown = Figure(spec.unit, None, 0, why=why)
    days = [filters.start + timedelta(days=offset) for offset in range(filters.days)]
    return MetricSeries(name, spec.unit, spec.definition, measured, unknown, [SeriesPoint(d, unknown) for d in days])


def metric_series_read(name: str, filters: Filters) -> MetricSeries:
    """Return ``name`` per day over the period and its period figure (``series_total``); raise KeyError for a name
    that is not a report metric. A slice the metric's provider does not narrow by leaves it unknown, as in the
    report: its value would not be the slice's."""
    spec = REPORT_METRICS[name]
    if name not in rolled_up_metrics():
        return _unknown_series(name, filters, spec.definition, measured=False)
    not_narrowed = slices_not_narrowed(name, **filters.slices)
    if not_narrowed:
        why = f"not narrowed by {', '.join(not_narrowed)}: this metric's value would not be that slice's"
        return _unknown_series(name, filters, why, measured=True)
    days = metric_series(name, start=filters.start, end=filters.end, channel=filters.channel, **filters.slices)
    points = [SeriesPoint(d.day, Figure(spec.unit, d.value, d.n, d.part, d.why)) for d in days]
    total = series_total(name, days)
    why = total.why
    if total.value is None and not why:
        reasons = sorted({d.why for d in days if d.why})
        why = "; ".join(reasons) if reasons else "nothing in this period to compute it from"
    total_figure = Figure(spec.unit, total.value, total.n, total.part, why)
    return MetricSeries(name, spec.unit, spec.definition, True, total_figure, points)


def metric_series_all(filters: Filters) -> list[MetricSeries]:
    return [metric_series_read(name, filters) for name in metric_names()]


# --- Rollout gates -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateLine:
    """One criterion of a gate around the channel's stage, read now."""

    gate_stage: int
    result: CriterionResult

    @property
    def comparator_text(self) -> str:
        return "at least" if self.result.comparator == "gte" else "at most"

    @property
    def threshold_text(self) -> str:
        """The threshold as written (0.9, not 0.9000)."""
        return format(self.result.threshold.normalize(), "f")


@dataclass(frozen=True)
class ChannelGates:
    rollout: ChannelRollout
    lines: list[GateLine]
    next_gate: RolloutGate | None
    last_evaluation: GateEvaluation | None

    @property
    def stage_label(self) -> str:
        return RolloutStage(self.rollout.stage).label


def criteria_read(channel: str, criteria: list[GateCriterion]) -> list[CriterionResult]:
    """Read each criterion's metric now, as ``governance.gates.rollout_gate_evaluate`` does, without recording."""
    values: dict = {}
    errors: dict = {}
    samples: dict = {}
    parts: dict = {}
    for key in dict.fromkeys(metric_key(criterion) for criterion in criteria):
        reading = metric_read(MetricQuery(channel, key.metric, key.intent, key.window_days))
        values[key], samples[key], parts[key] = reading.value, reading.n, reading.part
        if reading.error:
            errors[key] = reading.error
    return evaluate_criteria(criteria, values, errors, samples, parts)


def channel_gates(channel: str = "") -> list[ChannelGates]:
    """Each channel's stage with the rollback criteria of the gate into it and every criterion of the gate into the
    next stage, each against its threshold with its sample (the criteria a gate evaluation reads)."""
    rollouts = list(ChannelRollout.objects.filter(channel=channel) if channel else ChannelRollout.objects.all())
    gates = RolloutGate.objects.filter(channel__in=rollouts).prefetch_related("criteria")
    by_stage = {(gate.channel_id, gate.stage): gate for gate in gates}
    latest = (
        GateEvaluation.objects.filter(channel__in=rollouts)
        .order_by("channel_id", "-evaluated_at")
        .distinct("channel_id")
    )
    evaluations = {evaluation.channel_id: evaluation for evaluation in latest}
    channels = []
    for rollout in rollouts:
        current = by_stage.get((rollout.pk, rollout.stage))
        upcoming = by_stage.get((rollout.pk, rollout.stage + 1))
        rollback = [c for c in current.criteria.all() if c.kind == CriterionKind.ROLLBACK] if current else []
        ahead = list(upcoming.criteria.all()) if upcoming else []
        results = criteria_read(rollout.channel, [*rollback, *ahead])
        lines = [GateLine(rollout.stage, result) for result in results[: len(rollback)]]
        lines += [GateLine(rollout.stage + 1, result) for result in results[len(rollback) :]]
        channels.append(ChannelGates(rollout, lines, upcoming, evaluations.get(rollout.pk)))
    return channels


# --- Intents and failed queries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentLine:
    intent: str
    conversations: int
    containment: Figure


def _turns(filters: Filters) -> QuerySet[AnalyticsEvent]:
    """The period's answered turns in the channel, of the slice asked for (``analytics.slices.turn_of_slice``)."""
    query = metric_query("", filters)
    return events_in_window(query, EventKind.TURN_ANSWERED).filter(turn_of_slice(query))


def intents_top(filters: Filters, limit: int = TOP_INTENTS) -> list[IntentLine]:
    """The intents the agent worked on most (conversations with an answered turn about it) and each one's
    containment over the whole period, as ``analytics_report --intent`` reads it (``containment_by_intent``: the
    provider's definition, every intent in one query)."""
    top = (
        _turns(filters)
        .exclude(intent="")
        .values("intent")
        .annotate(conversations=Count("conversation_id", distinct=True))
        .order_by("-conversations", "intent")[:limit]
    )
    spec = REPORT_METRICS["containment_rate"]
    top = list(top)
    containment = containment_by_intent(metric_query(spec.provider, filters), [row["intent"] for row in top])
    lines = []
    for row in top:
        reading = containment[row["intent"]]
        figure = Figure(spec.unit, reading.value, reading.n or 0, reading.part, reading.why)
        lines.append(IntentLine(row["intent"], row["conversations"], figure))
    return lines


@dataclass(frozen=True)
class FailedQuery:
    text: str
    count: int
    last_seen: datetime
    sources: list[KnowledgeSource]


class _Normalised(Func):
    """A query as people would group it: lower case, runs of white space as one space, no space or ?!. at the ends."""

    template = "btrim(regexp_replace(%(expressions)s, '[[:space:]]+', ' ', 'g'), ' ?!.')"
    output_field = CharField()


def failed_queries_top(filters: Filters, limit: int = TOP_FAILED_QUERIES) -> list[FailedQuery]:
    """The period's failed retrievals grouped by normalised query text, most frequent first, with the knowledge
    sources their best (but not good enough) passages came from."""
    start, end = period_bounds(filters)
    failures = FailedRetrieval.objects.filter(created_at__gte=start, created_at__lt=end)
    if filters.channel:
        in_channel = Conversation.objects.filter(channel=filters.channel).annotate(cid=Cast("id", CharField()))
        failures = failures.filter(conversation_id__in=in_channel.values("cid"))
    rows = list(
        failures.annotate(text=_Normalised(Lower("query")))
        .exclude(text="")
        .values("text")
        .annotate(
            count=Count("pk"),
            last_seen=Max("created_at"),
            source_ids=ArrayAgg(
                "best_chunk__source_id", distinct=True, filter=Q(best_chunk__isnull=False), default=Value([])
            ),
        )
        .order_by("-count", "-last_seen")[:limit]
    )
    sources = KnowledgeSource.objects.in_bulk({pk for row in rows for pk in row["source_ids"]})
    return [
        FailedQuery(
            row["text"], row["count"], row["last_seen"], [sources[pk] for pk in row["source_ids"] if pk in sources]
        )
        for row in rows
    ]


# --- What waits for people -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLine:
    source: KnowledgeSource
    freshness: str
    days_past: int


def sources_past_review(limit: int = LIST_LIMIT) -> tuple[int, list[SourceLine]]:
    """Approved, unretired sources whose review date has passed (review due, or stale after the grace period),
    oldest first: the ones ``source_freshness`` counts as not fresh."""
    today = timezone.localdate()
    past = (
        KnowledgeSource.objects.filter(status=SourceStatus.APPROVED, review_due_on__lte=today)
        .filter(Q(retire_after__isnull=True) | Q(retire_after__gt=today))
        .select_related("owner")
        .order_by("review_due_on", "name")
    )
    lines = [
        SourceLine(source, Freshness(source.freshness(today)).label, (today - source.review_due_on).days)
        for source in past[:limit]
    ]
    return past.count(), lines


@dataclass(frozen=True)
class WaitingApproval:
    request: ApprovalRequest
    waiting: timedelta
    expired: bool

    @property
    def console_url(self) -> str:
        return console_url(self.request.conversation_id) if self.request.conversation_id else ""


def approvals_waiting(limit: int = LIST_LIMIT) -> tuple[int, list[WaitingApproval]]:
    """Pending approval requests, oldest first, with how long each has waited."""
    now = timezone.now()
    pending = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).select_related("action")
    lines = [
        WaitingApproval(request, now - request.created_at, request.expires_at <= now)
        for request in pending.order_by("created_at", "pk")[:limit]
    ]
    return pending.count(), lines


# --- The filter form's suggestions ---------------------------------------------------------------------------------


def filter_options() -> dict[str, list[str]]:
    """Values the filter form suggests: channels with a rollout or a rollup, intents, responders, prompt versions."""
    channels = set(ChannelRollout.objects.values_list("channel", flat=True))
    channels |= set(MetricRollup.objects.exclude(channel="").values_list("channel", flat=True).distinct())
    return {
        "channels": sorted(channels),
        "intents": list(Intent.objects.order_by("name").values_list("name", flat=True)),
        "responders": sorted(RESPONDERS),
        "prompt_versions": [str(prompt) for prompt in PromptVersion.objects.order_by("name", "-version")],
    }
