"""Approval requests: an action waits for a person, and is executed exactly once when approved.

- Deciding is a conditional update (``status = pending and not expired`` → approved / rejected): of many concurrent
  approvals exactly one wins; the others get ApprovalNotPending.
- Executing is claimed the same way (approved → executing), after commit, outside any transaction, with the request's
  idempotency key passed to the executor; the approver's permission is checked again at that moment.
- The approver may not be the requester: refused here, and by a database constraint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_record
from governance.exceptions import ApprovalNotPending, NotPermitted, SelfApprovalRefused
from governance.executors import (
    ACTION_EXECUTORS,
    ExecutionContext,
    is_permanent,
    principal_from_dict,
    principal_to_dict,
)
from governance.models import ActionPolicy, ApprovalRequest, ApprovalStatus, EventType
from governance.roles import Principal

DECIDE_PERMISSION = "governance.decide_approvalrequest"

# Called after commit with a request that reached an outcome the customer should hear about (executed, failed,
# rejected, expired). The agent registers one that tells the customer in the conversation.
APPROVAL_OUTCOME_LISTENERS: list[Callable[[ApprovalRequest], None]] = []


def _notify(request: ApprovalRequest) -> None:
    for listener in APPROVAL_OUTCOME_LISTENERS:
        transaction.on_commit(lambda listener=listener: listener(request))


@transaction.atomic
def approval_request_create(
    *,
    actor: Actor,
    policy: ActionPolicy,
    arguments: dict[str, Any],
    principal: Principal,
    reason: str,
    conversation_id: str = "",
    turn_id: str = "",
    requested_by: AbstractBaseUser | None = None,
) -> ApprovalRequest:
    """Record an action waiting for approval; it expires after the policy's expiry."""
    request = ApprovalRequest.objects.create(
        action=policy,
        arguments=arguments,
        principal=principal_to_dict(principal),
        conversation_id=conversation_id,
        turn_id=turn_id,
        reason=reason,
        requested_by=requested_by,
        requester_label=(requested_by.get_username() if requested_by else f"AI agent for {principal.label}")[:200],
        expires_at=timezone.now() + timedelta(hours=policy.approval_expiry_hours),
    )
    audit_record(
        actor=actor,
        event_type=EventType.APPROVAL_REQUESTED,
        subject=request,
        conversation_id=conversation_id,
        turn_id=turn_id,
        decision="needs_approval",
        reason=reason,
        data={"action": policy.action, "arguments": arguments, "idempotency_key": str(request.idempotency_key)},
    )
    return request


def may_decide(user: AbstractBaseUser, policy: ActionPolicy) -> bool:
    """Whether ``user`` may approve or reject requests for ``policy`` (permission and one of its approver roles)."""
    if not user.is_active or not user.has_perm(DECIDE_PERMISSION):
        return False
    return bool(Principal.staff(user).roles & set(policy.approver_roles))


def _check_decider(request: ApprovalRequest, user: AbstractBaseUser) -> None:
    if request.requested_by_id is not None and request.requested_by_id == user.pk:
        raise SelfApprovalRefused("You requested this action; someone else must decide it.")
    if not may_decide(user, request.action):
        raise NotPermitted(
            f"You may not decide {request.action.action} requests "
            f"(approvers: {', '.join(request.action.approver_roles) or 'nobody'})."
        )


def _decide(request_id: int, user: AbstractBaseUser, status: str, note: str, event: str) -> ApprovalRequest:
    request = ApprovalRequest.objects.select_related("action").get(pk=request_id)
    _check_decider(request, user)
    now = timezone.now()
    with transaction.atomic():
        won = ApprovalRequest.objects.filter(pk=request_id, status=ApprovalStatus.PENDING, expires_at__gt=now).update(
            status=status, approver=user, decided_at=now, decision_note=note
        )
        if won != 1:
            current = ApprovalRequest.objects.get(pk=request_id)
            state = "expired" if current.status == ApprovalStatus.PENDING else current.get_status_display().lower()
            raise ApprovalNotPending(f"This request is no longer waiting for a decision ({state}).")
        request.refresh_from_db()
        audit_record(
            actor=user,
            event_type=event,
            subject=request,
            conversation_id=request.conversation_id,
            decision=status,
            reason=note,
            data={"action": request.action.action},
        )
    return request


