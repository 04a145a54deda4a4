"""Daily rollups: each report metric per day and channel, stored, so the dashboard draws a series from a few hundred
rows instead of recounting every event of the period.

A day's rollup is the metric's provider read over that day alone (``MetricQuery(window_days=1)``), so a rollup and a
gate agree by construction. The live view reads the stored days plus today, computed on the spot
(``metric_series``). Days are recomputed whole and idempotently (``rollup_days``): by the nightly task for the last
``STEWARD_ROLLUP_REFRESH_DAYS`` days (a ticket reopened or a customer returning days later changes an earlier day's
resolution figures) and by ``manage.py analytics_rollup --from --to`` for any range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.models import AnalyticsEvent, MetricRollup
from analytics.report import RATE, REPORT_METRICS, slices_not_narrowed
from governance.metrics import Measurement, MetricQuery, metric_read

# Metrics whose daily samples are disjoint, so a period's figure is the sum of its days (part ÷ n for shares, the
# n-weighted mean for averages). The others describe a state (the latest suite run, the sources' freshness): a period
# shows its last known day.
NOT_ADDITIVE = {"regression_pass_rate", "source_freshness"}
# Metrics only known as they are now (no history to recompute a past day from): stored for the day the rollup runs
# after, never recomputed for older days (their stored rows stay).
CURRENT_STATE_ONLY = {"source_freshness"}


@dataclass(frozen=True)
class DayPoint:
    day: date
    value: float | None
    n: int
    part: int | None = None
    why: str = ""


def rolled_up_metrics() -> dict[str, str]:
    """Return the report metrics that have a provider: report name → provider name."""
    return {name: spec.provider for name, spec in REPORT_METRICS.items() if spec.provider}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def channels_of_day(day: date) -> list[str]:
    """Every channel with an event that day, and "" (every channel)."""
    start, end = day_bounds(day)
    seen = AnalyticsEvent.objects.filter(created_at__gte=start, created_at__lt=end).values_list("channel", flat=True)
    return [""] + sorted({channel for channel in seen.distinct() if channel})


def measure_day(name: str, *, day: date, channel: str = "", **slices: object) -> DayPoint:
    """Compute one report metric over one day, live (``slices``: intent, stage, responder, prompt_version); unknown
    when its provider does not narrow by a slice asked for."""
    not_narrowed = slices_not_narrowed(name, **slices)
    if not_narrowed:
        return DayPoint(day, None, 0, why=f"not narrowed by {', '.join(not_narrowed)}")
    _, end = day_bounds(day)
    query = MetricQuery(channel, rolled_up_metrics()[name], window_days=1, until=end, **slices)  # type: ignore[arg-type]
    reading = metric_read(query)
    return DayPoint(day, reading.value, reading.n or 0, reading.part, reading.error)


def rollup_days(start: date, end: date, *, metrics: Iterable[str] | None = None) -> int:
    """Recompute the rollups of every day from ``start`` to ``end`` (both included); return the rows written.

    Each day is replaced whole in its own transaction: a reader sees a day's old rows or its new ones, never a mix.
    """
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    names = list(metrics or rolled_up_metrics())
    yesterday = timezone.localdate() - timedelta(days=1)
    written = 0
    day = start
    while day <= end:
        names_today = [name for name in names if name not in CURRENT_STATE_ONLY] if day < yesterday else names
        rows = [
            _row(measure_day(name, day=day, channel=channel), name, channel)
            for channel in channels_of_day(day)
            for name in names_today
        ]
        with transaction.atomic():
            MetricRollup.objects.filter(day=day, metric__in=names_today).delete()
            MetricRollup.objects.bulk_create(rows)
        written += len(rows)
        day += timedelta(days=1)
    return written


def _row(point: DayPoint, name: str, channel: str) -> MetricRollup:
    return MetricRollup(
        day=point.day, channel=channel, metric=name, value=point.value, part=point.part, n=point.n, why=point.why[:300]
    )


def rollup_recent(*, today: date | None = None) -> int:
    """The nightly task: recompute the last ``STEWARD_ROLLUP_REFRESH_DAYS`` days before today (at least the return
    window and a day, so a return or reopen inside the resolution window reaches the day it changes)."""
    today = today or timezone.localdate()
    days = max(int(settings.STEWARD_ROLLUP_REFRESH_DAYS), int(settings.STEWARD_RETURN_WINDOW_DAYS) + 1)
    return rollup_days(today - timedelta(days=days), today - timedelta(days=1))


def metric_series(name: str, *, start: date, end: date, channel: str = "", **slices: object) -> list[DayPoint]:
    """Return one metric per day from ``start`` to ``end``: stored rollups for past days, today computed live.

    A slice (intent, stage, responder, prompt version) is not rolled up: its days are computed live. A past day
    without a rollup row (the nightly task has not run yet) is computed live too, never shown as empty.
    """
    today = timezone.localdate()
    live = any(value not in (None, "") for value in slices.values())
    stored = {}
    if not live:
        rows = MetricRollup.objects.filter(metric=name, channel=channel, day__gte=start, day__lte=min(end, today))
        stored = {row.day: DayPoint(row.day, row.value, row.n, row.part, row.why) for row in rows}
    points = []
    day = start
    while day <= end:
        if day in stored and day < today:
            points.append(stored[day])
        else:
            points.append(measure_day(name, day=day, channel=channel, **slices))
        day += timedelta(days=1)
    return points


def series_total(name: str, points: list[DayPoint]) -> Measurement:
    """Return a period's figure from its days: shares add up their parts and samples, averages weigh each day by its
    sample, and a state metric (``NOT_ADDITIVE``) shows its last known day."""
    known = [point for point in points if point.value is not None]
    if name in NOT_ADDITIVE:
        last = known[-1] if known else None
        return Measurement(last.value, last.n, part=last.part) if last else Measurement(None, 0)
    if REPORT_METRICS[name].unit == RATE:
        part = sum(point.part or 0 for point in known)
        return Measurement.share(part, sum(point.n for point in known))
    weight = sum(point.n for point in known)
    if not weight:
        return Measurement(None, 0)
    return Measurement(sum((point.value or 0.0) * point.n for point in known) / weight, weight)
