"""Daily rollups: stored days add up to what the live provider says over the same range, a recomputed day replaces
its rows, and a day without rollups is computed live."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventKind, MetricRollup
from analytics.report import REPORT_METRICS
from analytics.rollups import (
    CURRENT_STATE_ONLY,
    NOT_ADDITIVE,
    metric_series,
    rolled_up_metrics,
    rollup_days,
    series_total,
)
from governance.metrics import MetricQuery, metric_read

pytestmark = pytest.mark.django_db


def _on(day: date, kind: str, conversation: str, *, channel: str = "web_chat", **data: object) -> None:
    at = timezone.make_aware(datetime.combine(day, time(12)))
    AnalyticsEvent.objects.create(kind=kind, conversation_id=conversation, channel=channel, data=data, created_at=at)


def _closed(day: date, conversation: str, *, reached_person: bool = False) -> None:
    if reached_person:
        _on(day, EventKind.ESCALATED, conversation)
    _on(day, EventKind.CLOSED, conversation)


def _live(metric: str, start: date, end: date, channel: str = "web_chat"):  # type: ignore[no-untyped-def]
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    return metric_read(MetricQuery(channel, metric, window_days=(end - start).days + 1, until=until))


@pytest.fixture
def week() -> tuple[date, date]:
    """Four days of closed conversations before today, in two channels."""
    end = timezone.localdate() - timedelta(days=1)
    start = end - timedelta(days=3)
    for offset, (contained, escalated) in enumerate([(3, 1), (0, 2), (5, 0), (1, 1)]):
        day = start + timedelta(days=offset)
        for n in range(contained):
            _closed(day, f"{day}-ai-{n}")
        for n in range(escalated):
            _closed(day, f"{day}-person-{n}", reached_person=True)
    _on(start, EventKind.ESCALATED, "mail-1", channel="email")
    _on(start, EventKind.CLOSED, "mail-1", channel="email")
    _on(start, EventKind.CLOSED, "mail-2", channel="email")
    return start, end


def test_rolled_up_days_add_up_to_the_live_provider_over_the_same_range(week: tuple[date, date]) -> None:
    start, end = week
    written = rollup_days(start, end, metrics=["containment_rate"])

    points = metric_series("containment_rate", start=start, end=end, channel="web_chat")
    total = series_total("containment_rate", points)
    live = _live("containment_rate", start, end)

    assert written == 3 + 3 * 2  # each day every channel ("") and web_chat; email on the first day
    assert [point.n for point in points] == [4, 2, 5, 2]
    assert (total.value, total.part, total.n) == (live.value, live.part, live.n)
    every = series_total("containment_rate", metric_series("containment_rate", start=start, end=end))
    assert (every.part, every.n) == (_live("containment_rate", start, end, "").part, 15)
    assert every.part == 3 + 0 + 5 + 1 + 1  # the e-mail conversation that never reached a person too


def test_recomputing_a_day_replaces_its_rows(week: tuple[date, date]) -> None:
    start, _ = week
    rollup_days(start, start, metrics=["containment_rate"])
    _closed(start, "late-arrival")  # an event the first rollup did not see

    assert metric_series("containment_rate", start=start, end=start, channel="web_chat")[0].n == 4  # stored
    rollup_days(start, start, metrics=["containment_rate"])

    rows = MetricRollup.objects.filter(day=start, metric="containment_rate", channel="web_chat")
    assert rows.count() == 1 and rows.get().n == 5
    assert metric_series("containment_rate", start=start, end=start, channel="web_chat")[0].n == 5


def test_a_day_without_rollups_and_a_sliced_series_are_computed_live(week: tuple[date, date]) -> None:
    start, end = week
    rollup_days(start, start, metrics=["containment_rate"])
    MetricRollup.objects.filter(day=start).update(n=99, part=0, value=0.0)  # a stored day is read as stored

    points = metric_series("containment_rate", start=start, end=end, channel="web_chat")

    assert points[0].n == 99
    assert [point.n for point in points[1:]] == [2, 5, 2]  # never rolled up: live, not empty
    assert [point.value for point in points[1:]] == [0.0, 1.0, 0.5]
    AnalyticsEvent.objects.create(
        kind=EventKind.TURN_ANSWERED, conversation_id=f"{start}-ai-0", channel="web_chat", data={"stage": 3}
    )
    sliced = metric_series("containment_rate", start=start, end=start, channel="web_chat", stage=3)
    assert (sliced[0].n, sliced[0].value) == (1, 1.0)


def test_every_report_metric_with_a_provider_is_rolled_up_including_the_resolution_metrics(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_RETURN_WINDOW_DAYS = 7
    day = timezone.localdate() - timedelta(days=10)  # matured
    _closed(day, "a")
    _closed(day, "b", reached_person=True)
    _on(day, EventKind.APPROVAL_DECIDED, "a", outcome="executed", seconds_to_decision=60)

    rollup_days(day, day)

    stored = {row.metric: row for row in MetricRollup.objects.filter(day=day, channel="web_chat")}
    # source_freshness has no history: only yesterday and today store it (CURRENT_STATE_ONLY).
    assert set(stored) == set(rolled_up_metrics()) - CURRENT_STATE_ONLY == set(REPORT_METRICS) - {"source_freshness"}
    assert (stored["deflection_rate"].part, stored["deflection_rate"].n) == (1, 2)
    assert (stored["durable_resolution"].part, stored["durable_resolution"].n) == (2, 2)
    assert (stored["approval_turnaround_s"].value, stored["approval_turnaround_s"].n) == (60.0, 1)
    assert "source_freshness" in NOT_ADDITIVE
    recent = timezone.localdate() - timedelta(days=1)
    _closed(recent, "c")
    rollup_days(recent, recent, metrics=["durable_resolution"])
    unmatured = MetricRollup.objects.get(day=recent, channel="web_chat", metric="durable_resolution")
    assert unmatured.value is None and "resolution window" in unmatured.why


def test_a_state_metric_is_stored_for_recent_days_only_and_an_older_days_row_is_kept() -> None:
    old = timezone.localdate() - timedelta(days=5)
    MetricRollup.objects.create(day=old, channel="", metric="source_freshness", value=0.5, part=1, n=2)
    _closed(old, "a")

    rollup_days(old, timezone.localdate() - timedelta(days=1))

    kept = MetricRollup.objects.get(day=old, channel="", metric="source_freshness")
    assert (kept.value, kept.n) == (0.5, 2)  # recomputing an old day keeps what it knew then
    recent = MetricRollup.objects.filter(metric="source_freshness", day=timezone.localdate() - timedelta(days=1))
    assert recent.exists()


def test_a_slice_the_provider_does_not_narrow_by_is_unknown_not_the_whole() -> None:
    day = timezone.localdate() - timedelta(days=1)
    points = metric_series("qa_pass_rate", start=day, end=day, stage=3)
    assert points[0].value is None and "not narrowed by stage" in points[0].why
