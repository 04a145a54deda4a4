"""The support metrics report: every metric with its written definition, its sample and a 95% interval for rates.

Each metric is read through the same providers the rollout gates read (``governance.metrics``), over a date range
instead of "the last N days", so a report and a gate never disagree on a definition. A metric without a value in the
range is reported with a value of ``None``, and its definition says why when the provider knows: never an invented
number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from governance.metrics import MetricQuery, metric_read, wilson_interval

RATE, SCORE, SECONDS = "rate", "score", "seconds"
SLICES = ("intent", "stage", "responder", "prompt_version")


@dataclass(frozen=True)
class ReportMetric:
    unit: str
    definition: str
    provider: str = ""  # the governance.metrics name it is read from
    narrows: tuple[str, ...] = SLICES  # the slices its provider narrows by; any other slice leaves it unknown


# What "about a slice" means, said once per kind of metric.
_CONVERSATIONS = (
    " About a slice (intent, stage, responder, prompt version): the conversations with an answered turn of that "
    "slice in the channel, at any time."
)
_TICKETS = " About a slice: the tickets of the conversations with an answered turn of that slice in the channel."
_QA = (
    " About an intent: the conversations with a turn of that intent; not narrowed by stage, responder or prompt "
    "version (unknown when one is asked for)."
)
_WINDOW = (
    "Counts only conversations whose resolution window — the N days after the close, N = STEWARD_RETURN_WINDOW_DAYS "
    "(7 by default) — has fully passed; unknown, saying so, while none of the range has. Excludes the conversations "
    "the traffic share gave to a person from the start."
)
_RESOLVED = (
    "Resolved: the conversation got no helpdesk ticket (the AI closed it, or a person closed it without one), or its "
    "ticket was solved within the window."
)

# The report's metrics, in order. Rates are shares between 0 and 1; n is the denominator (the sample). Test
# conversations leave no events, so no metric read from events counts them.
REPORT_METRICS: dict[str, ReportMetric] = {
    "containment_rate": ReportMetric(
        RATE,
        "Conversations closed in the range that never reached a person (no escalation, no takeover) ÷ conversations "
        "closed in the range, among those the AI took (not the ones its traffic share gave to a person)."
        + _CONVERSATIONS,
        "containment_rate",
    ),
    "deflection_rate": ReportMetric(
        RATE,
        "Conversations closed in the range that the AI helped without a person ÷ conversations closed in the range: "
        "never escalated or taken over, and the customer did not come back about the same intent within the window "
        "in a conversation that reached a person or got a ticket. " + _WINDOW + _CONVERSATIONS,
        "deflection_rate",
    ),
    "first_contact_resolution": ReportMetric(
        RATE,
        "First contacts closed in the range that were resolved with no follow-up ÷ first contacts closed in the "
        "range. A first contact is a conversation that was not itself a return on a topic. " + _RESOLVED + " No "
        "follow-up: its ticket was not reopened and the customer did not come back about the same intent within the "
        "window. " + _WINDOW + _CONVERSATIONS,
        "first_contact_resolution",
    ),
    "durable_resolution": ReportMetric(
        RATE,
        "Resolved conversations closed in the range that stayed resolved ÷ resolved conversations closed in the "
        "range. " + _RESOLVED + " Stayed resolved: its ticket was not reopened and the customer did not come back "
        "about the same intent within the window. " + _WINDOW + _CONVERSATIONS,
        "durable_resolution",
    ),
    "escalation_rate": ReportMetric(
        RATE,
        "Conversations with an answered turn in the range that were escalated in the range ÷ conversations with an "
        "answered turn in the range. About a slice: the answered turns of that slice.",
        "escalation_rate",
    ),
    "escalation_accuracy": ReportMetric(
        RATE,
        "QA-reviewed conversations whose escalation decision the reviewer judged right (escalated and needed, or not "
        "escalated and not needed) ÷ reviewed conversations, by the date the review came to stand." + _QA,
        "escalation_accuracy",
        ("intent",),
    ),
    "handle_time_after_handoff_s": ReportMetric(
        SECONDS,
        "Average seconds from the handoff (waiting, or a person taking over from the AI) to the close, over the "
        "handed-over conversations closed in the range; n = those conversations." + _CONVERSATIONS,
        "handle_time_after_handoff_s",
    ),
    "first_human_reply_s": ReportMetric(
        SECONDS,
        "Average seconds from the handoff to a person's first reply, over the first replies sent in the range; "
        "n = those replies." + _CONVERSATIONS,
        "first_human_reply_s",
    ),
    "csat": ReportMetric(
        SCORE,
        "Average of each conversation's last rating (1-5) given in the range; n = conversations rated."
        + _CONVERSATIONS,
        "csat",
    ),
    "csat_ai": ReportMetric(
        SCORE,
        "Average of each conversation's last rating (1-5) given in the range, over conversations that never reached "
        "a person." + _CONVERSATIONS,
        "csat_ai",
    ),
    "csat_human": ReportMetric(
        SCORE,
        "Average of each conversation's last rating (1-5) given in the range, over conversations a person handled "
        "(escalated or taken over)." + _CONVERSATIONS,
        "csat_human",
    ),
    "reopen_rate": ReportMetric(
        RATE,
        "Helpdesk tickets solved in the range that were reopened after that solve (at any time since) ÷ tickets "
        "solved in the range; a ticket counts once however often it was solved." + _TICKETS,
        "reopen_rate",
    ),
    "approval_turnaround_s": ReportMetric(
        SECONDS,
        "Average seconds from an approval request to its decision (approved or rejected), over the requests decided "
        "in the range; expired requests were never decided and are left out; n = decisions. About a slice: the "
        "requests of the conversations with an answered turn of that slice.",
        "approval_turnaround_s",
    ),
    "policy_breach_rate": ReportMetric(
        RATE,
        "QA-reviewed conversations labelled as a policy breach ÷ reviewed conversations, by the date the review came "
        "to stand." + _QA,
        "policy_breach_rate",
        ("intent",),
    ),
    "failed_retrieval_rate": ReportMetric(
        RATE,
        "Knowledge questions the agent found no fitting source for ÷ knowledge questions asked in the range. About a "
        "slice: the questions asked in turns of that slice.",
        "failed_retrieval_rate",
    ),
    "qa_coverage": ReportMetric(
        RATE,
        "Conversations closed in the range (not tests) with a QA review standing ÷ conversations closed in the range."
        + _QA,
        "qa_coverage",
        ("intent",),
    ),
    "qa_pass_rate": ReportMetric(
        RATE,
        "QA reviews that passed the scorecard ÷ reviews, by the date the review came to stand (disputes count once "
        "settled)." + _QA,
        "qa_pass_rate",
        ("intent",),
    ),
    "regression_pass_rate": ReportMetric(
        RATE,
        "Cases passed (every attempt) ÷ cases, over the latest finished run in the range of each suite linked to the "
        "channel's gates (every linked suite must have one). About an intent: the cases of that intent; not narrowed "
        "by stage, responder or prompt version (unknown when one is asked for).",
        "regression_pass_rate",
        ("intent",),
    ),
    "source_freshness": ReportMetric(
        RATE,
        "Approved, unretired knowledge sources whose review is not yet due ÷ approved, unretired sources. A state, "
        "not a count over the range: today's value whatever the range, the same for every channel and slice "
        "(knowledge serves them all).",
        "source_freshness",
    ),
}


def slices_not_narrowed(name: str, **slices: object) -> list[str]:
    """Return the slices asked for that metric ``name``'s provider does not narrow by (its value would not be the
    slice's)."""
    asked = [slice_name for slice_name, value in slices.items() if value not in (None, "")]
    return [slice_name for slice_name in asked if slice_name not in REPORT_METRICS[name].narrows]


