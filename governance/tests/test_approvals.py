"""Approval requests: exactly one execution, never on rejection or expiry, never self-approved."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from governance import approvals
from governance.approvals import (
    TransientExecutionError,
    approval_request_approve,
    approval_request_create,
    approval_request_execute,
    approval_request_reject,
    approval_requests_expire,
)
from governance.exceptions import ApprovalNotPending, NotPermitted, SelfApprovalRefused
from governance.executors import ACTION_EXECUTORS, ExecutionContext
from governance.models import ApprovalRequest, ApprovalStatus, AuditRecord, EventType
from governance.roles import GROUP_NAMES, Role
from governance.tests.factories import ActionPolicyFactory, ApprovalRequestFactory, UserFactory


class RecordingExecutor:
    """Stands in for an outside system (the true seam): records every call it receives."""

    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.calls: list[ExecutionContext] = []
        self.fail_with = fail_with
        self.lock = threading.Lock()

    def __call__(self, context: ExecutionContext) -> dict[str, object]:
        with self.lock:
            self.calls.append(context)
        if self.fail_with is not None:
            raise self.fail_with
        return {"refund_id": "re_123", "amount": context.arguments.get("amount")}


@pytest.fixture
def refund_executor(monkeypatch):  # type: ignore[no-untyped-def]
    executor = RecordingExecutor()
    monkeypatch.setitem(ACTION_EXECUTORS, "refund", executor)  # the real one (connectors) is back afterwards
    return executor


@pytest.fixture
def refund_request(db):  # type: ignore[no-untyped-def]
    policy = ActionPolicyFactory(action="refund", tier="approval_required")
    return ApprovalRequestFactory(action=policy)


def _events(event_type: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(event_type=event_type))


@pytest.mark.django_db
def test_creating_a_request_audits_it_with_its_idempotency_key(verified_customer) -> None:  # type: ignore[no-untyped-def]
    policy = ActionPolicyFactory(action="refund", tier="approval_required", approval_expiry_hours=4)
    request = approval_request_create(
        actor=verified_customer,
        policy=policy,
        arguments={"amount": "120.00"},
        principal=verified_customer,
        reason="above the automated ceiling 50",
        conversation_id="conv-1",
    )
    assert request.status == ApprovalStatus.PENDING
    assert request.requester_label == "AI agent for customer C-1001"
    assert timedelta(hours=3, minutes=59) < request.expires_at - timezone.now() <= timedelta(hours=4)
    (record,) = _events(EventType.APPROVAL_REQUESTED)
    assert record.data["idempotency_key"] == str(request.idempotency_key)
    assert record.conversation_id == "conv-1" and record.actor_kind == "customer"


@pytest.mark.django_db
def test_an_approval_executes_once_with_the_idempotency_key(
    refund_request, support_manager, refund_executor, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks() as callbacks:
        approval_request_approve(request_id=refund_request.pk, actor=support_manager, note="goodwill")
    assert len(callbacks) == 1  # the execution is queued after commit, not run inside the transaction
    approval_request_execute(request_id=refund_request.pk)
    assert approval_request_execute(request_id=refund_request.pk) is None  # a redelivered task does nothing
    refund_request.refresh_from_db()
    assert refund_request.status == ApprovalStatus.EXECUTED
    assert refund_request.result == {"refund_id": "re_123", "amount": "120.00"}
    assert [c.idempotency_key for c in refund_executor.calls] == [str(refund_request.idempotency_key)]
    assert refund_executor.calls[0].principal.customer_id == "C-1001"
    assert len(_events(EventType.APPROVAL_APPROVED)) == 1 and len(_events(EventType.ACTION_EXECUTED)) == 1


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_approvals_execute_exactly_once(refund_executor) -> None:  # type: ignore[no-untyped-def]
    policy = ActionPolicyFactory(action="refund", tier="approval_required")
    request = ApprovalRequestFactory(action=policy)
    approvers = [UserFactory(username=f"manager{n}", roles=[Role.SUPPORT_MANAGER]) for n in range(6)]
    outcomes: list[str] = []
    gate = threading.Barrier(len(approvers))

    def approve_and_execute(user) -> None:  # type: ignore[no-untyped-def]
        try:
            gate.wait()
            try:
                approval_request_approve(request_id=request.pk, actor=user)
                outcomes.append("approved")
            except ApprovalNotPending:
                outcomes.append("refused")
            # Every thread also tries to execute, as duplicated or redelivered tasks would.
            approval_request_execute(request_id=request.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve_and_execute, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approved"] + ["refused"] * (len(approvers) - 1)
    assert len(refund_executor.calls) == 1
    request.refresh_from_db()
    assert request.status == ApprovalStatus.EXECUTED
    assert AuditRecord.objects.filter(event_type=EventType.APPROVAL_APPROVED).count() == 1
    assert AuditRecord.objects.filter(event_type=EventType.ACTION_EXECUTED).count() == 1


@pytest.mark.django_db
def test_the_requester_may_not_approve_their_own_request(support_manager, refund_executor) -> None:  # type: ignore[no-untyped-def]
    request = ApprovalRequestFactory(action=ActionPolicyFactory(action="refund"), requested_by=support_manager)
    with pytest.raises(SelfApprovalRefused):
        approval_request_approve(request_id=request.pk, actor=support_manager)
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING and request.approver is None


@pytest.mark.django_db
def test_the_database_refuses_a_self_approval_too(support_manager) -> None:  # type: ignore[no-untyped-def]
    request = ApprovalRequestFactory(action=ActionPolicyFactory(action="refund"), requested_by=support_manager)
    with pytest.raises(IntegrityError, match="approval_not_self_approved"), transaction.atomic():
        ApprovalRequest.objects.filter(pk=request.pk).update(approver=support_manager, status=ApprovalStatus.APPROVED)


@pytest.mark.django_db
def test_the_database_refuses_an_approved_request_without_approver(refund_request) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError, match="approval_approved_has_approver"), transaction.atomic():
        ApprovalRequest.objects.filter(pk=refund_request.pk).update(status=ApprovalStatus.APPROVED)


@pytest.mark.django_db
def test_someone_without_an_approver_role_is_refused(refund_request, qa_reviewer, outsider, support_agent) -> None:  # type: ignore[no-untyped-def]
    for user in (qa_reviewer, outsider):
        with pytest.raises(NotPermitted):
            approval_request_approve(request_id=refund_request.pk, actor=user)
    # A support agent holds the permission but refunds name only managers and admins as approvers.
    with pytest.raises(NotPermitted, match="approvers: support_manager, support_admin"):
        approval_request_approve(request_id=refund_request.pk, actor=support_agent)


@pytest.mark.django_db
def test_a_rejected_request_is_never_executed(refund_request, support_manager, refund_executor) -> None:  # type: ignore[no-untyped-def]
    approval_request_reject(request_id=refund_request.pk, actor=support_manager, note="outside policy")
    assert approval_request_execute(request_id=refund_request.pk) is None
    with pytest.raises(ApprovalNotPending, match="rejected"):
        approval_request_approve(request_id=refund_request.pk, actor=support_manager)
    assert refund_executor.calls == []
    (record,) = _events(EventType.APPROVAL_REJECTED)
    assert record.reason == "outside policy"


@pytest.mark.django_db
def test_an_expired_request_cannot_be_approved_and_is_swept(support_manager, refund_executor) -> None:  # type: ignore[no-untyped-def]
    request = ApprovalRequestFactory(
        action=ActionPolicyFactory(action="refund"), expires_at=timezone.now() - timedelta(minutes=1)
    )
    fresh = ApprovalRequestFactory(action=request.action)
    with pytest.raises(ApprovalNotPending, match="expired"):
        approval_request_approve(request_id=request.pk, actor=support_manager)
    assert approval_requests_expire() == 1
    assert approval_requests_expire() == 0
    request.refresh_from_db()
    fresh.refresh_from_db()
    assert (request.status, fresh.status) == (ApprovalStatus.EXPIRED, ApprovalStatus.PENDING)
    assert approval_request_execute(request_id=request.pk) is None
    assert refund_executor.calls == []
    assert len(_events(EventType.APPROVAL_EXPIRED)) == 1


@pytest.mark.django_db
def test_the_approvers_permission_is_checked_again_at_execution(
    refund_request, support_manager, refund_executor
) -> None:  # type: ignore[no-untyped-def]
    approval_request_approve(request_id=refund_request.pk, actor=support_manager)
    support_manager.groups.remove(Group.objects.get(name=GROUP_NAMES[Role.SUPPORT_MANAGER]))
    # Django caches permissions on the user object; execution loads the approver afresh.
    request = approval_request_execute(request_id=refund_request.pk)
    assert request.status == ApprovalStatus.FAILED
    assert "no longer permitted" in request.error
    assert refund_executor.calls == []
    assert len(_events(EventType.ACTION_FAILED)) == 1


@pytest.mark.django_db
def test_a_transient_failure_returns_the_request_for_a_retry_with_the_same_key(
    refund_request, support_manager, refund_executor
) -> None:  # type: ignore[no-untyped-def]
    class Timeout(Exception):
        permanent = False

    approval_request_approve(request_id=refund_request.pk, actor=support_manager)
    refund_executor.fail_with = Timeout("read timed out")
    with pytest.raises(TransientExecutionError):
        approval_request_execute(request_id=refund_request.pk)
    refund_request.refresh_from_db()
    assert refund_request.status == ApprovalStatus.APPROVED
    refund_executor.fail_with = None
    approval_request_execute(request_id=refund_request.pk)
    refund_request.refresh_from_db()
    assert refund_request.status == ApprovalStatus.EXECUTED
    assert {c.idempotency_key for c in refund_executor.calls} == {str(refund_request.idempotency_key)}
    assert len(refund_executor.calls) == 2


@pytest.mark.django_db
def test_a_permanent_failure_is_recorded_and_not_retried(refund_request, support_manager, refund_executor) -> None:  # type: ignore[no-untyped-def]
    approval_request_approve(request_id=refund_request.pk, actor=support_manager)
    refund_executor.fail_with = ValueError("charge already refunded")
    request = approval_request_execute(request_id=refund_request.pk)
    assert request.status == ApprovalStatus.FAILED
    assert request.error == "ValueError: charge already refunded"
    assert approval_request_execute(request_id=refund_request.pk) is None


@pytest.mark.django_db
def test_an_action_without_an_executor_fails_clearly(refund_request, support_manager, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delitem(ACTION_EXECUTORS, "refund", raising=False)  # connectors registers the real one
    approval_request_approve(request_id=refund_request.pk, actor=support_manager)
    request = approval_request_execute(request_id=refund_request.pk)
    assert request.status == ApprovalStatus.FAILED
    assert request.error == "no executor is registered for refund"


@pytest.mark.django_db
def test_outcome_listeners_hear_about_executions_and_rejections(
    refund_request, support_manager, refund_executor, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    heard: list[tuple[int, str]] = []

    def listener(request) -> None:  # type: ignore[no-untyped-def]
        heard.append((request.pk, request.status))

    approvals.APPROVAL_OUTCOME_LISTENERS.append(listener)
    try:
        other = ApprovalRequestFactory(action=refund_request.action)
        with django_capture_on_commit_callbacks(execute=True):
            approval_request_reject(request_id=other.pk, actor=support_manager)
        with django_capture_on_commit_callbacks(execute=False):
            approval_request_approve(request_id=refund_request.pk, actor=support_manager)
        with django_capture_on_commit_callbacks(execute=True):
            approval_request_execute(request_id=refund_request.pk)
    finally:
        approvals.APPROVAL_OUTCOME_LISTENERS.remove(listener)  # the apps' own listeners stay
    assert heard == [(other.pk, "rejected"), (refund_request.pk, "executed")]


@pytest.mark.django_db
def test_the_admin_queue_approves_through_the_service_and_reports_refusals(
    client, support_manager, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    policy = ActionPolicyFactory(action="refund", tier="approval_required")
    mine = ApprovalRequestFactory(action=policy, requested_by=support_manager)
    theirs = ApprovalRequestFactory(action=policy)
    client.force_login(support_manager)
    assert client.get("/admin/governance/approvalrequest/?status=open").status_code == 200
    with django_capture_on_commit_callbacks():
        response = client.post(
            "/admin/governance/approvalrequest/",
            {"action": "approve_selected", "_selected_action": [mine.pk, theirs.pk]},
            follow=True,
        )
    texts = [str(m) for m in response.context["messages"]]
    assert "Approved 1 request(s)." in texts
    assert any(t.startswith(f"Not approved: #{mine.pk}: You requested this action") for t in texts)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)


@pytest.mark.django_db
def test_the_admin_queue_lists_requests_in_a_fixed_number_of_queries(
    client, support_manager, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    policy = ActionPolicyFactory(action="refund", tier="approval_required")
    for _ in range(12):
        ApprovalRequestFactory(action=policy)
    client.force_login(support_manager)
    with django_assert_max_num_queries(12):
        assert client.get("/admin/governance/approvalrequest/").status_code == 200
