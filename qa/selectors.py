"""Reads of the QA pages: who may use them, the queue, one item laid out for review, and calibration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Prefetch, QuerySet

from agent.console.selectors import Entry, transcript
from agent.models import Author, Message
from governance.roles import GROUP_NAMES, Role
from knowledge.models import Chunk, KnowledgeSource
from qa.models import (
    CriterionScore,
    ItemStatus,
    Review,
    ReviewAssignment,
    ReviewItem,
    ReviewReason,
    ScorecardCriterion,
    TurnAnnotation,
)
from qa.models.review import OPEN_STATUSES
from qa.scoring import ConversationFacts, applies
from qa.services.review import conversation_facts, may_review, may_settle

QUEUE_LIMIT = 200


# --- Who may use the pages -------------------------------------------------------------------------------------------


def is_qa_reviewer(user: AbstractBaseUser) -> bool:
    return user.groups.filter(name=GROUP_NAMES[Role.QA_REVIEWER]).exists()


def may_use_qa(user: AbstractBaseUser) -> bool:
    """QA reviewers and support managers (who settle), staff and active; everybody else is refused."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    # Reviewers by their group: the role holds no model-wide QA permission (their items come by object permission).
    return may_settle(user) or is_qa_reviewer(user)


def may_see_item(user: AbstractBaseUser, item: ReviewItem) -> bool:
    """Managers see every item; a reviewer sees the items assigned to them and the ones they reviewed."""
    if may_settle(user):
        return True
    return (
        may_review(user, item)
        or item.assignments.filter(reviewer=user).exists()
        or item.reviews.filter(reviewer=user).exists()
    )


# --- The queue -------------------------------------------------------------------------------------------------------


def _queue_queryset() -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.select_related("conversation")
        .annotate(review_count=Count("reviews", distinct=True))
        .prefetch_related(
            Prefetch("reasons", queryset=ReviewReason.objects.select_related("rule").order_by("created_at")),
            Prefetch("assignments", queryset=ReviewAssignment.objects.select_related("reviewer").order_by("pk")),
        )
    )


def queue_for(user: AbstractBaseUser, *, rule_id: int | None = None, status: str = "") -> list[ReviewItem]:
    """Return the items to show: a reviewer's open assignments not yet reviewed by them; for managers every item,
    filtered by rule and status (open, in review and disputed by default). Four queries, however many items."""
    items = _queue_queryset()
    if may_settle(user):
        items = items.filter(status=status) if status else items.filter(status__in=[*OPEN_STATUSES, "disputed"])
        if rule_id is not None:
            items = items.filter(reasons__rule_id=rule_id)
    else:
        items = items.filter(assignments__reviewer=user, status__in=OPEN_STATUSES).exclude(reviews__reviewer=user)
    return list(items.order_by("created_at", "pk")[:QUEUE_LIMIT])


# --- One item ---------------------------------------------------------------------------------------------------------


@dataclass
class CriterionRow:
    criterion: ScorecardCriterion
    applies: bool


@dataclass
class ItemPage:
    item: ReviewItem
    entries: list[Entry]
    facts: ConversationFacts
    criteria: list[CriterionRow]
    placeholders: list[str]
    reviews: list[Review]  # the reviews this viewer may see (blind: none of the others' before their own)
    may_review: bool
    own_review: Review | None
    cited_sources: list[KnowledgeSource] = field(default_factory=list)


def _with_sources(entries: list[Entry]) -> None:
    """Name each retrieved passage's source beside its document (one query for the whole transcript)."""
    hits = [hit for e in entries if e.trace for hit in e.trace.retrieved if isinstance(hit, dict)]
    ids = {hit.get("chunk_id") for hit in hits if isinstance(hit.get("chunk_id"), int)}
    names = dict(Chunk.objects.filter(pk__in=ids).values_list("pk", "source__name")) if ids else {}
    for hit in hits:
        source = names.get(hit.get("chunk_id"))
        if source and "source_name" not in hit:
            hit["source_name"] = source
            hit["document_title"] = f"{hit.get('document_title') or '—'} · {source}"


def placeholders(vault: Any) -> list[str]:
    """Return the PII placeholders the model saw in this conversation (``[EMAIL_1]``), never the values behind them."""
    return sorted(str(key) for key in vault) if isinstance(vault, dict) else []


def cited_sources(item: ReviewItem) -> list[KnowledgeSource]:
    """Return the knowledge sources the agent cited in the conversation (for a fix request)."""
    ids: set[int] = set()
    for citations in Message.objects.filter(conversation=item.conversation_id, author=Author.AGENT).values_list(
        "citations", flat=True
    ):
        ids |= {c["source_id"] for c in citations or [] if isinstance(c, dict) and isinstance(c.get("source_id"), int)}
    return list(KnowledgeSource.objects.filter(pk__in=ids).select_related("owner", "fallback_owner").order_by("name"))


def visible_reviews(item: ReviewItem, user: AbstractBaseUser) -> list[Review]:
    """Return the reviews ``user`` may read: all once the item is decided or once they submitted their own; none
    before (blind double review — nobody scores with another's judgement in view)."""
    reviews = (
        Review.objects.filter(item=item)
        .select_related("reviewer")
        .prefetch_related(
            Prefetch("scores", queryset=CriterionScore.objects.select_related("criterion")),
            Prefetch("annotations", queryset=TurnAnnotation.objects.order_by("trace_id")),
        )
        .order_by("submitted_at", "pk")
    )
    decided = item.status in (ItemStatus.DONE, ItemStatus.DISPUTED, ItemStatus.SETTLED)
    if decided or any(r.reviewer_id == user.pk for r in reviews):
        return list(reviews)
    return []


def item_page(item: ReviewItem, user: AbstractBaseUser) -> ItemPage:
    """Return everything the review screen shows for ``item``."""
    conversation = item.conversation
    entries = transcript(conversation)
    _with_sources(entries)
    facts = conversation_facts(conversation)
    criteria = [
        CriterionRow(criterion=c, applies=applies(c.applies_to, facts))
        for c in ScorecardCriterion.objects.filter(enabled=True)
    ]
    reviews = visible_reviews(item, user)
    own = next((r for r in reviews if r.reviewer_id == user.pk), None)
    open_to_me = item.status in OPEN_STATUSES and own is None and may_review(user, item)
    return ItemPage(
        item=item,
        entries=entries,
        facts=facts,
        criteria=criteria,
        placeholders=placeholders(conversation.pii_vault),
        reviews=reviews,
        may_review=open_to_me,
        own_review=own,
        cited_sources=cited_sources(item),
    )
