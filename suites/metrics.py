"""The ``regression_pass_rate`` metric the rollout gates read (governance.metrics), from suite runs.

For a channel: each suite linked to any of that channel's gates (``RegressionSuite.gates``) contributes its latest
finished run within the window; the value is the cases that passed (every attempt, pass^k) ÷ the cases, over those
runs, and the sample is the number of cases. Per intent when the criterion names one (the cases of that intent).
A linked suite without a finished run in the window, or no linked suite at all: no value (n=0), which a gate never
counts as met.
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from governance.metrics import Measurement, MetricQuery
from suites.models import RegressionSuite, RunStatus, SuiteRun


def latest_runs(query: MetricQuery) -> tuple[list[SuiteRun], list[str]]:
    """Return each linked suite's latest finished run within the window, and the linked suites without one (two
    queries)."""
    start, end = query.bounds()
    latest = (
        SuiteRun.objects.filter(
            suite=OuterRef("pk"), status=RunStatus.DONE, finished_at__gte=start, finished_at__lt=end
        )
        .order_by("-finished_at", "-pk")
        .values("pk")[:1]
    )
    # A report may ask for every channel: then every suite linked to any gate.
    linked_to = {"gates__channel__channel": query.channel} if query.channel else {"gates__isnull": False}
    linked = dict(
        RegressionSuite.objects.filter(**linked_to)
        .distinct()
        .annotate(latest_run=Subquery(latest))
        .values_list("name", "latest_run")
    )
    missing = sorted(name for name, run in linked.items() if run is None)
    runs = [run for run in linked.values() if run is not None]
    return list(SuiteRun.objects.filter(pk__in=runs)) if runs else [], missing


def regression_pass_rate(query: MetricQuery) -> Measurement:
    """Cases passed ÷ cases over the latest run of each suite linked to the channel's gates (docs/suites.md).

    Every linked suite must have run in the window: a suite linked to a gate and not run is missing evidence, not a
    suite to leave out, so then there is no value and the gate says which suite has not run.
    """
    runs, missing = latest_runs(query)
    if missing:
        names = ", ".join(missing)
        return Measurement(None, 0, why=f"no finished run in the last {query.window_days} days of {names}")
    cases = passed = 0
    for run in runs:
        if query.intent:
            figures = (run.by_intent or {}).get(query.intent) or {}
            cases += int(figures.get("cases") or 0)
            passed += int(figures.get("passed") or 0)
        else:
            cases += run.cases
            passed += run.passed or 0
    return Measurement.share(passed, cases)
