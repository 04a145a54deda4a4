"""Submitting a review and settling a disagreement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from agent.models import Author, Conversation, Message, TurnTrace
from governance.audit import audit_record
from governance.models import EventType
from qa.exceptions import InvalidInput, ItemNotOpen, NotPermitted
from qa.models import (
    CriterionResult,
    CriterionScore,
    ItemStatus,
    Review,
    ReviewItem,
    ScorecardCriterion,
    TurnAnnotation,
)
from qa.models.review import OPEN_STATUSES
from qa.scoring import ConversationFacts, Line, applies, pass_mark, reviews_agree, score_lines

REVIEW = "qa.review_reviewitem"
SETTLE = "qa.settle_reviewitem"
LABELS = ("escalation_needed", "policy_breach", "resolved")
MAX_COMMENT = 4000


def may_review(user: AbstractBaseUser, item: ReviewItem) -> bool:
    """Return whether ``user`` may review ``item``: assigned to it (object permission) or a manager (model-wide)."""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.has_perm(REVIEW) or user.has_perm(REVIEW, item)


def may_settle(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(SETTLE))


def conversation_facts(conversation: Conversation) -> ConversationFacts:
    """Return what decides which criteria apply (two queries)."""
    return ConversationFacts(
        escalated=bool(conversation.escalation_reason),
        with_actions=TurnTrace.objects.filter(conversation=conversation).exclude(tool_calls=[]).exists(),
        knowledge_answers=Message.objects.filter(conversation=conversation, author=Author.AGENT)
        .exclude(citations=[])
        .exists(),
    )


def _lines(
    criteria: Sequence[ScorecardCriterion], facts: ConversationFacts, results: Mapping[Any, Any]
) -> tuple[list[tuple[ScorecardCriterion, str, str]], dict[str, str]]:
    """Return (criterion, result, comment) for every enabled criterion, and the errors in ``results``."""
    given = {str(key): value for key, value in results.items()}
    known = {str(c.pk) for c in criteria}
    errors = {
        f"criterion-{key}": "This criterion is not on the scorecard (any more)." for key in given if key not in known
    }
    lines = []
    for criterion in criteria:
        raw = given.get(str(criterion.pk))
        raw = raw if isinstance(raw, Mapping) else {"result": raw}
        comment = str(raw.get("comment") or "").strip()[:MAX_COMMENT]
        if not applies(criterion.applies_to, facts):
            # The scorecard says it does not apply to this conversation: n/a, whatever was sent.
            lines.append((criterion, CriterionResult.NA, comment))
        elif raw.get("result") in CriterionResult.values:
            lines.append((criterion, raw["result"], comment))
        else:
            errors[f"criterion-{criterion.pk}"] = f"“{criterion.name}”: choose pass, fail or n/a."
    return lines, errors


def _labels(labels: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in LABELS:
        value = labels.get(name)
        if not isinstance(value, bool):
            errors[name] = f"Answer {name.replace('_', ' ')}: yes or no."
        values[name] = value
    values["breached_policy"] = str(labels.get("breached_policy") or "").strip()[:200]
    if values["policy_breach"] is True and not values["breached_policy"]:
        errors["breached_policy"] = "Name the policy that was breached."
    if values["policy_breach"] is not True:
        values["breached_policy"] = ""
    return values, errors


def _annotations(conversation: Conversation, annotations: Mapping[Any, str]) -> tuple[dict[int, str], dict[str, str]]:
    notes = {}
    for key, note in annotations.items():
        text = str(note or "").strip()
        if text:
            try:
                notes[int(key)] = text[:MAX_COMMENT]
            except (TypeError, ValueError):
                return {}, {"annotations": f"{key!r} is not a turn of this conversation."}
    turns = set(TurnTrace.objects.filter(conversation=conversation, pk__in=notes).values_list("pk", flat=True))
    unknown = sorted(set(notes) - turns)
    return notes, ({"annotations": f"Turns {unknown} are not in this conversation."} if unknown else {})


def _finalise(item: ReviewItem, now: Any) -> None:
    reviews = list(item.reviews.order_by("submitted_at", "pk"))
    if len(reviews) < item.reviews_needed:
        item.status = ItemStatus.IN_REVIEW
        return
    first = reviews[0]
    if all(reviews_agree(first.passed, first.labels, other.passed, other.labels) for other in reviews[1:]):
        item.status, item.final_review, item.finalised_at = ItemStatus.DONE, first, now
    else:
        item.status = ItemStatus.DISPUTED


@transaction.atomic
def qa_review_submit(
    *,
    item: ReviewItem,
    reviewer: AbstractBaseUser,
    results: Mapping[Any, Any],
    labels: Mapping[str, Any],
    annotations: Mapping[Any, str] | None = None,
    comment: str = "",
) -> Review:
    """Record ``reviewer``'s review of ``item``: score it, and finalise the item when it has all its reviews.

    ``results``: criterion id → ``{"result": "pass"|"fail"|"na", "comment": ...}`` (or just the result);
    ``labels``: ``escalation_needed``, ``policy_breach``, ``resolved`` (booleans) and ``breached_policy``;
    ``annotations``: turn trace id → note. Raises NotPermitted, ItemNotOpen or InvalidInput (nothing is stored).
    """
    item = ReviewItem.objects.select_for_update().select_related("conversation").get(pk=item.pk)
    if not may_review(reviewer, item):
        raise NotPermitted("This item is not assigned to you.")
    if item.status not in OPEN_STATUSES:
        raise ItemNotOpen(f"This item is {item.get_status_display().lower()}: it takes no more reviews.")
    if item.reviews.filter(reviewer=reviewer).exists():
        raise ItemNotOpen("You have already reviewed this item.")
    criteria = list(ScorecardCriterion.objects.filter(enabled=True))
    lines, errors = _lines(criteria, conversation_facts(item.conversation), results)
    label_values, label_errors = _labels(labels)
    notes, note_errors = _annotations(item.conversation, annotations or {})
    errors |= label_errors | note_errors
    if errors:
        raise InvalidInput(errors)
    mark = pass_mark()
    score = score_lines((Line(c.weight, c.auto_fail, result) for c, result, _ in lines), mark=mark)
    now = timezone.now()
    review = Review.objects.create(
        item=item,
        reviewer=reviewer,
        submitted_at=now,
        score=score.score,
        passed=score.passed,
        pass_mark=mark,
        was_escalated=bool(item.conversation.escalation_reason),
        comment=str(comment or "").strip()[:MAX_COMMENT],
        **label_values,
    )
    CriterionScore.objects.bulk_create(
        CriterionScore(review=review, criterion=c, result=r, weight=c.weight, auto_fail=c.auto_fail, comment=text)
        for c, r, text in lines
    )
    TurnAnnotation.objects.bulk_create(TurnAnnotation(review=review, trace_id=pk, note=n) for pk, n in notes.items())
    _finalise(item, now)
    item.save(update_fields=["status", "final_review", "finalised_at"])
    audit_record(
        actor=reviewer,
        event_type=EventType.QA_REVIEWED,
        subject=review,
        conversation_id=str(item.conversation_id),
        decision="qa.reviewed",
        reason=f"score {score.score if score.score is not None else '—'}, {'passed' if score.passed else 'failed'}",
        data={
            "item": item.pk,
            "score": score.score,
            "passed": score.passed,
            "auto_failed": score.auto_failed,
            "labels": {name: label_values[name] for name in LABELS},
            "results": {str(c.pk): r for c, r, _ in lines},
            "item_status": item.status,
        },
    )
    return review


@transaction.atomic
def qa_item_settle(*, item: ReviewItem, review: Review, actor: AbstractBaseUser, note: str = "") -> ReviewItem:
    """Settle a disputed item: ``review`` is the one that stands (a manager who reviewed the item may not settle it)."""
    if not may_settle(actor):
        raise NotPermitted("Only support managers settle disagreements.")
    item = ReviewItem.objects.select_for_update().get(pk=item.pk)
    if item.status != ItemStatus.DISPUTED:
        raise ItemNotOpen(f"Only disputed items are settled; this one is {item.get_status_display().lower()}.")
    if review.item_id != item.pk:
        raise InvalidInput({"review": "That review is not one of this item's."})
    if item.reviews.filter(reviewer=actor).exists():
        raise NotPermitted("You reviewed this item yourself: another manager settles it.")
    item.status, item.final_review, item.finalised_at = ItemStatus.SETTLED, review, timezone.now()
    item.settled_by, item.settle_note = actor, str(note or "").strip()[:MAX_COMMENT]
    item.save(update_fields=["status", "final_review", "finalised_at", "settled_by", "settle_note"])
    audit_record(
        actor=actor,
        event_type=EventType.QA_SETTLED,
        subject=item,
        conversation_id=str(item.conversation_id),
        decision="qa.settled",
        reason=item.settle_note,
        data={"review": review.pk, "passed": review.passed},
    )
    return item