def approval_request_approve(*, request_id: int, actor: AbstractBaseUser, note: str = "") -> ApprovalRequest:
    """Approve a pending request and queue its execution (exactly once, after commit)."""
    from governance.tasks import approval_request_execute_task

    with transaction.atomic():
        request = _decide(request_id, actor, ApprovalStatus.APPROVED, note, EventType.APPROVAL_APPROVED)
        transaction.on_commit(lambda: approval_request_execute_task.delay(request_id))
    return request


def approval_request_reject(*, request_id: int, actor: AbstractBaseUser, note: str = "") -> ApprovalRequest:
    """Reject a pending request; it is never executed."""
    with transaction.atomic():
        request = _decide(request_id, actor, ApprovalStatus.REJECTED, note, EventType.APPROVAL_REJECTED)
        _notify(request)
    return request


def approval_requests_expire(*, now: Any = None) -> int:
    """Expire every pending request past its time; return how many expired (each audited)."""
    now = now or timezone.now()
    expired = 0
    for request_id in ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            if (
                ApprovalRequest.objects.filter(pk=request_id, status=ApprovalStatus.PENDING).update(
                    status=ApprovalStatus.EXPIRED, decided_at=now
                )
                != 1
            ):
                continue  # decided meanwhile
            request = ApprovalRequest.objects.select_related("action").get(pk=request_id)
            audit_record(
                actor=None,
                event_type=EventType.APPROVAL_EXPIRED,
                subject=request,
                conversation_id=request.conversation_id,
                decision="expired",
                reason=f"not decided within {request.action.approval_expiry_hours} h",
            )
            _notify(request)
            expired += 1
    return expired


class TransientExecutionError(Exception):
    """The executor failed in a way a retry may fix; the request is back to approved."""


def approval_request_execute(*, request_id: int) -> ApprovalRequest | None:
    """Execute an approved request once. Return it, or None when another worker has it or it is done.

    Raises TransientExecutionError when a retry may succeed (the caller retries with backoff; the same idempotency
    key goes out again, so the remote side does not act twice).
    """
    if (
        ApprovalRequest.objects.filter(pk=request_id, status=ApprovalStatus.APPROVED).update(
            status=ApprovalStatus.EXECUTING
        )
        != 1
    ):
        return None
    request = ApprovalRequest.objects.select_related("action", "approver").get(pk=request_id)
    executor = ACTION_EXECUTORS.get(request.action.action)
    if request.approver is None or not may_decide(request.approver, request.action):
        return _finish(request, ok=False, error="the approver is no longer permitted to approve this action")
    if executor is None:
        return _finish(request, ok=False, error=f"no executor is registered for {request.action.action}")
    context = ExecutionContext(
        action=request.action.action,
        arguments=request.arguments,
        principal=principal_from_dict(request.principal),
        idempotency_key=str(request.idempotency_key),
        conversation_id=request.conversation_id,
    )
    try:
        result = executor(context)
    except Exception as exc:  # noqa: BLE001 - boundary with outside systems: every failure is recorded
        if not is_permanent(exc):
            ApprovalRequest.objects.filter(pk=request_id, status=ApprovalStatus.EXECUTING).update(
                status=ApprovalStatus.APPROVED
            )
            raise TransientExecutionError(str(exc)) from exc
        return _finish(request, ok=False, error=f"{exc.__class__.__name__}: {exc}")
    return _finish(request, ok=True, result=result if isinstance(result, dict) else {"value": result})


@transaction.atomic
def _finish(
    request: ApprovalRequest, *, ok: bool, result: dict[str, Any] | None = None, error: str = ""
) -> ApprovalRequest:
    request.status = ApprovalStatus.EXECUTED if ok else ApprovalStatus.FAILED
    request.executed_at = timezone.now()
    request.result = result or {}
    request.error = error
    request.save(update_fields=["status", "executed_at", "result", "error"])
    audit_record(
        actor=principal_from_dict(request.principal),
        event_type=EventType.ACTION_EXECUTED if ok else EventType.ACTION_FAILED,
        subject=request,
        conversation_id=request.conversation_id,
        decision="executed" if ok else "failed",
        reason=error or f"approved by {request.approver.get_username() if request.approver else 'nobody'}",
        data={
            "action": request.action.action,
            "arguments": request.arguments,
            "result": request.result,
            "idempotency_key": str(request.idempotency_key),
        },
    )
    _notify(request)
    return request
