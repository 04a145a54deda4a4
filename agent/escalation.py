"""The escalation rules engine, run every turn: which configured rules fire for this turn, and the one that decides.

``evaluate_escalation`` is pure (no database, no clock): it takes rules as plain data (``EscalationRuleSpec``, or
anything with the same attributes, e.g. ``governance.models.EscalationRule`` rows) and the turn's ``TurnSignals``.
``load_escalation_rules`` reads the enabled rules in one query; ``escalation_summary`` picks the most severe fired
rule (the lowest ticket priority number) for the ticket and the handoff.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from django.db.models import QuerySet
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from governance.models import EscalationRule, EscalationTrigger

# One analyzer per process: it loads its lexicon once, and scoring only reads it (safe across threads).
_ANALYZER = SentimentIntensityAnalyzer()

# Used when a rule leaves its threshold empty (the demo company's values, governance/demo.py).
DEFAULT_THRESHOLDS: dict[str, Decimal] = {
    EscalationTrigger.LOW_CONFIDENCE: Decimal("0.45"),
    EscalationTrigger.FRUSTRATION: Decimal("-0.5"),
    EscalationTrigger.LOOP: Decimal("3"),
}
# Frustration looks at the latest message and at the mean of the last few: one very negative message fires, and so
# does a run of moderately negative ones that no single message would.
SENTIMENT_WINDOW = 3
# Phrases that say "frustrated" whatever VADER scores them (it reads "third time I ask" as neutral).
FRUSTRATION_PHRASES = (
    "ridiculous",
    "unacceptable",
    "useless",
    "pathetic",
    "third time",
    "3rd time",
    "fourth time",
    "how many times",
    "again and again",
    "waste of time",
    "wasting my time",
    "fed up",
    "sick of",
    "sick and tired",
    "worst",
    "joke of a",
)
PROFANITY = re.compile(r"(?<!\w)(?:fuck\w*|shit\w*|bullshit|crap|damn\w*|wtf|ffs|bloody hell)(?!\w)", re.IGNORECASE)
# Shouting: at least this many letters, nearly all capitals.
CAPS_MIN_LETTERS = 12
CAPS_RATIO = 0.8
# Two messages ask the same question when they name the same numbers (order ids) and their words mostly overlap or
# their text nearly matches (typos). Messages shorter than MIN_QUESTION_WORDS ("yes", "ok thanks") are not questions.
SAME_WORDS = 0.8
SAME_TEXT = 0.9
MIN_QUESTION_WORDS = 3
_CONTRACTIONS = (("n't", " not"), ("'s", " is"), ("'m", " am"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"))


class RuleLike(Protocol):
    name: str
    trigger: str
    threshold: Decimal | None
    keywords: Sequence[str]
    account_tiers: Sequence[str]
    queue: str
    priority: int
    enabled: bool


@dataclass(frozen=True)
class EscalationRuleSpec:
    """An escalation rule as plain data (the fields of ``governance.models.EscalationRule``)."""

    name: str
    trigger: str
    threshold: Decimal | None = None
    keywords: Sequence[str] = ()
    account_tiers: Sequence[str] = ()
    queue: str = ""
    priority: int = 3
    enabled: bool = True


@dataclass(frozen=True)
class TurnSignals:
    """What the engine knows about this turn.

    ``recent_texts`` are the customer's messages *before* ``latest_text``, oldest first (``from_texts`` splits a list
    that ends with the latest). ``repeated_question_count`` is the caller's own count of the same question (e.g. the
    same intent routed again); the engine also counts repeats by text and uses the larger.
    """

    latest_text: str = ""
    recent_texts: Sequence[str] = ()
    confidence: float | None = None
    account_tier: str = ""
    refund_amount: Decimal | float | int | str | None = None
    unresolved_turns: int = 0
    repeated_question_count: int = 0
    human_requested: bool = False
    connector_failed: bool = False

    @classmethod
    def from_texts(cls, texts: Sequence[str], **signals: Any) -> TurnSignals:
        """Build signals from the customer's recent messages, oldest first, the latest last."""
        return cls(latest_text=texts[-1] if texts else "", recent_texts=tuple(texts[:-1]), **signals)

    @property
    def customer_texts(self) -> list[str]:
        """The customer's recent messages and the latest, oldest first, empty ones left out."""
        return [text for text in (*self.recent_texts, self.latest_text) if text and text.strip()]


@dataclass(frozen=True)
class RuleResult:
    rule: str
    trigger: str
    fired: bool
    detail: str
    priority: int = 3
    queue: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON data (for ``TurnTrace.escalation``)."""
        return asdict(self)


class EscalationSummary(NamedTuple):
    fired: bool
    reason: str
    priority: int | None
    queue: str


class _Verdict(NamedTuple):
    fired: bool
    detail: str


# --- Text helpers --------------------------------------------------------------------------------------------------


def sentiment(text: str) -> float:
    """Return VADER's compound score for ``text``: -1 (most negative) to 1 (most positive)."""
    return float(_ANALYZER.polarity_scores(text)["compound"])


