"""The scorecard's arithmetic, as pure functions (no database): which criteria apply to a conversation, the overall
score and pass/fail, and whether two reviews agree."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings

from qa.models.config import AppliesTo


def pass_mark() -> float:
    """Return the pass mark (``STEWARD_QA_PASS_MARK``, 80 by default)."""
    return float(settings.STEWARD_QA_PASS_MARK)


@dataclass(frozen=True)
class ConversationFacts:
    """What decides which criteria apply to a conversation."""

    escalated: bool
    with_actions: bool
    knowledge_answers: bool


def applies(applies_to: str, facts: ConversationFacts) -> bool:
    """Return whether a criterion with ``applies_to`` is judged on a conversation with these facts."""
    return {
        AppliesTo.ALL: True,
        AppliesTo.ESCALATED: facts.escalated,
        AppliesTo.NOT_ESCALATED: not facts.escalated,
        AppliesTo.WITH_ACTIONS: facts.with_actions,
        AppliesTo.KNOWLEDGE: facts.knowledge_answers,
    }.get(applies_to, True)


@dataclass(frozen=True)
class Line:
    """One criterion's result as the score sees it."""

    weight: int
    auto_fail: bool
    result: str  # "pass" | "fail" | "na"


@dataclass(frozen=True)
class Score:
    score: float | None  # None: no criterion applied
    passed: bool
    auto_failed: bool


def score_lines(lines: Iterable[Line], *, mark: float) -> Score:
    """Return the weighted share of applicable passes (0-100) and pass/fail.

    Not-applicable lines count for nothing. A review with no applicable line has no score and passes (nothing was
    found wrong); a failed auto-fail line fails the review whatever the score.
    """
    judged = [line for line in lines if line.result in ("pass", "fail")]
    auto_failed = any(line.auto_fail and line.result == "fail" for line in judged)
    total = sum(line.weight for line in judged)
    if total == 0:
        return Score(score=None, passed=not auto_failed, auto_failed=auto_failed)
    score = round(100.0 * sum(line.weight for line in judged if line.result == "pass") / total, 2)
    return Score(score=score, passed=score >= mark and not auto_failed, auto_failed=auto_failed)


def reviews_agree(a_passed: bool, a_labels: Sequence[bool], b_passed: bool, b_labels: Sequence[bool]) -> bool:
    """Return whether two reviews agree: the same pass/fail and every label the same."""
    return a_passed == b_passed and tuple(a_labels) == tuple(b_labels)
