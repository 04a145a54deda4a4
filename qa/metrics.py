"""Metric providers for the rollout gates from QA reviews (governance.metrics): each returns ``Measurement(value, n)``.

The sample: review items whose final review came to stand (done, or settled by a manager) in the last
``window_days``, for conversations of ``query.channel`` — per intent when the criterion names one (conversations with
a turn of that intent). Test conversations never count; disputed items count once settled.
"""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from agent.models import Conversation, TurnTrace
from governance.metrics import RATE, Measurement, MetricInfo, MetricProvider, MetricQuery
from qa.models import ReviewItem
from qa.models.review import FINAL_STATUSES


def reviewed_items(query: MetricQuery) -> QuerySet[ReviewItem]:
    """Return the finalised items a QA metric is computed from."""
    start, end = query.bounds()
    items = ReviewItem.objects.filter(
        status__in=FINAL_STATUSES,
        final_review__isnull=False,
        finalised_at__gte=start,
        finalised_at__lt=end,
        conversation__is_test=False,
    )
    if query.channel:  # a report may ask for every channel
        items = items.filter(conversation__channel=query.channel)
    if query.intent:
        items = items.filter(
            Exists(TurnTrace.objects.filter(conversation=OuterRef("conversation_id"), intent=query.intent))
        )
    return items


def qa_pass_rate(query: MetricQuery) -> Measurement:
    """Passed ÷ reviewed."""
    counts = reviewed_items(query).aggregate(n=Count("pk"), passed=Count("pk", filter=Q(final_review__passed=True)))
    return Measurement.share(counts["passed"], counts["n"])


_ESCALATED = Q(final_review__was_escalated=True)
_NEEDED = Q(final_review__escalation_needed=True)


def _escalation_counts(query: MetricQuery) -> dict[str, int]:
    return reviewed_items(query).aggregate(
        n=Count("pk"),
        escalated=Count("pk", filter=_ESCALATED),
        escalated_needed=Count("pk", filter=_ESCALATED & _NEEDED),
        not_escalated=Count("pk", filter=~_ESCALATED),
        missed=Count("pk", filter=~_ESCALATED & _NEEDED),
    )


def escalation_accuracy(query: MetricQuery) -> Measurement:
    """(Escalations judged necessary + non-escalations judged not needed) ÷ reviewed."""
    c = _escalation_counts(query)
    return Measurement.share(c["escalated_needed"] + (c["not_escalated"] - c["missed"]), c["n"])


def escalation_precision(query: MetricQuery) -> Measurement:
    """Escalations judged necessary ÷ escalated conversations reviewed."""
    c = _escalation_counts(query)
    return Measurement.share(c["escalated_needed"], c["escalated"])


def missed_escalation_rate(query: MetricQuery) -> Measurement:
    """Conversations judged to need a person but not escalated ÷ non-escalated conversations reviewed."""
    c = _escalation_counts(query)
    return Measurement.share(c["missed"], c["not_escalated"])


def policy_breach_rate(query: MetricQuery) -> Measurement:
    """Reviews labelled "policy breach" ÷ reviewed."""
    counts = reviewed_items(query).aggregate(
        n=Count("pk"), breaches=Count("pk", filter=Q(final_review__policy_breach=True))
    )
    return Measurement.share(counts["breaches"], counts["n"])


def qa_coverage(query: MetricQuery) -> Measurement:
    """Conversations the AI answered that ended in the window (closed, not tests) with a review standing ÷ those
    conversations."""
    start, end = query.bounds()
    # The conversations the AI answered (QA scores its work; one outside its traffic share has nothing to score).
    answered = Exists(TurnTrace.objects.filter(conversation=OuterRef("pk")))
    ended = Conversation.objects.filter(answered, is_test=False, closed_at__gte=start, closed_at__lt=end)
    if query.channel:
        ended = ended.filter(channel=query.channel)
    if query.intent:
        ended = ended.filter(Exists(TurnTrace.objects.filter(conversation=OuterRef("pk"), intent=query.intent)))
    reviewed = ReviewItem.objects.filter(
        conversation=OuterRef("pk"), status__in=FINAL_STATUSES, final_review__isnull=False
    )
    counts = ended.aggregate(n=Count("pk"), reviewed=Count("pk", filter=Q(Exists(reviewed))))
    return Measurement.share(counts["reviewed"], counts["n"])


PROVIDERS: dict[str, MetricProvider] = {
    "qa_coverage": qa_coverage,
    "qa_pass_rate": qa_pass_rate,
    "escalation_accuracy": escalation_accuracy,
    "escalation_precision": escalation_precision,
    "missed_escalation_rate": missed_escalation_rate,
    "policy_breach_rate": policy_breach_rate,
}

EXTRA_METRICS: dict[str, MetricInfo] = {
    "qa_coverage": MetricInfo("Share of the conversations ended in the window that a QA review scored.", RATE),
    "escalation_precision": MetricInfo("Share of reviewed escalations a reviewer judged necessary.", RATE),
    "missed_escalation_rate": MetricInfo(
        "Share of reviewed conversations that were not escalated but a reviewer judged needed a person.", RATE
    ),
}
