"""The support metrics report: every metric with its written definition, its sample and a 95% interval for rates.

Each metric is read through the same providers the rollout gates read (``governance.metrics``), over a date range
instead of "the last N days", so a report and a gate never disagree on a definition. A metric Steward does not
measure yet is reported with a value of ``None`` and says what it needs: never an invented number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from governance.metrics import MetricQuery, metric_read, wilson_interval

RATE, SCORE, SECONDS = "rate", "score", "seconds"


@dataclass(frozen=True)
class ReportMetric:
    unit: str
    definition: str
    provider: str = ""  # the governance.metrics name it is read from; empty: not measured yet


_NOT_YET = "Not measured yet: "
# The report's metrics, in order. Rates are shares between 0 and 1; n is the denominator (the sample).
REPORT_METRICS: dict[str, ReportMetric] = {
    "containment_rate": ReportMetric(
        RATE,
        "Conversations closed in the range that never reached a person (no escalation, no takeover) ÷ conversations "
        "closed in the range. Excludes test conversations (they leave no events).",
        "containment_rate",
    ),
    "deflection_rate": ReportMetric(
        RATE,
        _NOT_YET + "helped without a ticket within N days ÷ conversations; needs ticket outcomes from the helpdesk "
        "and the vendor webhooks.",
    ),
    "first_contact_resolution": ReportMetric(
        RATE,
        _NOT_YET + "resolved in the first conversation (no return on the topic, no reopened ticket) ÷ conversations; "
        "needs ticket outcomes and returns on the same topic.",
    ),
    "durable_resolution": ReportMetric(
        RATE,
        _NOT_YET + "resolved with no reopen and no return on the topic within N days ÷ resolved conversations; needs "
        "ticket outcomes and returns on the same topic.",
    ),
    "escalation_rate": ReportMetric(
        RATE,
        "Conversations with an answered turn in the range that were escalated in the range ÷ conversations with an "
        "answered turn in the range.",
        "escalation_rate",
    ),
    "escalation_accuracy": ReportMetric(
        RATE,
        "QA-reviewed conversations whose escalation decision the reviewer judged right (escalated and needed, or not "
        "escalated and not needed) ÷ reviewed conversations, by the date the review came to stand.",
        "escalation_accuracy",
    ),
    "handle_time_after_handoff_s": ReportMetric(
        SECONDS,
        "Average seconds from the handoff (waiting, or a person taking over from the AI) to the close, over the "
        "handed-over conversations closed in the range; n = those conversations.",
        "handle_time_after_handoff_s",
    ),
    "first_human_reply_s": ReportMetric(
        SECONDS,
        "Average seconds from the handoff to a person's first reply, over the first replies sent in the range; "
        "n = those replies.",
        "first_human_reply_s",
    ),
    "csat_ai": ReportMetric(
        SCORE,
        "Average of each conversation's last rating (1-5) given in the range, over conversations that never reached "
        "a person.",
        "csat_ai",
    ),
    "csat_human": ReportMetric(
        SCORE,
        "Average of each conversation's last rating (1-5) given in the range, over conversations a person handled "
        "(escalated or taken over).",
        "csat_human",
    ),
    "reopen_rate": ReportMetric(
        RATE, _NOT_YET + "reopened tickets ÷ solved tickets; needs ticket outcomes from the helpdesk."
    ),
    "policy_breach_rate": ReportMetric(
        RATE,
        "QA-reviewed conversations labelled as a policy breach ÷ reviewed conversations, by the date the review came "
        "to stand.",
        "policy_breach_rate",
    ),
    "failed_retrieval_rate": ReportMetric(
        RATE,
        "Knowledge questions the agent found no fitting source for ÷ knowledge questions asked in the range.",
        "failed_retrieval_rate",
    ),
    "qa_coverage": ReportMetric(
        RATE,
        "Conversations closed in the range (not tests) with a QA review standing ÷ conversations closed in the range.",
        "qa_coverage",
    ),
    "qa_pass_rate": ReportMetric(
        RATE,
        "QA reviews that passed the scorecard ÷ reviews, by the date the review came to stand (disputes count once "
        "settled).",
        "qa_pass_rate",
    ),
    "regression_pass_rate": ReportMetric(
        RATE,
        "Cases passed (every attempt) ÷ cases, over the latest finished run in the range of each suite linked to the "
        "channel's gates (every linked suite must have one).",
        "regression_pass_rate",
    ),
}


def _window(start: date, end: date) -> tuple[int, datetime]:
    """Whole days from ``start`` to ``end`` (both included), ending at the start of the day after ``end``."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    return (end - start).days + 1, until


def metric_row(name: str, *, start: date, end: date, channel: str = "", intent: str = "") -> dict[str, Any]:
    """Return one metric of the report: value, numerator, denominator, n, the 95% interval and the definition."""
    spec = REPORT_METRICS[name]
    row: dict[str, Any] = {
        "value": None,
        "numerator": None,
        "denominator": None,
        "n": None,
        "low": None,
        "high": None,
        "definition": spec.definition,
    }
    if not spec.provider:
        return row
    days, until = _window(start, end)
    reading = metric_read(MetricQuery(channel, spec.provider, intent=intent, window_days=days, until=until))
    row.update(value=reading.value, n=reading.n)
    if reading.error:
        row["definition"] += f" Unknown here: {reading.error}."
    if spec.unit == RATE:
        row["denominator"] = reading.n
        row["numerator"] = reading.part
        interval = wilson_interval(reading.part, reading.n) if reading.part is not None and reading.n else None
        if interval is not None and reading.value is not None:
            row["low"], row["high"] = round(interval[0], 4), round(interval[1], 4)
    return row


def analytics_report(*, start: date, end: date, channel: str = "", intent: str = "") -> dict[str, Any]:
    """Return every report metric over ``start``..``end`` (both days included), for one channel or all, and for the
    conversations about one intent or all (each metric's definition says what "about an intent" means for it)."""
    _window(start, end)  # refuses a range that ends before it starts
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "channel": channel or None,
        "intent": intent or None,
        "metrics": {
            name: metric_row(name, start=start, end=end, channel=channel, intent=intent) for name in REPORT_METRICS
        },
    }
