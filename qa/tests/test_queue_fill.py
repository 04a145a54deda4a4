"""qa_queue_fill: what each sampling rule picks, idempotence, one item per conversation, round-robin assignment,
the blind double-review share, and test conversations never sampled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agent.models import Conversation, Intent, Owner
from governance.models import AuditRecord
from governance.roles import Role
from governance.tests.factories import ApprovalRequestFactory, UserFactory
from knowledge.models import FailedRetrieval
from qa.models import ConversationFlag, ReviewAssignment, ReviewItem, ReviewReason, RuleKind
from qa.sampling import bucket
from qa.services import qa_queue_fill
from qa.tests.helpers import conversation, rule

pytestmark = pytest.mark.django_db


def _queued() -> set:
    return set(ReviewItem.objects.values_list("conversation_id", flat=True))


def test_every_escalation_is_queued_once_and_a_second_run_queues_nothing_new(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS)
    escalated = conversation(owner=Owner.WAITING, escalated="customer asked for a person")
    conversation()  # not escalated
    first = qa_queue_fill()
    assert _queued() == {escalated.pk}
    assert ReviewReason.objects.get().detail == "escalated: customer asked for a person"
    second = qa_queue_fill()
    assert (second.items, second.reasons, second.assignments) == ([], 0, [])
    assert ReviewItem.objects.count() == 1 and ReviewAssignment.objects.count() == 1
    assert AuditRecord.objects.filter(decision="qa.queue_filled").count() == 1
    assert first.as_dict()["items"] == 1


def test_a_conversation_two_rules_pick_is_one_item_with_two_reasons(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS)
    rule(RuleKind.NEGATIVE_CSAT)
    chat = conversation(owner=Owner.WAITING, escalated="frustration", csat=1)
    qa_queue_fill()
    item = ReviewItem.objects.get()
    assert item.conversation_id == chat.pk
    assert sorted(item.reasons.values_list("rule__kind", flat=True)) == ["escalations", "negative_csat"]


def test_test_conversations_and_conversations_still_with_the_ai_are_never_sampled(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS)
    rule(RuleKind.LOW_CONFIDENCE, threshold=0.45)
    conversation(owner=Owner.WAITING, escalated="legal", is_test=True)
    conversation(confidence=0.1, is_test=True)
    live = conversation(owner=Owner.AGENT, confidence=0.1)
    qa_queue_fill()
    assert _queued() == set()
    live.owner = Owner.CLOSED
    live.save(update_fields=["owner"])
    qa_queue_fill()
    assert _queued() == {live.pk}


def test_a_conversation_the_ai_never_answered_is_never_sampled(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS)
    # Outside the AI's traffic share: handed to a person at the first message, with no turn of the AI's.
    Conversation.objects.create(owner=Owner.WAITING, escalation_reason="outside the AI's traffic share (50%)")
    answered = conversation(owner=Owner.WAITING, escalated="customer asked for a person")
    qa_queue_fill()
    assert _queued() == {answered.pk}


def test_low_confidence_negative_rating_and_the_channel_filter(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.LOW_CONFIDENCE, threshold=0.45, channel="web_chat")
    rule(RuleKind.NEGATIVE_CSAT, name="csat")
    low = conversation(confidence=0.3)
    conversation(confidence=0.5)
    conversation(confidence=0.2, channel="email")
    unhappy = conversation(csat=2)
    conversation(csat=3)
    qa_queue_fill()
    assert _queued() == {low.pk, unhappy.pk}
    assert ReviewReason.objects.get(conversation=low).detail == "confidence 0.30 < 0.45"


def test_policy_decisions_are_denied_actions_and_approvals(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.POLICY_DECISIONS)
    denied = conversation(tool_calls=[{"action": "refund_order", "decision": "deny", "reason": "over the limit"}])
    allowed = conversation(tool_calls=[{"action": "order_status", "decision": "allow", "reason": "read-only"}])
    approval = conversation()
    ApprovalRequestFactory(conversation_id=str(approval.pk))
    qa_queue_fill()
    assert _queued() == {denied.pk, approval.pk}
    assert allowed.pk not in _queued()


def test_failed_retrievals_and_flags(qa_reviewer, support_agent) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.FAILED_RETRIEVALS)
    rule(RuleKind.FLAGGED)
    unanswered = conversation()
    FailedRetrieval.objects.create(query="do you ship to Mars", audience="public", conversation_id=str(unanswered.pk))
    flagged = conversation(owner=Owner.AGENT)  # a flag takes a conversation in any state
    ConversationFlag.objects.create(conversation=flagged, flagged_by=support_agent, note="odd refund wording")
    qa_queue_fill()
    assert _queued() == {unanswered.pk, flagged.pk}
    assert ReviewReason.objects.get(conversation=flagged).detail == "flagged: odd refund wording"


def test_the_first_n_conversations_after_an_intent_changed_are_sampled(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    intent = Intent.objects.create(name="order_status", label="Order status")
    rule(RuleKind.NEW_INTENT, first_n=2)
    before = conversation(created_at=intent.updated_at - timedelta(minutes=5))
    now = timezone.now()
    first = conversation(created_at=now + timedelta(seconds=1))
    second = conversation(created_at=now + timedelta(seconds=2))
    conversation(created_at=now + timedelta(seconds=3))  # the third: not sampled
    conversation(intent="refund", created_at=now + timedelta(seconds=4))
    qa_queue_fill(now=now + timedelta(minutes=1))
    assert _queued() == {first.pk, second.pk}
    assert before.pk not in _queued()


def test_a_random_share_of_closed_conversations_is_stable_across_runs(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    sampled_rule = rule(RuleKind.RANDOM_CLOSED, share_percent=50)
    chats = [conversation() for _ in range(12)]
    conversation(owner=Owner.WAITING, escalated="legal")  # not closed: not in the random share
    qa_queue_fill()
    expected = {c.pk for c in chats if bucket(sampled_rule.pk, c.pk) < 5000}
    assert _queued() == expected
    qa_queue_fill()
    assert _queued() == expected


def test_conversations_older_than_the_lookback_are_left_alone(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS, lookback_days=7)
    conversation(owner=Owner.WAITING, escalated="legal", created_at=timezone.now() - timedelta(days=8))
    qa_queue_fill()
    assert _queued() == set()


def test_items_are_assigned_round_robin_and_the_assignee_may_review_only_theirs() -> None:
    reviewers = [UserFactory(username=f"rev{i}", roles=[Role.QA_REVIEWER]) for i in range(3)]
    UserFactory(username="mgr", roles=[Role.SUPPORT_MANAGER])  # managers are never auto-assigned
    rule(RuleKind.ESCALATIONS)
    chats = [conversation(owner=Owner.WAITING, escalated="legal") for _ in range(4)]
    qa_queue_fill()
    order = [
        ReviewAssignment.objects.get(item__conversation=c).reviewer.username
        for c in sorted(chats, key=lambda c: ReviewItem.objects.get(conversation=c).pk)
    ]
    assert order == ["rev0", "rev1", "rev2", "rev0"]
    # The rotation carries on from the last assignment on the next run.
    later = conversation(owner=Owner.WAITING, escalated="legal")
    qa_queue_fill()
    assert ReviewAssignment.objects.get(item__conversation=later).reviewer.username == "rev1"
    item = ReviewItem.objects.get(conversation=later)
    assert reviewers[1].has_perm("qa.review_reviewitem", item)
    assert not reviewers[0].has_perm("qa.review_reviewitem", item)


def test_items_queued_while_nobody_could_review_are_assigned_later() -> None:
    rule(RuleKind.ESCALATIONS)
    conversation(owner=Owner.WAITING, escalated="legal")
    qa_queue_fill()
    assert ReviewAssignment.objects.count() == 0
    reviewer = UserFactory(username="late_reviewer", roles=[Role.QA_REVIEWER])
    qa_queue_fill()
    assert list(ReviewAssignment.objects.values_list("reviewer", flat=True)) == [reviewer.pk]


def test_the_double_review_share_is_decided_by_the_conversation_id_and_gets_two_reviewers() -> None:
    for i in range(2):
        UserFactory(username=f"dbl{i}", roles=[Role.QA_REVIEWER])
    rule(RuleKind.ESCALATIONS, double_review_percent=50)
    chats = [conversation(owner=Owner.WAITING, escalated="legal") for _ in range(16)]
    qa_queue_fill()
    for chat in chats:
        item = ReviewItem.objects.get(conversation=chat)
        expected = 2 if bucket("double-review", chat.pk, buckets=100) < 50 else 1
        assert item.reviews_needed == expected
        reviewers = set(item.assignments.values_list("reviewer", flat=True))
        assert len(reviewers) == expected
    needed = dict(ReviewItem.objects.values_list("pk", "reviews_needed"))
    qa_queue_fill()
    assert dict(ReviewItem.objects.values_list("pk", "reviews_needed")) == needed
    assert 0 < sum(1 for n in needed.values() if n == 2) < 16
