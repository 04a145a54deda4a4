"""Which conversations each sampling rule picks (reads only; ``qa.services.queue`` queues them).

Every rule looks at real conversations (never a regression suite's test conversations) whose AI part is over: closed,
or handed to a person (waiting or with a person). A conversation still with the AI is picked on a later run, once it
has ended; only the "flagged" rule takes a conversation in any state, because a person asked for it. Conversations a
rule has already queued are left out, so running the sampling again queues nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import CharField, Exists, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast

from agent.models import Conversation, Intent, Owner, TurnTrace
from governance.models import ApprovalRequest
from knowledge.models import FailedRetrieval
from qa.models import ConversationFlag, ReviewReason, RuleKind, SamplingRule

DEFAULT_CSAT_THRESHOLD = 2
DEFAULT_CONFIDENCE_THRESHOLD = 0.45
# Tool-call decisions that make a conversation a "policy decision" (governance.policies.Outcome).
POLICY_DECISIONS = ("deny", "needs_approval")

Candidate = tuple[Any, str]  # (conversation id, why: shown in the queue)


def bucket(*parts: object, buckets: int = 10_000) -> int:
    """Return a stable bucket in [0, buckets) for ``parts`` (SHA-256: the same on every run, machine and process)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def _conversation_key() -> Cast:
    # Other apps keep conversation ids as text (governance, knowledge): compare as text.
    return Cast(OuterRef("pk"), output_field=CharField())


def _base(rule: SamplingRule, now: datetime) -> QuerySet[Conversation]:
    # QA scores the AI's work: a conversation the AI never answered (outside its traffic share, handed to a person at
    # the first message) has nothing to review.
    conversations = (
        Conversation.objects.filter(is_test=False)
        .filter(Exists(TurnTrace.objects.filter(conversation=OuterRef("pk"))))
        .exclude(pk__in=ReviewReason.objects.filter(rule=rule).values("conversation_id"))
    )
    if rule.channel:
        conversations = conversations.filter(channel=rule.channel)
    if rule.kind != RuleKind.NEW_INTENT:
        conversations = conversations.filter(
            created_at__gte=now - timedelta(days=rule.lookback_days), created_at__lt=now
        )
    if rule.kind != RuleKind.FLAGGED:
        conversations = conversations.exclude(owner=Owner.AGENT)
    return conversations


def _random_closed(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    # A hash of the rule and the conversation, not random(): the same conversations are in the share on every run.
    cutoff = int(float(rule.share_percent) * 100)
    return [
        (pk, f"random {rule.share_percent}% of closed")
        for pk in base.filter(owner=Owner.CLOSED).values_list("pk", flat=True)
        if bucket(rule.pk, pk) < cutoff
    ]


def _escalations(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    rows = base.exclude(escalation_reason="").values_list("pk", "escalation_reason")
    return [(pk, f"escalated: {reason}") for pk, reason in rows]


def _low_confidence(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    threshold = rule.threshold if rule.threshold is not None else DEFAULT_CONFIDENCE_THRESHOLD
    rows = base.annotate(lowest=Min("turns__confidence")).filter(lowest__lt=threshold).values_list("pk", "lowest")
    return [(pk, f"confidence {lowest:.2f} < {threshold:g}") for pk, lowest in rows]


def _negative_csat(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    threshold = int(rule.threshold) if rule.threshold is not None else DEFAULT_CSAT_THRESHOLD
    rows = base.filter(csat_score__lte=threshold).values_list("pk", "csat_score")
    return [(pk, f"rated {score}/5") for pk, score in rows]


def _policy_decisions(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    decided = Q()
    for decision in POLICY_DECISIONS:
        decided |= Q(tool_calls__contains=[{"decision": decision}])
    traces = TurnTrace.objects.filter(decided, conversation=OuterRef("pk"))
    approvals = ApprovalRequest.objects.filter(conversation_id=_conversation_key())
    rows = base.filter(Q(Exists(traces)) | Q(Exists(approvals))).values_list("pk", flat=True)
    return [(pk, "denied action or approval") for pk in rows]


def _failed_retrievals(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    failed = FailedRetrieval.objects.filter(conversation_id=_conversation_key())
    query = Subquery(failed.order_by("created_at").values("query")[:1])
    rows = base.filter(Exists(failed)).annotate(query=query).values_list("pk", "query")
    return [(pk, f"no fitting source for “{(text or '')[:120]}”") for pk, text in rows]


def _new_intent(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    candidates: list[Candidate] = []
    seen: set[Any] = set()
    for intent in Intent.objects.order_by("name").only("name", "updated_at"):
        # The first N conversations (of this rule's channel) that worked on the intent since it was added or changed;
        # counted over every such conversation, queued or not, so "first N" never slides forward.
        first = Conversation.objects.filter(is_test=False, created_at__gte=intent.updated_at)
        if rule.channel:
            first = first.filter(channel=rule.channel)
        first = first.filter(Exists(TurnTrace.objects.filter(conversation=OuterRef("pk"), intent=intent.name)))
        first_ids = first.order_by("created_at", "pk").values("pk")[: rule.first_n]
        for pk in base.filter(pk__in=Subquery(first_ids)).values_list("pk", flat=True):
            if pk not in seen:
                seen.add(pk)
                candidates.append((pk, f"among the first {rule.first_n} of intent {intent.name}"))
    return candidates


def _flagged(rule: SamplingRule, base: QuerySet[Conversation]) -> list[Candidate]:
    flags = ConversationFlag.objects.filter(conversation=OuterRef("pk"))
    note = Subquery(flags.order_by("created_at").values("note")[:1])
    rows = base.filter(Exists(flags)).annotate(note=note).values_list("pk", "note")
    return [(pk, f"flagged: {(text or 'no note')[:200]}") for pk, text in rows]


FINDERS: dict[str, Callable[[SamplingRule, QuerySet[Conversation]], list[Candidate]]] = {
    RuleKind.RANDOM_CLOSED: _random_closed,
    RuleKind.ESCALATIONS: _escalations,
    RuleKind.LOW_CONFIDENCE: _low_confidence,
    RuleKind.NEGATIVE_CSAT: _negative_csat,
    RuleKind.POLICY_DECISIONS: _policy_decisions,
    RuleKind.FAILED_RETRIEVALS: _failed_retrievals,
    RuleKind.NEW_INTENT: _new_intent,
    RuleKind.FLAGGED: _flagged,
}


def rule_candidates(rule: SamplingRule, *, now: datetime) -> list[Candidate]:
    """Return the conversations ``rule`` picks that it has not queued yet, oldest first by id order of the query."""
    return FINDERS[rule.kind](rule, _base(rule, now))
