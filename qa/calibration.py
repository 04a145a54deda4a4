"""The calibration view's reads: per-criterion and per-label agreement (Cohen's kappa) over the items two reviewers
scored, and the disagreements waiting for a manager."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass

from django.db.models import Count, Prefetch

from qa.agreement import Agreement, cohen_kappa
from qa.models import CriterionScore, ItemStatus, Review, ReviewItem, ScorecardCriterion

LABELS = {
    "passed": "Passed (overall)",
    "escalation_needed": "Label: escalation needed",
    "policy_breach": "Label: policy breach",
    "resolved": "Label: resolved",
}
DISAGREEMENT_LIMIT = 100


@dataclass
class AgreementRow:
    name: str
    agreement: Agreement


@dataclass
class Calibration:
    items: int
    criteria: list[AgreementRow]
    labels: list[AgreementRow]
    disputed: list[ReviewItem]


def _double_reviewed() -> list[ReviewItem]:
    reviews = Review.objects.select_related("reviewer").order_by("submitted_at", "pk")
    return list(
        ReviewItem.objects.filter(reviews_needed=2)
        .annotate(n=Count("reviews"))
        .filter(n__gte=2)
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=reviews.prefetch_related(
                    Prefetch("scores", queryset=CriterionScore.objects.only("review_id", "criterion_id", "result"))
                ),
            )
        )
        .select_related("conversation")
        .order_by("-created_at")
    )


def calibration() -> Calibration:
    """Return the agreement figures and the disputed items (a fixed number of queries)."""
    items = _double_reviewed()
    by_criterion: dict[int, list[tuple[Hashable, Hashable]]] = defaultdict(list)
    by_label: dict[str, list[tuple[Hashable, Hashable]]] = defaultdict(list)
    for item in items:
        first, second = list(item.reviews.all())[:2]
        a = {s.criterion_id: s.result for s in first.scores.all()}
        b = {s.criterion_id: s.result for s in second.scores.all()}
        for criterion_id in a.keys() & b.keys():
            by_criterion[criterion_id].append((a[criterion_id], b[criterion_id]))
        for label in LABELS:
            by_label[label].append((getattr(first, label), getattr(second, label)))
    names = dict(ScorecardCriterion.objects.filter(pk__in=by_criterion).values_list("pk", "name"))
    criteria = sorted(
        (AgreementRow(names.get(pk, f"criterion {pk}"), cohen_kappa(pairs)) for pk, pairs in by_criterion.items()),
        key=lambda row: row.name,
    )
    labels = [AgreementRow(title, cohen_kappa(by_label[label])) for label, title in LABELS.items()]
    disputed = [item for item in items if item.status == ItemStatus.DISPUTED][:DISAGREEMENT_LIMIT]
    return Calibration(items=len(items), criteria=criteria, labels=labels, disputed=disputed)
