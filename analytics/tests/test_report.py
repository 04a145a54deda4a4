"""The support metrics report: each metric with its definition, sample and Wilson interval over a date range; what
Steward does not measure yet is unknown, never a number."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventKind
from analytics.report import REPORT_METRICS, analytics_report, slices_not_narrowed
from governance.metrics import MetricQuery, metric_read, wilson_interval

REQUIRED = {
    "containment_rate",
    "deflection_rate",
    "first_contact_resolution",
    "durable_resolution",
    "escalation_rate",
    "escalation_accuracy",
    "handle_time_after_handoff_s",
    "first_human_reply_s",
    "csat_ai",
    "csat_human",
    "reopen_rate",
    "policy_breach_rate",
    "failed_retrieval_rate",
    "qa_coverage",
    "qa_pass_rate",
    "regression_pass_rate",
    "approval_turnaround_s",
    "source_freshness",
    "csat",
}


def _on(day: date, kind: str, conversation: str, *, channel: str = "web_chat", **data: object) -> None:
    AnalyticsEvent.objects.create(
        kind=kind,
        conversation_id=conversation,
        channel=channel,
        data=data,
        created_at=timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(hours=12),
    )


@pytest.mark.parametrize(
    ("part", "n", "low", "high"),
    [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (1, 1, 0.2065, 1.0)],
)
def test_the_wilson_interval_matches_its_formula_and_stays_inside_zero_and_one(
    part: int, n: int, low: float, high: float
) -> None:
    interval = wilson_interval(part, n)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=1e-4)


def test_an_empty_sample_has_no_interval_and_an_impossible_one_is_refused() -> None:
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_the_report_names_every_metric_the_issue_asks_for_each_with_a_definition() -> None:
    assert set(REPORT_METRICS) >= REQUIRED
    assert all(spec.definition for spec in REPORT_METRICS.values())


@pytest.mark.django_db
def test_a_range_counts_only_its_own_days_and_gives_the_sample_and_interval() -> None:
    first, last = date(2026, 11, 2), date(2026, 11, 8)
    for n, conversation in enumerate("abcd"):
        _on(first + timedelta(days=n), EventKind.CLOSED, conversation)
    _on(first, EventKind.ESCALATED, "a")
    _on(last + timedelta(days=1), EventKind.CLOSED, "after")  # the day after the range
    _on(first - timedelta(days=1), EventKind.CLOSED, "before")
    _on(first, EventKind.CLOSED, "mail", channel="email")

    web = analytics_report(start=first, end=last, channel="web_chat")
    every = analytics_report(start=first, end=last)

    row = web["metrics"]["containment_rate"]
    assert (row["value"], row["numerator"], row["denominator"], row["n"]) == (0.75, 3, 4, 4)
    assert (row["low"], row["high"]) == pytest.approx(wilson_interval(3, 4), abs=1e-4)
    assert "never reached a person" in row["definition"]
    assert every["metrics"]["containment_rate"]["n"] == 5  # every channel: the e-mail conversation too
    assert (web["from"], web["to"], web["channel"]) == ("2026-11-02", "2026-11-08", "web_chat")


@pytest.mark.django_db
def test_a_range_without_data_is_unknown_never_zero_and_the_resolution_metrics_say_why(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_RETURN_WINDOW_DAYS = 7
    report = analytics_report(start=date(2026, 11, 2), end=date(2026, 11, 8))
    for name in ("deflection_rate", "reopen_rate", "durable_resolution", "first_contact_resolution"):
        row = report["metrics"][name]
        assert row["value"] is None and row["n"] == 0 and row["low"] is None
        assert not row["definition"].startswith("Not measured yet")
    assert report["metrics"]["containment_rate"]["value"] is None
    assert report["metrics"]["containment_rate"]["n"] == 0

    today = timezone.localdate()
    _on(today - timedelta(days=1), EventKind.CLOSED, "recent")  # its 7-day window has not passed
    recent = analytics_report(start=today - timedelta(days=2), end=today)["metrics"]
    for name in ("deflection_rate", "durable_resolution", "first_contact_resolution"):
        assert recent[name]["value"] is None
        assert "has finished its 7-day resolution window yet" in recent[name]["definition"]
    assert recent["containment_rate"]["value"] == 1.0


@pytest.mark.django_db
def test_the_resolution_metrics_of_a_matured_range_have_values_and_intervals() -> None:
    day = timezone.localdate() - timedelta(days=20)
    for conversation in ("a", "b", "c", "d"):
        _on(day, EventKind.CLOSED, conversation)
    _on(day, EventKind.ESCALATED, "d", ticket=True)
    _on(day, EventKind.TICKET_SOLVED, "d", ticket="T-4")
    _on(day + timedelta(days=2), EventKind.TICKET_REOPENED, "d", ticket="T-4")

    metrics = analytics_report(start=day, end=day)["metrics"]

    assert (metrics["deflection_rate"]["numerator"], metrics["deflection_rate"]["denominator"]) == (3, 4)
    assert (metrics["durable_resolution"]["numerator"], metrics["durable_resolution"]["denominator"]) == (3, 4)
    assert (metrics["reopen_rate"]["numerator"], metrics["reopen_rate"]["denominator"]) == (1, 1)
    assert metrics["first_contact_resolution"]["low"] == pytest.approx(wilson_interval(3, 4)[0], abs=1e-4)


@pytest.mark.django_db
def test_a_slice_a_metric_cannot_be_narrowed_by_leaves_it_unknown_saying_so() -> None:
    day = timezone.localdate() - timedelta(days=1)
    AnalyticsEvent.objects.create(kind=EventKind.TURN_ANSWERED, conversation_id="a", data={"stage": 3})
    _on(day, EventKind.CLOSED, "a")

    metrics = analytics_report(start=day, end=day, stage=3)["metrics"]

    assert metrics["containment_rate"]["value"] == 1.0
    assert metrics["qa_pass_rate"]["value"] is None and metrics["qa_pass_rate"]["n"] is None
    assert metrics["qa_pass_rate"]["definition"].endswith("Unknown here: not narrowed by stage.")
    assert analytics_report(start=day, end=day, stage=4)["metrics"]["containment_rate"]["n"] == 0
    assert slices_not_narrowed("regression_pass_rate", intent="refund_request", responder="embedded") == ["responder"]


@pytest.mark.django_db
def test_csat_is_split_between_conversations_the_ai_handled_alone_and_those_a_person_handled() -> None:
    day = timezone.localdate() - timedelta(days=1)  # its noon is in the window whatever the time now
    _on(day, EventKind.CSAT, "alone", score=5)
    _on(day, EventKind.CSAT, "alone-too", score=4)
    _on(day, EventKind.CSAT, "helped", score=2)
    _on(day, EventKind.HUMAN_TOOK_OVER, "helped")

    ai = metric_read(MetricQuery("web_chat", "csat_ai"))
    human = metric_read(MetricQuery("web_chat", "csat_human"))

    assert (ai.value, ai.n) == (4.5, 2)
    assert (human.value, human.n) == (2.0, 1)


@pytest.mark.django_db
def test_the_command_writes_the_report_as_json_and_refuses_bad_dates(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report.json"
    call_command("analytics_report", "--from", "2026-11-02", "--to", "2026-11-08", "--json", str(out))
    report = json.loads(out.read_text())
    assert set(report) == {"from", "to", "channel", "intent", "stage", "responder", "prompt_version", "metrics"}
    assert set(report["metrics"]["qa_pass_rate"]) == {
        "value",
        "numerator",
        "denominator",
        "n",
        "low",
        "high",
        "definition",
    }
    assert "containment_rate" in capsys.readouterr().out

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("analytics_report", "--from", "2 November")
    for bad in ("9", "three"):
        with pytest.raises(CommandError, match="--stage takes a rollout stage"):
            call_command("analytics_report", "--stage", bad)
    with pytest.raises(CommandError, match="before --from"):
        call_command("analytics_report", "--from", "2026-11-08", "--to", "2026-11-02")


@pytest.mark.django_db
def test_handoff_times_average_the_first_replies_and_the_closes_after_a_handoff() -> None:
    day = timezone.localdate() - timedelta(days=1)  # its noon is in the window whatever the time now
    _on(day, EventKind.HUMAN_REPLIED, "a", first=True, seconds_since_handoff=60)
    _on(day, EventKind.HUMAN_REPLIED, "a", first=False)  # a later reply: not a first reply
    _on(day, EventKind.HUMAN_REPLIED, "b", first=True, seconds_since_handoff=180)
    _on(day, EventKind.CLOSED, "a", seconds_since_handoff=600)
    _on(day, EventKind.CLOSED, "c")  # the AI's own conversation: no handoff

    first = metric_read(MetricQuery("web_chat", "first_human_reply_s"))
    handled = metric_read(MetricQuery("web_chat", "handle_time_after_handoff_s"))

    assert (first.value, first.n) == (120.0, 2)
    assert (handled.value, handled.n) == (600.0, 1)


@pytest.mark.django_db
def test_a_report_for_one_intent_counts_the_conversations_about_it() -> None:
    day = timezone.localdate()
    for conversation, intent in (("a", "refund_request"), ("b", "refund_request"), ("c", "shipping_info")):
        AnalyticsEvent.objects.create(kind=EventKind.TURN_ANSWERED, conversation_id=conversation, intent=intent)
        _on(day, EventKind.CLOSED, conversation)
    _on(day, EventKind.ESCALATED, "a")

    refunds = analytics_report(start=day, end=day, intent="refund_request")

    assert refunds["intent"] == "refund_request"
    row = refunds["metrics"]["containment_rate"]
    assert (row["numerator"], row["denominator"]) == (1, 2)


@pytest.mark.django_db
def test_the_command_slices_by_stage_responder_and_prompt_version(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    day = timezone.localdate() - timedelta(days=1)
    turn = {"stage": 3, "responder": "openai_chat", "prompt_version": "oa:v2"}
    AnalyticsEvent.objects.create(kind=EventKind.TURN_ANSWERED, conversation_id="a", data=turn)
    _on(day, EventKind.CLOSED, "a")
    _on(day, EventKind.CLOSED, "b")  # no turn of that slice
    out = tmp_path / "report.json"

    call_command(
        "analytics_report",
        *("--from", str(day), "--to", str(day), "--json", str(out)),
        *("--stage", "3", "--responder", "openai_chat", "--prompt-version", "oa:v2"),
    )

    report = json.loads(out.read_text())
    assert (report["stage"], report["responder"], report["prompt_version"]) == (3, "openai_chat", "oa:v2")
    assert report["metrics"]["containment_rate"]["n"] == 1
    assert "stage 3, responder openai_chat, prompt version oa:v2" in capsys.readouterr().out
