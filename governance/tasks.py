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


@shared_task(name="governance.rollout_gates_evaluate", soft_time_limit=120, time_limit=150)
def rollout_gates_evaluate_task() -> dict[str, str]:
    """Evaluate the rollout gates of every channel (beat: every 15 minutes); return each channel's outcome.

    Idempotent enough to redeliver: an evaluation moves a channel at most one stage, under a lock on its row.
    """
    # Imported here so that this function could be appended without touching the module's shared import block.
    import logging

    from celery.exceptions import SoftTimeLimitExceeded

    from governance.gates import rollout_gate_evaluate
    from governance.models import ChannelRollout

    outcomes: dict[str, str] = {}
    for channel in ChannelRollout.objects.order_by("channel"):
        try:
            outcomes[channel.channel] = rollout_gate_evaluate(channel=channel).outcome
        except SoftTimeLimitExceeded:
            raise
        # Process boundary: one channel's failure (a broken gate, a lost connection) must not stop the others; it is
        # logged with its traceback and named in the task's result.
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("rollout gate evaluation failed for %s", channel.channel)
            outcomes[channel.channel] = "error"
    return outcomes


@shared_task(name="governance.retention_apply", soft_time_limit=150, time_limit=180)
def retention_apply_task() -> list[dict[str, object]]:
    """Apply every enabled retention rule (beat: daily at 03:15 UTC); return each rule's outcome.

    Safe to redeliver: each rule is claimed under a row lock, and a second run finds nothing left to do. The hard
    limit stays under the Redis visibility timeout (2 x CELERY_TASK_TIME_LIMIT + 60 s), so it is not redelivered while
    it still runs; audit pruning is batched (governance.retention.AUDIT_PRUNE_BATCH) to fit.
    """
    # Imported here so that this function could be appended without touching the module's shared import block.
    from governance.retention import retention_apply

    return [outcome.as_dict() for outcome in retention_apply(actor=None)]
