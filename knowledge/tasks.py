"""Knowledge's Celery tasks: thin, idempotent, queued on commit by knowledge.services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from knowledge.models import IngestionRun
from knowledge.runs import (
    INGEST_SOFT_TIME_LIMIT,
    INGEST_TIME_LIMIT,
    ingestion_run_claim,
    ingestion_run_execute,
    ingestion_run_finish,
)

logger = logging.getLogger(__name__)


@shared_task(name="knowledge.ingest_source", soft_time_limit=INGEST_SOFT_TIME_LIMIT, time_limit=INGEST_TIME_LIMIT)
def ingest_source(run_id: int) -> str:
    """Run one queued ingestion run; a run already claimed (a redelivered message) is left alone."""
    run = ingestion_run_claim(run_id=run_id)
    if run is None:
        return "not queued"
    try:
        return ingestion_run_execute(run=run).status
    except SoftTimeLimitExceeded:
        ingestion_run_finish(
            run=run,
            status=IngestionRun.Status.FAILED,
            reason="time limit reached: re-index to continue (documents already done are skipped as unchanged)",
        )
        return IngestionRun.Status.FAILED
    except Exception as exc:  # process boundary (STYLE.md rule 10): record the failure on the run, then re-raise
        logger.exception("knowledge ingestion run %s failed", run_id)
        ingestion_run_finish(run=run, status=IngestionRun.Status.FAILED, reason=f"{type(exc).__name__}: {exc}")
        raise
