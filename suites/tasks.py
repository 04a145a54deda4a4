"""The suites app's Celery task: thin, idempotent (a claimed run is left alone), queued on commit by
suites.services.suite_run_create."""

from __future__ import annotations

from celery import shared_task

from suites.services import RUN_SOFT_TIME_LIMIT, RUN_TIME_LIMIT


@shared_task(name="suites.run_suite", soft_time_limit=RUN_SOFT_TIME_LIMIT, time_limit=RUN_TIME_LIMIT)
def run_suite(run_id: int) -> str:
    """Run one queued suite run (a redelivered task finds it claimed and does nothing)."""
    from suites.models import SuiteRun
    from suites.runner import suite_run_execute

    run = SuiteRun.objects.select_related("suite").filter(pk=run_id).first()
    if run is None:
        return "gone"
    # suite_run_execute marks the run failed on any exception (a soft time limit included) and re-raises it.
    return suite_run_execute(run).status