@lru_cache(maxsize=256)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compile phrases into one case-insensitive pattern that matches whole words only ("human" not "humane")."""
    alternatives = [r"\s+".join(map(re.escape, phrase.split())) for phrase in phrases if phrase.strip()]
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def matched_phrases(text: str, phrases: Sequence[str]) -> list[str]:
    """Return the phrases found in ``text`` as whole words, case-insensitively, in the order they appear."""
    pattern = _phrase_pattern(tuple(phrases))
    if pattern is None or not text:
        return []
    found: list[str] = []
    for match in pattern.finditer(text):
        phrase = " ".join(match.group(0).lower().split())
        if phrase not in found:
            found.append(phrase)
    return found


def is_shouting(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= CAPS_MIN_LETTERS and sum(ch.isupper() for ch in letters) / len(letters) >= CAPS_RATIO


def explicit_frustration(text: str) -> list[str]:
    """Return the explicit signs of frustration in ``text``: phrases, profanity, shouting."""
    signs = [f"says {phrase!r}" for phrase in matched_phrases(text, FRUSTRATION_PHRASES)]
    if PROFANITY.search(text):
        signs.append("profanity")
    if is_shouting(text):
        signs.append("all capitals")
    return signs


def _words(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'")
    for short, long in _CONTRACTIONS:
        text = text.replace(short, long)
    return re.findall(r"[a-z0-9]+", text)


def same_question(a: str, b: str) -> bool:
    """Tell whether two messages ask the same thing (normalised words; numbers such as order ids must agree)."""
    words_a, words_b = _words(a), _words(b)
    if len(words_a) < MIN_QUESTION_WORDS or len(words_b) < MIN_QUESTION_WORDS:
        return False
    set_a, set_b = set(words_a), set(words_b)
    if {w for w in set_a if any(c.isdigit() for c in w)} != {w for w in set_b if any(c.isdigit() for c in w)}:
        return False
    if len(set_a & set_b) / len(set_a | set_b) >= SAME_WORDS:
        return True
    return SequenceMatcher(None, " ".join(words_a), " ".join(words_b)).ratio() >= SAME_TEXT


def repeated_question_count(texts: Sequence[str]) -> int:
    """Return how many of ``texts`` (oldest first) ask the same as the last one, the last included; 0 for none."""
    if not texts:
        return 0
    latest = texts[-1]
    if len(_words(latest)) < MIN_QUESTION_WORDS:
        return 0
    return sum(1 for text in texts if same_question(text, latest))


# --- The triggers --------------------------------------------------------------------------------------------------


def _threshold(rule: RuleLike) -> Decimal | None:
    value = rule.threshold if rule.threshold is not None else DEFAULT_THRESHOLDS.get(rule.trigger)
    return None if value is None else Decimal(str(value))


def _low_confidence(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    if signals.confidence is None or not math.isfinite(signals.confidence) or threshold is None:
        return _Verdict(False, "no confidence this turn")
    fired = signals.confidence < float(threshold)
    return _Verdict(fired, f"confidence {signals.confidence:.2f} {'<' if fired else '>='} {threshold}")


def _frustration(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    signs = explicit_frustration(signals.latest_text)
    texts = signals.customer_texts[-SENTIMENT_WINDOW:]
    if not texts:
        return _Verdict(False, "no customer text")
    scores = [sentiment(text) for text in texts]
    latest, mean = scores[-1], sum(scores) / len(scores)
    limit = float(threshold if threshold is not None else DEFAULT_THRESHOLDS[EscalationTrigger.FRUSTRATION])
    if latest < limit:
        signs.append(f"latest message sentiment {latest:.2f} < {limit}")
    elif mean < limit:
        signs.append(f"mean sentiment of the last {len(scores)} messages {mean:.2f} < {limit}")
    if signs:
        return _Verdict(True, "; ".join(signs))
    return _Verdict(False, f"sentiment {latest:.2f} (mean {mean:.2f}), no explicit signs")


def _vip(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    tiers = {tier.strip().lower() for tier in rule.account_tiers}
    tier = (signals.account_tier or "").strip().lower()
    if tier and tier in tiers:
        return _Verdict(True, f"account tier {signals.account_tier!r}")
    return _Verdict(False, f"account tier {signals.account_tier!r}" if tier else "account tier unknown")


def _compliance(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    found = matched_phrases(signals.latest_text, rule.keywords)
    return _Verdict(bool(found), f"mentions {', '.join(map(repr, found))}" if found else "no compliance keywords")


def _refund_over_policy(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    if signals.refund_amount is None:
        return _Verdict(False, "no refund requested")
    if threshold is None:
        return _Verdict(False, "the rule has no threshold")
    try:
        amount = Decimal(str(signals.refund_amount))
    except InvalidOperation:
        return _Verdict(False, f"refund amount {signals.refund_amount!r} is not a number")
    fired = amount > threshold
    return _Verdict(fired, f"refund {amount} {'>' if fired else '<='} {threshold}")


def _loop(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    limit = int(threshold if threshold is not None else DEFAULT_THRESHOLDS[EscalationTrigger.LOOP])
    repeats = max(signals.repeated_question_count, repeated_question_count(signals.customer_texts))
    if signals.unresolved_turns >= limit:
        return _Verdict(True, f"{signals.unresolved_turns} turns without progress (limit {limit})")
    if repeats >= limit:
        return _Verdict(True, f"the same question asked {repeats} times (limit {limit})")
    return _Verdict(False, f"{signals.unresolved_turns} turns without progress, question asked {repeats or 1} time(s)")


def _human_requested(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    if signals.human_requested:
        return _Verdict(True, "the customer asked for a person")
    found = matched_phrases(signals.latest_text, rule.keywords)
    return _Verdict(bool(found), f"says {', '.join(map(repr, found))}" if found else "no request for a person")


def _connector_failure(rule: RuleLike, signals: TurnSignals, threshold: Decimal | None) -> _Verdict:
    return _Verdict(signals.connector_failed, "a connected system failed" if signals.connector_failed else "no failure")


_TRIGGERS: dict[str, Callable[[RuleLike, TurnSignals, Decimal | None], _Verdict]] = {
    EscalationTrigger.LOW_CONFIDENCE: _low_confidence,
    EscalationTrigger.FRUSTRATION: _frustration,
    EscalationTrigger.VIP: _vip,
    EscalationTrigger.COMPLIANCE: _compliance,
    EscalationTrigger.REFUND_OVER_POLICY: _refund_over_policy,
    EscalationTrigger.LOOP: _loop,
    EscalationTrigger.HUMAN_REQUESTED: _human_requested,
    EscalationTrigger.CONNECTOR_FAILURE: _connector_failure,
}


# --- The engine ----------------------------------------------------------------------------------------------------


def evaluate_escalation(rules: Sequence[RuleLike], signals: TurnSignals) -> list[RuleResult]:
    """Return one result per rule, in the rules' order: whether it fired for this turn, and why (or why not)."""
    results = []
    for rule in rules:
        if not rule.enabled:
            verdict = _Verdict(False, "disabled")
        elif (check := _TRIGGERS.get(rule.trigger)) is None:
            verdict = _Verdict(False, f"unknown trigger {rule.trigger!r}")
        else:
            verdict = check(rule, signals, _threshold(rule))
        results.append(
            RuleResult(
                rule=rule.name,
                trigger=str(rule.trigger),
                fired=verdict.fired,
                detail=verdict.detail,
                priority=rule.priority,
                queue=rule.queue or "",
            )
        )
    return results


