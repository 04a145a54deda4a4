"""The QA metric providers: values and sample sizes, the window, the channel, the intent, test conversations and
unsettled disputes left out; registered for the rollout gates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from agent.models import Conversation, Owner
from governance.metrics import METRIC_PROVIDERS, METRICS, Measurement, MetricQuery, metric_read
from qa.metrics import PROVIDERS
from qa.models import ReviewItem
from qa.services import qa_review_submit
from qa.tests.helpers import LABELS_OK, conversation, criterion, item_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def grounded():  # type: ignore[no-untyped-def]
    return criterion("Grounded")


def reviewed(
    reviewer: Any, grounded: Any, *, passed: bool = True, needed: bool = False, breach: bool = False, **chat: Any
) -> ReviewItem:
    item = item_for(conversation(**chat), reviewer)
    labels = {**LABELS_OK, "escalation_needed": needed, "policy_breach": breach, "breached_policy": "x" * breach}
    qa_review_submit(item=item, reviewer=reviewer, results={grounded.pk: "pass" if passed else "fail"}, labels=labels)
    item.refresh_from_db()
    return item


def _read(metric: str, **query: Any) -> Measurement:
    return PROVIDERS[metric](MetricQuery(channel=query.pop("channel", "web_chat"), metric=metric, **query))


def test_the_providers_are_registered_for_the_gates() -> None:
    for name in (
        "qa_pass_rate",
        "escalation_accuracy",
        "escalation_precision",
        "missed_escalation_rate",
        "policy_breach_rate",
    ):
        assert METRIC_PROVIDERS[name] is PROVIDERS[name]
        assert name in METRICS


def test_no_reviews_is_no_value_with_a_sample_of_zero() -> None:
    assert _read("qa_pass_rate") == Measurement(None, 0, part=0)
    assert metric_read(MetricQuery(channel="web_chat", metric="qa_pass_rate")).n == 0


def test_pass_rate_and_policy_breach_rate(qa_reviewer, grounded) -> None:  # type: ignore[no-untyped-def]
    reviewed(qa_reviewer, grounded, passed=True)
    reviewed(qa_reviewer, grounded, passed=True)
    reviewed(qa_reviewer, grounded, passed=False, breach=True)
    assert _read("qa_pass_rate") == Measurement(2 / 3, 3, part=2)
    assert _read("policy_breach_rate") == Measurement(1 / 3, 3, part=1)


def test_escalation_accuracy_precision_and_missed_escalations(qa_reviewer, grounded) -> None:  # type: ignore[no-untyped-def]
    escalated = {"owner": Owner.WAITING, "escalated": "legal"}
    reviewed(qa_reviewer, grounded, needed=True, **escalated)  # right
    reviewed(qa_reviewer, grounded, needed=False, **escalated)  # needless
    reviewed(qa_reviewer, grounded, needed=False)  # right
    reviewed(qa_reviewer, grounded, needed=True)  # missed
    reviewed(qa_reviewer, grounded, needed=False)  # right
    assert _read("escalation_accuracy") == Measurement(3 / 5, 5, part=3)
    assert _read("escalation_precision") == Measurement(1 / 2, 2, part=1)
    assert _read("missed_escalation_rate") == Measurement(1 / 3, 3, part=1)


def test_the_window_channel_and_intent_narrow_the_sample(qa_reviewer, grounded) -> None:  # type: ignore[no-untyped-def]
    old = reviewed(qa_reviewer, grounded, passed=False)
    ReviewItem.objects.filter(pk=old.pk).update(finalised_at=timezone.now() - timedelta(days=10))
    reviewed(qa_reviewer, grounded, passed=True, intent="refund")
    reviewed(qa_reviewer, grounded, passed=False, channel="email")
    assert _read("qa_pass_rate", window_days=7) == Measurement(1.0, 1, part=1)
    assert _read("qa_pass_rate", window_days=30) == Measurement(0.5, 2, part=1)
    assert _read("qa_pass_rate", channel="email") == Measurement(0.0, 1, part=0)
    assert _read("qa_pass_rate", intent="refund") == Measurement(1.0, 1, part=1)
    assert _read("qa_pass_rate", intent="order_status", window_days=30) == Measurement(0.0, 1, part=0)


def test_test_conversations_and_unsettled_disputes_never_count(qa_reviewer, grounded) -> None:  # type: ignore[no-untyped-def]
    item = reviewed(qa_reviewer, grounded, passed=False)
    Conversation.objects.filter(pk=item.conversation_id).update(is_test=True)
    disputed = reviewed(qa_reviewer, grounded, passed=True)
    ReviewItem.objects.filter(pk=disputed.pk).update(status="disputed", final_review=None)
    assert _read("qa_pass_rate") == Measurement(None, 0, part=0)


def test_qa_coverage_is_the_share_of_closed_conversations_with_a_review_standing(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    criteria = [criterion("Grounded")]
    reviewed = conversation()
    conversation()  # closed, not reviewed
    conversation(is_test=True)  # never counted
    conversation(owner="agent")  # not closed: not in the denominator
    item = item_for(reviewed, qa_reviewer)
    qa_review_submit(item=item, reviewer=qa_reviewer, results={criteria[0].pk: "pass"}, labels=LABELS_OK)

    reading = metric_read(MetricQuery("web_chat", "qa_coverage"))

    assert (reading.value, reading.n, reading.part) == (0.5, 2, 1)
