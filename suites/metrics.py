"""The ``regression_pass_rate`` metric the rollout gates read (governance.metrics), from suite runs.

For a channel: each suite linked to any of that channel's gates (``RegressionSuite.gates``) contributes its latest
finished run within the window; the value is the cases that passed (every attempt, pass^k) ÷ the cases, over those
runs, and the sample is the number of cases. Per intent when the criterion names one (the cases of that intent).
No linked suite with a run in the window: no value (n=0), which a gate never counts as met.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from governance.metrics import Measurement, MetricQuery
from suites.models import RegressionSuite, RunStatus, SuiteRun


def latest_runs(query: MetricQuery) -> list[SuiteRun]:
    """Each linked suite's latest finished run within the window (one query)."""
    since = timezone.now() - timedelta(days=query.window_days)
    latest = (
        SuiteRun.objects.filter(suite=OuterRef("pk"), status=RunStatus.DONE, finished_at__gte=since)
        .order_by("-finished_at", "-pk")
        .values("pk")[:1]
    )
    suites = (
        RegressionSuite.objects.filter(gates__channel__channel=query.channel)
        .distinct()
        .annotate(latest_run=Subquery(latest))
        .filter(latest_run__isnull=False)
    )
    return list(SuiteRun.objects.filter(pk__in=suites.values("latest_run")))


def regression_pass_rate(query: MetricQuery) -> Measurement:
    """Cases passed ÷ cases over the latest run of each suite linked to the channel's gates (docs/suites.md)."""
    cases = passed = 0
    for run in latest_runs(query):
        if query.intent:
            figures = (run.by_intent or {}).get(query.intent) or {}
            cases += int(figures.get("cases") or 0)
            passed += int(figures.get("passed") or 0)
        else:
            cases += run.cases
            passed += run.passed or 0
    return Measurement(passed / cases if cases else None, cases)
