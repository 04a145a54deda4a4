"""Rollout gates' pure decisions: each criterion against its metric reading, and whether a channel rolls back, moves up
or stays (governance/gates.py applies them). Plain values in, plain values out: tested without a database."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from governance.metrics import wilson_interval
from governance.models import RolloutStage
from governance.models.gates import Comparator, CriterionKind, GateOutcome, SignOffKind

FIRST_STAGE = int(RolloutStage.KNOWLEDGE_ANSWERS)
LAST_STAGE = int(RolloutStage.SCALED_OMNICHANNEL)


class CriterionLike(Protocol):
    """A gate criterion as plain data (a ``GateCriterion`` row satisfies it)."""

    kind: str
    metric: str
    intent: str
    comparator: str
    threshold: Decimal
    window_days: int
    min_sample: int
    cautious_bound: bool


class MetricKey(NamedTuple):
    metric: str
    intent: str
    window_days: int


def metric_key(criterion: CriterionLike) -> MetricKey:
    return MetricKey(criterion.metric, criterion.intent or "", int(criterion.window_days))


_COMPARE = {Comparator.AT_LEAST.value: operator.ge, Comparator.AT_MOST.value: operator.le}
_COMPARE_WORDS = {Comparator.AT_LEAST.value: "at least", Comparator.AT_MOST.value: "at most"}


@dataclass(frozen=True)
class CriterionResult:
    kind: str
    metric: str
    intent: str
    comparator: str
    threshold: Decimal
    window_days: int
    value: float | None
    met: bool
    error: str = ""
    n: int | None = None  # the sample the value came from, when the provider said
    min_sample: int = 0
    bound: float | None = None  # with a cautious bound: the 95% interval's bound compared instead of the value
    bound_side: str = ""  # "lower" or "upper"

    @property
    def sample_too_small(self) -> bool:
        return self.min_sample > 0 and (self.n is None or self.n < self.min_sample)

    def describe(self) -> str:
        """Say what was measured against what, e.g. "qa_pass_rate (7 days) is 0.82 (n=40), needs at least 0.9"."""
        name = self.metric + (f" for intent {self.intent}" if self.intent else "") + f" ({self.window_days} days)"
        word = "needs" if self.kind == CriterionKind.ENTRY else "falls back at"
        bound = f"{_COMPARE_WORDS.get(self.comparator, self.comparator)} {_plain(self.threshold)}"
        if self.value is None:
            failure = f"; {self.error}" if self.error else ""
            return f"{name}: no data yet{failure} ({word} {bound})"
        sample = f"n={self.n}" if self.n is not None else ""
        if self.bound is not None:
            sample += f"; 95% {self.bound_side} bound {self.bound:.4g}"
        text = f"{name} is {self.value:.4g}{f' ({sample})' if sample else ''}, {word} {bound}"
        if self.sample_too_small:
            known = "an unknown sample" if self.n is None else f"a sample of {self.n}"
            text += f", from {known}; the criterion asks for at least {self.min_sample}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "intent": self.intent,
            "comparator": self.comparator,
            "threshold": _plain(self.threshold),
            "window_days": self.window_days,
            "value": self.value,
            "n": self.n,
            "min_sample": self.min_sample,
            "bound": self.bound,
            "bound_side": self.bound_side,
            "met": self.met,
            "error": self.error,
            "text": self.describe(),
        }


def _plain(number: Decimal) -> str:
    return format(Decimal(number).normalize(), "f")


def evaluate_criteria(
    criteria: Iterable[CriterionLike],
    values: Mapping[MetricKey, float | None],
    errors: Mapping[MetricKey, str] | None = None,
    samples: Mapping[MetricKey, int | None] | None = None,
    parts: Mapping[MetricKey, int | None] | None = None,
) -> list[CriterionResult]:
    """Compare each criterion with its metric value; a missing value is never met (entry or rollback), and neither is
    a value from a sample smaller than the criterion's minimum (or of unknown size when it asks for one). A criterion
    with a cautious bound compares the side of the value's 95% Wilson interval that makes entry harder and rollback
    sooner, and is not met when the provider gives no numerator to draw the interval from."""
    results = []
    for criterion in criteria:
        key = metric_key(criterion)
        value = values.get(key)
        compare = _COMPARE.get(criterion.comparator)
        result = CriterionResult(
            kind=criterion.kind,
            metric=criterion.metric,
            intent=criterion.intent or "",
            comparator=criterion.comparator,
            threshold=Decimal(criterion.threshold),
            window_days=int(criterion.window_days),
            value=value,
            met=False,
            error=(errors or {}).get(key, ""),
            n=(samples or {}).get(key),
            min_sample=int(getattr(criterion, "min_sample", 0) or 0),
        )
        if compare is None:
            result = replace(result, error=f"unknown comparator {criterion.comparator!r}")
        elif value is not None and not result.sample_too_small:
            compared: float | None = value
            if getattr(criterion, "cautious_bound", False):
                result = _with_bound(result, (parts or {}).get(key))
                compared = result.bound
            if compared is not None:
                # Decimal from the shortest repr: 0.9 compares equal to a threshold of 0.9000, as people expect.
                result = replace(result, met=compare(Decimal(repr(compared)), Decimal(criterion.threshold)))
        results.append(result)
    return results


def _with_bound(result: CriterionResult, part: int | None) -> CriterionResult:
    """Add the cautious bound: entry "at least" and rollback "at most" read the lower bound, the others the upper."""
    interval = wilson_interval(part, result.n) if part is not None and result.n and 0 <= part <= result.n else None
    if interval is None:
        return replace(result, error="no interval: the metric gives no numerator and sample to draw it from")
    entry, at_least = result.kind == CriterionKind.ENTRY, result.comparator == Comparator.AT_LEAST
    lower = entry == at_least
    return replace(result, bound=round(interval[0 if lower else 1], 4), bound_side="lower" if lower else "upper")


@dataclass(frozen=True)
class GateDecision:
    outcome: str
    stage_before: int
    stage_after: int
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def moves(self) -> bool:
        return self.stage_after != self.stage_before


def decide_gate(
    current_stage: int,
    next_gate_results: Sequence[CriterionResult] | None,
    next_gate_signoffs_missing: Iterable[str],
    current_gate_rollback_results: Sequence[CriterionResult],
) -> GateDecision:
    """Decide one evaluation: roll back, promote, or stay (held / blocked), with the reasons.

    ``next_gate_results`` holds every criterion of the gate into the next stage (``None``: no such gate);
    ``current_gate_rollback_results`` the rollback criteria of the gate into the current stage.
    """
    fired = [r for r in current_gate_rollback_results if r.kind == CriterionKind.ROLLBACK and r.met]
    if fired and current_stage > FIRST_STAGE:
        reasons = tuple(f"rollback criterion met: {r.describe()}" for r in fired)
        return GateDecision(GateOutcome.ROLLED_BACK, current_stage, current_stage - 1, reasons)
    if current_stage >= LAST_STAGE:
        return GateDecision(GateOutcome.HELD, current_stage, current_stage, ("already at the last stage",))
    target = current_stage + 1
    if next_gate_results is None:
        return GateDecision(GateOutcome.HELD, current_stage, current_stage, (f"no gate into stage {target} is set up",))
    entry = [r for r in next_gate_results if r.kind == CriterionKind.ENTRY]
    reasons = [f"the gate into stage {target} has no entry criteria"] if not entry else []
    reasons += [f"entry criterion not met: {r.describe()}" for r in entry if not r.met]
    reasons += [
        f"a rollback criterion of stage {target} is already met: {r.describe()}"
        for r in next_gate_results
        if r.kind == CriterionKind.ROLLBACK and r.met
    ]
    reasons += [f"sign-off missing: {signoff_label(kind)}" for kind in next_gate_signoffs_missing]
    if reasons:
        return GateDecision(GateOutcome.PROMOTION_BLOCKED, current_stage, current_stage, tuple(reasons))
    met = tuple(f"entry criterion met: {r.describe()}" for r in entry)
    return GateDecision(GateOutcome.PROMOTED, current_stage, target, (*met, "every required sign-off is given"))


def signoff_label(kind: str) -> str:
    return SignOffKind(kind).label if kind in SignOffKind.values else kind


def signoffs_missing(required: Iterable[str], given: Iterable[str]) -> list[str]:
    """Return the required sign-off kinds not given, in the order required."""
    given = set(given)
    return [kind for kind in dict.fromkeys(required) if kind not in given]
