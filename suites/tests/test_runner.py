"""The runner on real turns: the demo company over real HTTP, the live turn code, in a dry run."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core import mail

from agent.console.selectors import console_queues
from agent.messages import conversation_start, message_store_customer
from agent.models import Conversation, TurnTrace
from agent.turn import run_turn
from analytics.models import AnalyticsEvent
from brewline.models import Refund, Subscription, SubscriptionStatus
from connectors.models import WriteReceipt
from governance.models import ApprovalRequest, AuditRecord, EventType
from knowledge.models import FailedRetrieval
from suites.models import CaseResult, RegressionSuite, RunStatus
from suites.runner import Attempt, suite_run_execute, summarize
from suites.services import regression_case_create, suite_run_start

pytestmark = pytest.mark.django_db(transaction=True)

PRIYA = "priya.castellano@example.com"


def _suite(stage: int | None = 4, **cases: list[dict[str, Any]]) -> RegressionSuite:
    suite = RegressionSuite.objects.create(name=f"suite-{uuid.uuid4().hex[:8]}", stage=stage)
    for name, turns in cases.items():
        regression_case_create(
            suite=suite, name=name, identity="email_verified", identity_email=PRIYA, turns=turns, actor=None
        )
    return suite


def _run(suite: RegressionSuite, k: int | None = None):  # type: ignore[no-untyped-def]
    return suite_run_execute(suite_run_start(suite=suite, k=k, actor=None))


def test_a_dry_run_refund_is_decided_and_recorded_but_never_written(demo_company) -> None:  # type: ignore[no-untyped-def]
    refunds, events = Refund.objects.count(), AnalyticsEvent.objects.count()
    suite = _suite(
        small=[
            {
                "say": "Please refund £12.50 for order BL-10061, one bag was missing",
                "expect": [{"type": "governance_decision", "action": "refund", "decision": "allow"}],
            }
        ],
        large=[
            {
                "say": "Please refund £80 for order BL-10061, it arrived damaged",
                "expect": [{"type": "governance_decision", "action": "refund", "decision": "needs_approval"}],
            }
        ],
    )

    run = _run(suite)

    assert (run.status, run.cases, run.passed, run.failures) == (RunStatus.DONE, 2, 2, [])
    small = CaseResult.objects.get(run=run, case_name="small")
    assert small.turns[0]["reply"].startswith("Done — I've refunded 12.50 for order BL-10061")
    [write] = small.would_execute["writes"]
    assert (write["connector"], write["operation"]) == ("demo_commerce", "refund")
    assert write["arguments"] == {"order_id": "BL-10061", "amount": "12.50"}
    large = CaseResult.objects.get(run=run, case_name="large")
    assert large.would_execute["approvals"][0]["arguments"] == {"order_id": "BL-10061", "amount": "80.00"}
    # Nothing left Steward, nobody was asked, nothing counted.
    assert not WriteReceipt.objects.exists() and Refund.objects.count() == refunds
    assert not ApprovalRequest.objects.exists()
    assert mail.outbox == []  # the verification code was typed by the runner, never e-mailed
    assert AnalyticsEvent.objects.count() == events
    conversations = Conversation.objects.filter(pk__in=[small.conversation_id, large.conversation_id])
    assert conversations.count() == 2 and all(c.is_test for c in conversations)
    # Governance decided as in production, and said so in the audit log.
    assert AuditRecord.objects.filter(event_type=EventType.ACTION_DECISION, subject_id="refund").count() == 2
    assert AuditRecord.objects.get(event_type=EventType.SUITE_RUN).decision == "done"


def test_a_test_conversation_never_writes_even_when_a_worker_runs_its_turn(demo_company) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start(is_test=True)
    conversation.customer_id, conversation.verification = "C-1003", 1  # as if e-mail verified
    conversation.save()

    for text in ["Can I pause SUB-2003 while I'm on holiday?", "What's a good plumber in Leeds?"]:
        message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text=text)
        run_turn(str(conversation.pk))  # no dry run around it: run_turn enters one itself for a test conversation

    [pause] = TurnTrace.objects.filter(conversation=conversation, tool_calls__0__action="subscription_pause")
    assert pause.tool_calls[0]["decision"] == "allow" and pause.tool_calls[0]["result"]["result"]["dry_run"] is True
    assert Subscription.objects.get(number="SUB-2003").status == SubscriptionStatus.ACTIVE
    assert not WriteReceipt.objects.exists()
    assert not FailedRetrieval.objects.exists()
    assert not AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk)).exists()


def test_a_suite_rehearses_the_stage_it_names(demo_company) -> None:  # type: ignore[no-untyped-def]
    turns = [
        {
            "say": "Please refund £12.50 for order BL-10061, one bag was missing",
            "expect": [{"type": "governance_decision", "action": "refund", "decision": "deny"}],
        }
    ]
    run = _run(_suite(stage=2, early=turns))  # refunds are enabled from stage 4
    assert run.passed == 1, run.failures
    assert run.config["stage"] == 2 and run.config["stage_from"] == "suite"


def test_an_escalated_case_stops_sending_and_fails_later_turns_that_expect_more(demo_company) -> None:  # type: ignore[no-untyped-def]
    suite = _suite(
        stage=None,
        handover=[
            {"say": "I want to speak to a real person please", "expect": [{"type": "must_escalate"}]},
            {"say": "Hello?", "expect": [{"type": "must_escalate", "reason": "asked for a person"}]},
            {"say": "Where is BL-10061?", "expect": [{"type": "reply_matches", "pattern": "BL-10061"}]},
        ],
    )
    run = _run(suite, k=2)

    result = CaseResult.objects.filter(run=run).first()
    assert [t["skipped"] for t in result.turns] == [False, True, True]
    assert result.turns[1]["expectations"][0]["passed"] is True
    assert result.turns[2]["expectations"][0]["got"] == "not sent: the conversation was handed over at turn 1"
    assert (run.cases, run.passed, run.pass_rate, run.pass_hat_k) == (1, 0, 0.0, 0.0)
    assert run.failures[0] | {"got": ""} == {"case": "handover", "attempt": 1, "turn": 3, "got": ""} | {
        "expectation": "reply_matches(pattern=BL-10061)"
    }
    # The handed-over test conversation is not in front of a person: not in the console's queue.
    waiting = Conversation.objects.get(pk=result.conversation_id)
    assert waiting.owner == "waiting" and waiting.ticket_id == ""
    assert waiting not in console_queues().waiting


def test_a_case_whose_identity_cannot_be_set_up_fails_with_the_reason_and_the_run_goes_on(demo_company) -> None:  # type: ignore[no-untyped-def]
    suite = _suite(fine=[{"say": "Hi!", "expect": [{"type": "must_not_escalate"}]}])
    regression_case_create(
        suite=suite,
        name="stranger",
        identity="email_verified",
        identity_email=PRIYA,
        identity_customer_id="C-9999",
        turns=[{"say": "Hi!"}],
        actor=None,
    )
    run = _run(suite)
    assert (run.cases, run.passed) == (2, 1)
    assert run.failures == [
        {
            "case": "stranger",
            "attempt": 1,
            "turn": None,
            "expectation": "the case ran",
            "got": f"CaseSetupError: {PRIYA} is customer C-1003 in the CRM, not C-9999",
        }
    ]


def _attempt(case: str, intent: str, attempt: int, passed: bool) -> Attempt:
    return Attempt(case=case, intent=intent, attempt=attempt, passed=passed)


def test_pass_rate_counts_attempts_and_pass_hat_k_counts_cases_whose_every_attempt_passed() -> None:
    attempts = [
        _attempt("a", "refund_request", 1, True),
        _attempt("a", "refund_request", 2, True),
        _attempt("b", "refund_request", 1, True),
        _attempt("b", "refund_request", 2, False),
        _attempt("c", "greeting", 1, False),
        _attempt("c", "greeting", 2, False),
    ]
    summary = summarize(attempts)
    assert (summary["cases"], summary["passed"], summary["pass_rate"], summary["pass_hat_k"]) == (3, 1, 0.5, 0.3333)
    assert summary["by_intent"] == {
        "greeting": {"cases": 1, "passed": 0, "pass_rate": 0.0, "pass_hat_k": 0.0},
        "refund_request": {"cases": 2, "passed": 1, "pass_rate": 0.75, "pass_hat_k": 0.5},
    }


def test_a_recorded_snapshot_serves_the_reads_of_later_runs(demo_company) -> None:  # type: ignore[no-untyped-def]
    from connectors.models import Connector

    turns = [
        {
            "say": "Has my order BL-10061 arrived?",
            "expect": [{"type": "reply_matches", "pattern": "Order BL-10061 is delivered"}],
        }
    ]
    suite = _suite(status=turns)
    recorded = suite_run_execute(suite_run_start(suite=suite, actor=None), record_snapshot=True)
    assert recorded.passed == 1, recorded.failures
    suite.refresh_from_db()
    assert "order/BL-10061" in suite.snapshot["demo_commerce"]["objects"]
    assert suite.snapshot["demo_crm"]["customers"][PRIYA][0]["id"] == "C-1003"
    assert AuditRecord.objects.filter(subject_type="suites.regressionsuite", fields=["snapshot"]).exists()

    # The systems are gone; the suite still reads what they returned.
    Connector.objects.filter(key__in=["demo_crm", "demo_commerce"]).update(base_url="http://127.0.0.1:9/nowhere")
    replayed = _run(suite)
    assert replayed.passed == 1, replayed.failures
    assert replayed.config["snapshot"] is True
