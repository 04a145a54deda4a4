"""Shared test data for QA: conversations with messages and turn traces, rules, criteria and items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone
from guardian.shortcuts import assign_perm

from agent.models import Author, Conversation, Message, Owner, TurnTrace
from qa.models import AppliesTo, ReviewAssignment, ReviewItem, RuleKind, SamplingRule, ScorecardCriterion


def conversation(
    *,
    channel: str = "web_chat",
    owner: str = Owner.CLOSED,
    escalated: str = "",
    csat: int | None = None,
    is_test: bool = False,
    says: Sequence[str] = ("Where is my parcel?",),
    intent: str = "order_status",
    confidence: float | None = 0.9,
    tool_calls: Sequence[dict[str, Any]] = (),
    citations: Sequence[dict[str, Any]] = (),
    created_at: datetime | None = None,
    pii_vault: dict[str, str] | None = None,
) -> Conversation:
    """Return a conversation where the customer says ``says`` and the agent answers each with one traced turn."""
    item = Conversation.objects.create(
        channel=channel,
        owner=owner,
        escalation_reason=escalated,
        csat_score=csat,
        is_test=is_test,
        closed_at=timezone.now() if owner == Owner.CLOSED else None,
        pii_vault=pii_vault or {},
    )
    seq = 0
    for number, text in enumerate(says):
        seq += 1
        Message.objects.create(conversation=item, seq=seq, author=Author.CUSTOMER, text=text, handled=True)
        seq += 1
        reply = Message.objects.create(
            conversation=item, seq=seq, author=Author.AGENT, text=f"Answer {number + 1}.", citations=list(citations)
        )
        TurnTrace.objects.create(
            conversation=item,
            status=TurnTrace.Status.DONE,
            message_seqs=[seq - 1],
            intent=intent,
            intent_score=0.8,
            confidence=confidence,
            tool_calls=list(tool_calls) if number == 0 else [],
            retrieved=[{"chunk_id": 999999, "document_title": "Shipping times", "score": 0.71}],
            escalation=[{"rule": "Low confidence", "trigger": "low_confidence", "fired": False, "detail": ""}],
            timings={"total_ms": 41.5},
            reply=reply,
        )
    Conversation.objects.filter(pk=item.pk).update(last_seq=seq, **({"created_at": created_at} if created_at else {}))
    item.refresh_from_db()
    return item


def rule(kind: str = RuleKind.ESCALATIONS, **fields: Any) -> SamplingRule:
    fields.setdefault("double_review_percent", 0)
    return SamplingRule.objects.create(name=fields.pop("name", f"{kind} rule"), kind=kind, **fields)


def criterion(
    name: str, *, weight: int = 1, auto_fail: bool = False, applies_to: str = AppliesTo.ALL
) -> ScorecardCriterion:
    return ScorecardCriterion.objects.create(name=name, weight=weight, auto_fail=auto_fail, applies_to=applies_to)


def item_for(chat: Conversation, *reviewers: AbstractBaseUser, reviews_needed: int | None = None) -> ReviewItem:
    """Return a queued item for ``chat`` assigned to ``reviewers`` (as the queue fill would)."""
    item = ReviewItem.objects.create(conversation=chat, reviews_needed=reviews_needed or max(1, len(reviewers)))
    for reviewer in reviewers:
        ReviewAssignment.objects.create(item=item, reviewer=reviewer)
        assign_perm("qa.review_reviewitem", reviewer, item)
    return item


def all_pass(*criteria: ScorecardCriterion) -> dict[str, dict[str, str]]:
    return {str(c.pk): {"result": "pass"} for c in criteria}


LABELS_OK = {"escalation_needed": False, "policy_breach": False, "resolved": True}
