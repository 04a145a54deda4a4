"""Governance's Celery tasks: thin, idempotent, take primary keys, call one service (STYLE.md rule 5)."""

from __future__ import annotations

from celery import shared_task

from governance.approvals import TransientExecutionError, approval_request_execute, approval_requests_expire


@shared_task(
    name="governance.approval_request_execute",
    bind=True,
    autoretry_for=(TransientExecutionError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=60,
    time_limit=90,
)
def approval_request_execute_task(self, request_id: int) -> str:  # type: ignore[no-untyped-def]
    """Execute an approved request (a redelivered or duplicate task finds it claimed and does nothing)."""
    request = approval_request_execute(request_id=request_id)
    return request.status if request else "not claimed"


@shared_task(name="governance.approval_requests_expire", soft_time_limit=60, time_limit=90)
def approval_requests_expire_task() -> int:
    return approval_requests_expire()
