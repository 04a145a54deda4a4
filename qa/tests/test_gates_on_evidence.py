"""The evidence loop end to end on the demo company: live conversations are sampled and reviewed, the demo suite runs,
and the web chat's gates open stage by stage on those results — then fall back when a review finds a policy breach.

Everything is real: the turns (embedded responder, governance, escalation, the demo system over HTTP), the sampling,
the reviews, the suite run (test conversations in dry run) and the gate evaluations with the demo's criteria.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from agent.models import Conversation
from agent.services import conversation_close
from agent.tests.test_turn import Chat
from governance.gates import rollout_gate_evaluate, rollout_gate_sign_off
from governance.models import ChannelRollout, GateEvaluation, RolloutGate
from knowledge.models import KnowledgeSource, SourceStatus
from knowledge.services import source_mark_reviewed
from qa.demo import seed_qa
from qa.models import ReviewItem, ScorecardCriterion
from qa.services import conversation_flag, qa_queue_fill, qa_review_submit
from suites.models import RegressionSuite, RunStatus
from suites.runner import suite_run_execute
from suites.services import suite_run_start
from suites.tests.conftest import demo_company, demo_help_centre, demo_suite  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = [
    "How long does delivery to the UK take?",
    "How many days do I have to send something back?",
    "Which payment methods can I use?",
    "I forgot my password, how do I reset it?",
    "How long is the warranty on a Brewline machine?",
    "Can I change how often my subscription coffee arrives?",
    "How long does delivery to the UK take?",
    "How many days do I have to send something back?",
    "Which payment methods can I use?",
    "How long is the warranty on a Brewline machine?",
]


def _user(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def _live_conversations() -> list[Conversation]:
    """Twelve customers: ten knowledge questions answered and closed, two who ask for a person."""
    chats = []
    for question in QUESTIONS:
        chat = Chat()
        chat.say(question)
        conversation_close(conversation_id=chat.conversation.pk, actor=None)
        chats.append(chat.conversation)
    for _ in range(2):
        chat = Chat()
        chat.say("Can I talk to a person, please?")
        chats.append(chat.conversation)
    return [Conversation.objects.get(pk=c.pk) for c in chats]


def _review_everything(*, breach_in: Conversation | None = None) -> int:
    """Quinn (the demo's QA reviewer) reviews every open item: the agent did right, escalations were needed."""
    reviewer, criteria = _user("quinn.qa"), list(ScorecardCriterion.objects.filter(enabled=True))
    reviewed = 0
    for item in ReviewItem.objects.filter(status__in=["open", "in_review"]).select_related("conversation"):
        conversation = item.conversation
        breach = conversation.pk == getattr(breach_in, "pk", None)
        qa_review_submit(
            item=item,
            reviewer=reviewer,
            results={c.pk: ("fail" if breach and c.auto_fail else "pass") for c in criteria},
            labels={
                "escalation_needed": bool(conversation.escalation_reason),
                "policy_breach": breach,
                "breached_policy": "Refund policy" if breach else "",
                "resolved": True,
            },
        )
        reviewed += 1
    return reviewed


def _evaluate() -> GateEvaluation:
    return rollout_gate_evaluate(channel=ChannelRollout.objects.get(channel="web_chat"))


def test_the_demo_gates_open_stage_by_stage_on_reviews_and_a_suite_run_and_fall_back_on_a_breach(
    demo_suite,  # noqa: F811
) -> None:
    seed_qa()
    manager = _user("omar.lead")
    ChannelRollout.objects.filter(channel="web_chat").update(stage=1)
    for gate in RolloutGate.objects.filter(channel__channel="web_chat", stage__in=[2, 3, 4]):
        for kind in gate.required_signoffs:
            rollout_gate_sign_off(gate=gate, kind=kind, actor=manager)

    # Signed off, but no evidence yet: the gate into stage 2 stays shut and says why.
    shut = _evaluate()
    assert (shut.outcome, shut.stage_after) == ("blocked", 1)
    assert "qa_pass_rate (7 days): no data yet" in shut.reason
    assert "regression_pass_rate (7 days): no data yet" in shut.reason

    # Live traffic, sampled (every escalation, and what a support agent flagged) and reviewed.
    conversations = _live_conversations()
    for conversation in conversations:
        conversation_flag(conversation=conversation, actor=_user("sam.support"), note="launch review")
    qa_queue_fill()
    assert ReviewItem.objects.count() == len(conversations)
    assert _review_everything() == len(conversations)
    reviewed_only = _evaluate()
    assert (reviewed_only.outcome, reviewed_only.stage_after) == ("blocked", 1)
    assert "regression_pass_rate (7 days): no data yet" in reviewed_only.reason
    assert "qa_pass_rate" not in reviewed_only.reason  # 12 reviews, all passed: that part is met

    # The demo suites, run as manage.py run_suite runs them (the admin's Run button queues the same for a worker).
    # Every suite linked to the gates must have run: the first alone is not enough.
    run = suite_run_execute(suite_run_start(suite=demo_suite, actor=_user("maya.ops")))
    assert run.status == RunStatus.DONE
    assert run.pass_hat_k >= 0.97, run.failures
    one_suite = _evaluate()
    assert "no finished run in the last 7 days of demo_faults" in one_suite.reason
    faults = suite_run_execute(suite_run_start(suite=RegressionSuite.objects.get(name="demo_faults"), actor=None))
    assert (faults.status, faults.failures) == (RunStatus.DONE, [])

    # The demo's help centre has one source due for review and one stale on purpose: freshness holds the gate shut
    # until their owner reviews them.
    overdue = _evaluate()
    assert (overdue.outcome, overdue.stage_after) == ("blocked", 1)
    assert overdue.reason == "entry criterion not met: source_freshness (7 days) is 0.8571 (n=14), needs at least 0.9"
    today = timezone.localdate()
    for source in KnowledgeSource.objects.filter(status=SourceStatus.APPROVED, review_due_on__lte=today):
        source_mark_reviewed(actor=_user("maya.ops"), source=source, note="checked for the launch")

    # Stage by stage, one evaluation at a time, on the measured evidence.
    evaluations = [_evaluate(), _evaluate(), _evaluate()]
    outcomes = [(e.outcome, e.stage_before, e.stage_after) for e in evaluations]
    assert outcomes == [("promoted", 1, 2), ("promoted", 2, 3), ("promoted", 3, 4)], [e.reason for e in evaluations]
    at_four = ChannelRollout.objects.get(channel="web_chat")
    assert at_four.stage == 4
    promoted = GateEvaluation.objects.filter(outcome="promoted").order_by("evaluated_at")
    assert "regression_pass_rate (7 days) is 1 " in promoted[0].reason
    assert f"(n={run.cases + faults.cases})" in promoted[0].reason
    assert "escalation_accuracy (7 days) is 1 (n=12)" in promoted[1].reason
    # Stage 5 asks for containment and CSAT from 100 and 30 conversations: not this demo's evidence.
    held = _evaluate()
    assert (held.outcome, held.stage_after) == ("blocked", 4)

    # A reviewer finds a policy breach in one more conversation: the channel falls back at the next evaluation.
    breached = Chat()
    breached.say("How many days do I have to send something back?")
    conversation_close(conversation_id=breached.conversation.pk, actor=None)
    conversation_flag(conversation=breached.conversation, actor=_user("sam.support"))
    qa_queue_fill()
    _review_everything(breach_in=breached.conversation)
    fallen = _evaluate()
    assert (fallen.outcome, fallen.stage_before, fallen.stage_after) == ("rolled_back", 4, 3)
    assert "policy_breach_rate (7 days) is 0.07692 (n=13)" in fallen.reason
