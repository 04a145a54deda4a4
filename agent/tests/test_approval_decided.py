"""``approval_decided``: each approval request's outcome, tier and turnaround, recorded once by the agent's approval
listener (agent/approval_outcomes.py) after governance decides."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from agent.approval_outcomes import approval_decided_record, approval_outcome_listener
from agent.messages import conversation_start
from agent.tests.clock import Clock
from analytics.models import AnalyticsEvent, EventKind
from governance.approvals import (
    approval_request_approve,
    approval_request_create,
    approval_request_execute,
    approval_request_reject,
    approval_requests_expire,
)
from governance.executors import ACTION_EXECUTORS, ExecutionContext
from governance.models import ActionPolicy, ApprovalRequest, ApprovalStatus
from governance.roles import Principal
from governance.tests.factories import ActionPolicyFactory


@pytest.fixture
def refund_policy(db) -> ActionPolicy:  # type: ignore[no-untyped-def]
    return ActionPolicyFactory(action="refund", label="Refund an order", tier="approval_required")


def _request(policy: ActionPolicy, verified_customer: Principal, conversation_id: str = "") -> ApprovalRequest:
    return approval_request_create(
        actor=verified_customer,
        policy=policy,
        arguments={"order_id": "BL-10061", "amount": "80.00", "currency": "GBP"},
        principal=verified_customer,
        reason="above the automated ceiling",
        conversation_id=conversation_id,
    )


def _decided() -> list[AnalyticsEvent]:
    return list(AnalyticsEvent.objects.filter(kind=EventKind.APPROVAL_DECIDED).order_by("pk"))


@pytest.mark.django_db
def test_a_rejection_records_its_tier_outcome_and_turnaround_in_the_conversations_channel(  # type: ignore[no-untyped-def]
    clock: Clock,
    refund_policy: ActionPolicy,
    verified_customer: Principal,
    support_manager: User,
    django_capture_on_commit_callbacks,
) -> None:
    conversation = conversation_start(channel="web_chat")
    request = _request(refund_policy, verified_customer, str(conversation.pk))
    clock.advance(300)

    with django_capture_on_commit_callbacks(execute=True):
        approval_request_reject(request_id=request.pk, actor=support_manager, note="delivered intact")

    (event,) = _decided()
    assert (event.conversation_id, event.channel) == (str(conversation.pk), "web_chat")
    assert event.data == {
        "request": request.pk,
        "action": "refund",
        "tier": "approval_required",
        "outcome": "rejected",
        "decision": "rejected",
        "approver": support_manager.pk,
        "seconds_to_decision": 300.0,
        "seconds_to_outcome": 300.0,
    }


@pytest.mark.django_db
def test_an_approved_request_is_recorded_when_its_execution_ends_with_both_times(  # type: ignore[no-untyped-def]
    clock: Clock,
    refund_policy: ActionPolicy,
    verified_customer: Principal,
    support_manager: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks,
) -> None:
    monkeypatch.setitem(ACTION_EXECUTORS, "refund", lambda context: {"refund_id": "re_1"})  # the outside system
    request = _request(refund_policy, verified_customer)
    clock.advance(120)
    with django_capture_on_commit_callbacks(execute=False):  # the execution task runs below, not through Celery
        approval_request_approve(request_id=request.pk, actor=support_manager)
    assert _decided() == [], "approved is a decision, not yet an outcome"
    clock.advance(5)

    with django_capture_on_commit_callbacks(execute=True):
        approval_request_execute(request_id=request.pk)

    (event,) = _decided()
    assert (event.conversation_id, event.channel) == ("", "")  # a request without a conversation
    assert {key: event.data[key] for key in ("outcome", "decision", "seconds_to_decision", "seconds_to_outcome")} == {
        "outcome": "executed",
        "decision": "approved",
        "seconds_to_decision": 120.0,
        "seconds_to_outcome": 125.0,
    }


@pytest.mark.django_db
def test_a_failed_execution_is_an_approved_decision_with_a_failed_outcome(  # type: ignore[no-untyped-def]
    refund_policy: ActionPolicy,
    verified_customer: Principal,
    support_manager: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks,
) -> None:
    def refuses(context: ExecutionContext) -> dict[str, object]:
        raise PermissionError("the shop refused the refund")  # permanent: not retried

    monkeypatch.setitem(ACTION_EXECUTORS, "refund", refuses)
    request = _request(refund_policy, verified_customer)
    with django_capture_on_commit_callbacks(execute=False):
        approval_request_approve(request_id=request.pk, actor=support_manager)
    with django_capture_on_commit_callbacks(execute=True):
        approval_request_execute(request_id=request.pk)

    (event,) = _decided()
    assert (event.data["outcome"], event.data["decision"]) == ("failed", "approved")


@pytest.mark.django_db
def test_an_expired_request_is_recorded_by_the_sweep_with_no_approver(  # type: ignore[no-untyped-def]
    clock: Clock, refund_policy: ActionPolicy, verified_customer: Principal, django_capture_on_commit_callbacks
) -> None:
    request = _request(refund_policy, verified_customer)
    clock.advance(refund_policy.approval_expiry_hours * 3600 + 60)

    with django_capture_on_commit_callbacks(execute=True):
        assert approval_requests_expire() == 1

    (event,) = _decided()
    assert event.data["request"] == request.pk
    assert (event.data["outcome"], event.data["decision"], event.data["approver"]) == ("expired", "expired", None)
    assert event.data["seconds_to_decision"] == refund_policy.approval_expiry_hours * 3600 + 60


@pytest.mark.django_db
def test_the_listener_records_a_request_once_however_often_it_is_called(  # type: ignore[no-untyped-def]
    refund_policy: ActionPolicy,
    verified_customer: Principal,
    support_manager: User,
    django_capture_on_commit_callbacks,
) -> None:
    request = _request(refund_policy, verified_customer)
    with django_capture_on_commit_callbacks(execute=True):
        decided = approval_request_reject(request_id=request.pk, actor=support_manager)

    approval_outcome_listener(decided)  # a redelivered task, another process
    assert approval_decided_record(decided) is False

    assert len(_decided()) == 1


@pytest.mark.django_db
def test_a_pending_request_or_a_test_conversations_request_records_nothing(  # type: ignore[no-untyped-def]
    refund_policy: ActionPolicy, verified_customer: Principal, support_manager: User
) -> None:
    pending = _request(refund_policy, verified_customer)
    assert approval_decided_record(pending) is False

    rehearsal = conversation_start(is_test=True)
    request = _request(refund_policy, verified_customer, str(rehearsal.pk))
    ApprovalRequest.objects.filter(pk=request.pk).update(status=ApprovalStatus.REJECTED, decided_at=timezone.now())
    request.refresh_from_db()
    assert approval_decided_record(request) is False

    assert _decided() == []
