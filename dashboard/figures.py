"""A metric's figure as the dashboard shows it: value, sample, a share's numerator and 95% Wilson interval, and the
words for it (a share in per cent, a score out of 5, seconds as a duration, unknown with why). Pure: no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from analytics.report import RATE, SCORE, SECONDS
from governance.metrics import wilson_interval

# Names people read on the cards; any other metric is named from its identifier (``metric_label``).
LABELS = {
    "csat": "CSAT",
    "csat_ai": "CSAT, AI alone",
    "csat_human": "CSAT, with a person",
    "qa_coverage": "QA coverage",
    "qa_pass_rate": "QA pass rate",
}


def metric_label(name: str) -> str:
    """Return a metric's name for people: ``first_human_reply_s`` → "First human reply (seconds)"."""
    if name in LABELS:
        return LABELS[name]
    words, suffix = name, ""
    if words.endswith("_s"):
        words, suffix = words[:-2], " (seconds)"
    words = words.replace("_", " ")
    return words[:1].upper() + words[1:] + suffix


def duration(seconds: float) -> str:
    """Say a number of seconds the way people read it: "42 s", "3 min 20 s", "2 h 05 min"."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def value_text(unit: str, value: float | None) -> str:
    if value is None:
        return "unknown"
    if unit == RATE:
        return f"{value:.1%}"
    if unit == SCORE:
        return f"{value:.2f} / 5"
    if unit == SECONDS:
        return duration(value)
    return f"{value:.4g}"


@dataclass(frozen=True)
class Figure:
    """One reading of a metric: ``value`` None when unknown (``why`` says why), ``n`` its sample, ``part`` a
    share's numerator."""

    unit: str
    value: float | None
    n: int
    part: int | None = None
    why: str = ""

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval of a share with its numerator and sample; None otherwise."""
        if self.unit != RATE or self.value is None or self.part is None or not self.n:
            return None
        if not 0 <= self.part <= self.n:
            return None
        return wilson_interval(self.part, self.n)

    @property
    def low(self) -> float | None:
        return round(self.interval[0], 4) if self.interval else None

    @property
    def high(self) -> float | None:
        return round(self.interval[1], 4) if self.interval else None

    @property
    def numerator(self) -> int | None:
        return self.part if self.unit == RATE else None

    @property
    def text(self) -> str:
        return value_text(self.unit, self.value)

    @property
    def interval_text(self) -> str:
        interval = self.interval
        if interval is None:
            return ""
        return f"{interval[0]:.1%} to {interval[1]:.1%}"

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "n": self.n,
            "numerator": self.numerator,
            "low": self.low,
            "high": self.high,
            "why": self.why,
        }


@dataclass(frozen=True)
class SeriesPoint:
    day: date
    figure: Figure

    def as_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), **self.figure.as_json()}
