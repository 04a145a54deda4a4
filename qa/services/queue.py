"""Filling the review queue: the sampling rules' new conversations become items, assigned round-robin to reviewers.

Who is assigned: active staff in the QA reviewer group, in a fixed rotation (by user id) that continues after the
reviewer of the latest assignment. Support managers are not assigned (they may review any item, and they settle
disagreements: a manager on both sides would settle their own review). With nobody in the QA reviewer group, items
stay unassigned — managers see them — and a later run assigns them.

Blind double review: an item needs two reviews when a stable hash of its conversation id falls in the share
(``double_review_percent``) of the rule that queued it first, and at least two reviewers exist. It is decided once,
when the item is created, so running the fill again never changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from guardian.shortcuts import assign_perm

from governance.audit import Actor, audit_record
from governance.models import EventType
from governance.roles import GROUP_NAMES, Role
from qa.models import ReviewAssignment, ReviewItem, ReviewReason, SamplingRule
from qa.models.review import OPEN_STATUSES
from qa.sampling import bucket, rule_candidates

REVIEW_PERMISSION = "qa.review_reviewitem"
# pg_advisory_xact_lock key for the queue fill: two fills at once (beat and a manual run) take turns.
QUEUE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"steward:qa-queue").digest()[:8], "big", signed=True)


@dataclass
class FillResult:
    items: list[int] = field(default_factory=list)
    reasons: int = 0
    assignments: list[tuple[int, int]] = field(default_factory=list)
    double: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "items": len(self.items),
            "reasons": self.reasons,
            "assignments": len(self.assignments),
            "double reviews": self.double,
        }


def reviewer_pool() -> list[AbstractBaseUser]:
    """Return the reviewers items are assigned to, in rotation order."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, groups__name=GROUP_NAMES[Role.QA_REVIEWER])
        .distinct()
        .order_by("pk")
    )


class Rotation:
    """Round-robin over ``reviewers``, starting after the one who was assigned last."""

    def __init__(self, reviewers: Sequence[AbstractBaseUser], *, last_id: int | None) -> None:
        self.reviewers = list(reviewers)
        ids = [r.pk for r in self.reviewers]
        later = [i for i, pk in enumerate(ids) if last_id is not None and pk > last_id]
        self.position = later[0] if later else 0

    def take(self, *, exclude: set[int]) -> AbstractBaseUser | None:
        for _ in range(len(self.reviewers)):
            reviewer = self.reviewers[self.position]
            self.position = (self.position + 1) % len(self.reviewers)
            if reviewer.pk not in exclude:
                return reviewer
        return None


def _reviews_needed(rule: SamplingRule, conversation_id: Any, pool_size: int) -> int:
    if pool_size < 2:
        return 1
    return 2 if bucket("double-review", conversation_id, buckets=100) < rule.double_review_percent else 1


def _queue(rule: SamplingRule, now: datetime, pool_size: int, result: FillResult) -> None:
    for conversation_id, detail in rule_candidates(rule, now=now):
        item, created = ReviewItem.objects.get_or_create(
            conversation_id=conversation_id,
            defaults={"reviews_needed": _reviews_needed(rule, conversation_id, pool_size)},
        )
        ReviewReason.objects.create(item=item, rule=rule, conversation_id=conversation_id, detail=detail[:300])
        result.reasons += 1
        if created:
            result.items.append(item.pk)
            result.double += item.reviews_needed == 2


def _assign(rotation: Rotation, result: FillResult) -> None:
    """Give every open item as many reviewers as it needs (new items, and items queued when nobody could review)."""
    if not rotation.reviewers:
        return
    short = (
        ReviewItem.objects.filter(status__in=OPEN_STATUSES)
        .annotate(assigned=Count("assignments"))
        .order_by("created_at", "pk")
    )
    for item in short:
        if item.assigned >= item.reviews_needed:
            continue
        taken = set(item.assignments.values_list("reviewer_id", flat=True))
        taken |= set(item.reviews.values_list("reviewer_id", flat=True))
        for _ in range(item.reviews_needed - item.assigned):
            reviewer = rotation.take(exclude=taken)
            if reviewer is None:
                break
            ReviewAssignment.objects.create(item=item, reviewer=reviewer)
            assign_perm(REVIEW_PERMISSION, reviewer, item)
            taken.add(reviewer.pk)
            result.assignments.append((item.pk, reviewer.pk))


@transaction.atomic
def qa_queue_fill(*, now: datetime | None = None, actor: Actor = None) -> FillResult:
    """Queue what the enabled sampling rules pick, once per rule and conversation, and assign reviewers.

    Idempotent: a second run finds every conversation already queued by its rules and assigns nothing new.
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [QUEUE_LOCK_KEY])
    pool = reviewer_pool()
    result = FillResult()
    for rule in SamplingRule.objects.filter(enabled=True).order_by("pk"):
        _queue(rule, now, len(pool), result)
    last = ReviewAssignment.objects.order_by("-pk").values_list("reviewer_id", flat=True).first()
    _assign(Rotation(pool, last_id=last), result)
    if result.reasons or result.assignments:
        audit_record(
            actor=actor,
            event_type=EventType.QA_QUEUE_FILLED,
            subject_type="qa.reviewitem",
            decision="qa.queue_filled",
            reason=f"{len(result.items)} new items, {result.reasons} reasons, {len(result.assignments)} assignments",
            data={"items": result.items, "assignments": result.assignments, "double": result.double},
        )
    return result