def _window(start: date, end: date) -> tuple[int, datetime]:
    """Whole days from ``start`` to ``end`` (both included), ending at the start of the day after ``end``."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    return (end - start).days + 1, until


def metric_row(
    name: str, *, start: date, end: date, channel: str = "", intent: str = "", **slices: Any
) -> dict[str, Any]:
    """Return one metric of the report: value, numerator, denominator, n, the 95% interval and the definition.

    ``slices``: ``stage``, ``responder``, ``prompt_version`` (as ``MetricQuery`` takes them)."""
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
    not_narrowed = slices_not_narrowed(name, intent=intent, **slices)
    if not_narrowed:
        row["definition"] += f" Unknown here: not narrowed by {', '.join(not_narrowed)}."
        return row
    days, until = _window(start, end)
    query = MetricQuery(channel, spec.provider, intent=intent, window_days=days, until=until, **slices)
    reading = metric_read(query)
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


def analytics_report(
    *,
    start: date,
    end: date,
    channel: str = "",
    intent: str = "",
    stage: int | None = None,
    responder: str = "",
    prompt_version: str = "",
) -> dict[str, Any]:
    """Return every report metric over ``start``..``end`` (both days included), for one channel or all, and for the
    conversations of one slice or all (each metric's definition says what "about a slice" means for it)."""
    _window(start, end)  # refuses a range that ends before it starts
    slices = {"stage": stage, "responder": responder, "prompt_version": prompt_version}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "channel": channel or None,
        "intent": intent or None,
        "stage": stage,
        "responder": responder or None,
        "prompt_version": prompt_version or None,
        "metrics": {
            name: metric_row(name, start=start, end=end, channel=channel, intent=intent, **slices)
            for name in REPORT_METRICS
        },
    }
