"""The knowledge metric the rollout gates read: how much of the approved knowledge is within its review window."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from governance.metrics import Measurement, MetricQuery
from knowledge.models import KnowledgeSource, SourceStatus


def source_freshness(query: MetricQuery) -> Measurement:
    """Share of the approved, unretired sources whose review is not yet due (``review_due_on`` after today).

    Knowledge serves every channel alike, so the channel, intent and window of the query do not narrow it: the
    value is today's state, the sample the sources counted.
    """
    today = timezone.localdate()
    counts = (
        KnowledgeSource.objects.filter(status=SourceStatus.APPROVED)
        .filter(Q(retire_after__isnull=True) | Q(retire_after__gt=today))
        .aggregate(approved=Count("pk"), fresh=Count("pk", filter=Q(review_due_on__gt=today)))
    )
    return Measurement.share(counts["fresh"], counts["approved"])