def escalation_summary(results: Sequence[RuleResult]) -> EscalationSummary:
    """Return whether to escalate, why, and the ticket's priority and queue, from the most severe fired rule.

    Most severe is the lowest priority number; among equals, the first in ``results``. The queue is that rule's, or
    if it has none the next fired rule's that has one (a VIP queue still applies when a more urgent rule fired
    without a queue); empty means route by topic.
    """
    fired = sorted((r for r in results if r.fired), key=lambda r: r.priority)  # sorted() is stable
    if not fired:
        return EscalationSummary(False, "", None, "")
    top = fired[0]
    reason = f"{top.rule}: {top.detail}"
    if len(fired) > 1:
        reason += f" (also: {', '.join(r.rule for r in fired[1:])})"
    queue = next((r.queue for r in fired if r.queue), "")
    return EscalationSummary(True, reason, top.priority, queue)


RULE_FIELDS = ("name", "trigger", "threshold", "keywords", "account_tiers", "queue", "priority", "enabled")


def escalation_rules_query() -> QuerySet[EscalationRule, tuple[Any, ...]]:
    """The enabled escalation rules' ``RULE_FIELDS``, most severe first."""
    return EscalationRule.objects.filter(enabled=True).order_by("priority", "name").values_list(*RULE_FIELDS)


def load_escalation_rules(rows: Iterable[Sequence[Any]] | None = None) -> list[EscalationRuleSpec]:
    """Return the enabled escalation rules as plain data, most severe first (one query).

    ``rows``: ``escalation_rules_query()``'s rows when the caller read them already (the turn loop does, with its
    other reads).
    """
    specs = []
    for row in escalation_rules_query() if rows is None else rows:
        values = dict(zip(RULE_FIELDS, row, strict=True))
        values["keywords"], values["account_tiers"] = tuple(values["keywords"]), tuple(values["account_tiers"])
        specs.append(EscalationRuleSpec(**values))
    return specs
