"""The metrics rollout gates read: a catalogue of names and a plain dict registry of providers.

Governance decides gates; it does not compute the numbers (DESIGN.md: analytics supplies them). The analytics app
fills ``METRIC_PROVIDERS`` from its ``AppConfig.ready()``::

    METRIC_PROVIDERS["csat"] = csat_for_gate

A provider takes a ``MetricQuery`` and returns a ``Measurement`` (the value and the sample it was computed from), a
bare number (sample size unknown), or ``None`` when it has no data for that window yet. Until a provider is
registered every metric reads as "no data yet", and a gate never counts missing data as met; a criterion that asks
for a minimum sample counts a smaller (or unknown) sample as not met.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricQuery:
    """One number a gate criterion (or a report) needs: a metric of a channel over ``window_days`` ending ``until``
    (now when None), maybe per intent. An empty channel means every channel (reports; gates always name one).

    Reports and the dashboard may slice further by what the agent's turns recorded: ``stage`` (the rollout stage a
    turn decided at), ``responder`` and ``prompt_version``; a provider counts the conversations with a turn of that
    slice (``sliced`` tells whether any slice is asked for)."""

    channel: str
    metric: str
    intent: str = ""
    window_days: int = 7
    until: datetime | None = None
    stage: int | None = None
    responder: str = ""
    prompt_version: str = ""

    @property
    def sliced(self) -> bool:
        return bool(self.intent or self.responder or self.prompt_version or self.stage is not None)

    def bounds(self) -> tuple[datetime, datetime]:
        """Return the window as (start, end): ``window_days`` days up to ``until`` (or now)."""
        end = self.until or timezone.now()
        return end - timedelta(days=self.window_days), end


@dataclass(frozen=True)
class Measurement:
    """A metric's value and the size of the sample behind it (conversations, reviews or cases); ``value`` is None
    when there is nothing to compute it from, and ``why`` may say what is missing (shown where the gate says why)."""

    value: float | None
    n: int
    why: str = ""
    part: int | None = None  # a share's numerator (value = part / n), for reports and confidence intervals

    @classmethod
    def share(cls, part: int, whole: int) -> Measurement:
        """Return ``part`` of ``whole`` as a share with its numerator and sample (no value when ``whole`` is 0)."""
        return cls(part / whole if whole else None, whole, part=part)


@dataclass(frozen=True)
class MetricInfo:
    description: str
    unit: str


RATE = "share (0 to 1)"

# Known metric names, for help texts, admin choices and the readiness report. Apps may add their own entries.
METRICS: dict[str, MetricInfo] = {
    "source_freshness": MetricInfo("Share of approved knowledge sources that are within their freshness window.", RATE),
    "qa_pass_rate": MetricInfo(
        "Share of QA-reviewed conversations that passed the scorecard; per intent when the criterion names one.", RATE
    ),
    "escalation_accuracy": MetricInfo("Share of handoffs a reviewer judged right (neither needless nor late).", RATE),
    "regression_pass_rate": MetricInfo(
        "Share of regression-suite cases that passed on the current configuration.", RATE
    ),
    "containment_rate": MetricInfo("Share of conversations finished without a person.", RATE),
    "csat": MetricInfo("Average customer satisfaction score.", "score (1 to 5)"),
    "reopen_rate": MetricInfo("Share of the escalations' solved helpdesk tickets that were reopened.", RATE),
    "policy_breach_rate": MetricInfo("Share of conversations with a policy breach found by QA or the audit log.", RATE),
    "failed_retrieval_rate": MetricInfo("Share of knowledge questions where no fitting source was found.", RATE),
}

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson_interval(part: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Return the Wilson score interval of ``part`` successes in ``n`` (95% by default), or None when n is 0.

    Wilson rather than the normal approximation: it stays inside [0, 1] and is honest at small n and at 0 or n
    successes, which is where a launch's gates live (Wilson 1927; Brown, Cai & DasGupta 2001).
    """
    if n <= 0:
        return None
    if not 0 <= part <= n:
        raise ValueError(f"{part} successes out of {n}")
    share = part / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


MetricProvider = Callable[[MetricQuery], "Measurement | float | None"]

METRIC_PROVIDERS: dict[str, MetricProvider] = {}


@dataclass(frozen=True)
class MetricReading:
    """A metric value, or ``None`` with why there is no value (``error`` empty: simply no data yet); ``n`` is the
    sample size when the provider gave one."""

    value: float | None
    error: str = ""
    n: int | None = None
    part: int | None = None  # a share's numerator, when the provider gave one


def metric_read(query: MetricQuery) -> MetricReading:
    """Read one metric; a missing provider, a provider error or a non-number all read as no data."""
    provider = METRIC_PROVIDERS.get(query.metric)
    if provider is None:
        return MetricReading(None)
    try:
        raw = provider(query)
    # A provider is another app's code behind a plug-in boundary: whatever it raises must not stop the other gates
    # of this channel or the other channels. The error is logged here and recorded in the gate evaluation.
    except Exception as exc:  # noqa: BLE001
        logger.exception("metric provider for %s failed on %s", query.metric, query)
        return MetricReading(None, f"{type(exc).__name__}: {exc}"[:300])
    n, why, part = None, "", None
    if isinstance(raw, Measurement):
        raw, n, why, part = raw.value, raw.n, raw.why, raw.part
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return MetricReading(None, f"the provider gave a sample size of {n!r}, not a count")
        if part is not None and (isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= n):
            return MetricReading(None, f"the provider gave {part!r} of {n}, not a part of the sample")
    if raw is None:
        return MetricReading(None, str(why)[:300], n=n, part=part)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return MetricReading(None, f"the provider returned {raw!r}, not a number")
    if isinstance(raw, bool) or not math.isfinite(value):
        return MetricReading(None, f"the provider returned {raw!r}, not a finite number")
    return MetricReading(value, n=n, part=part)


def metric_value(query: MetricQuery) -> float | None:
    """Return the metric's value, or ``None`` for "no data yet" (including a provider that failed)."""
    return metric_read(query).value
