"""qa_review_submit: the score, auto-fail, criteria that do not apply, labels, who may submit, finalising an item,
blind double review; and qa_item_settle."""

from __future__ import annotations

import pytest

from agent.models import Owner, TurnTrace
from governance.models import AuditRecord
from governance.roles import Role
from governance.tests.factories import UserFactory
from qa.exceptions import InvalidInput, ItemNotOpen, NotPermitted
from qa.models import AppliesTo, ItemStatus, Review
from qa.selectors import visible_reviews
from qa.services import qa_item_settle, qa_review_submit
from qa.tests.helpers import LABELS_OK, all_pass, conversation, criterion, item_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def scorecard():  # type: ignore[no-untyped-def]
    return [
        criterion("Grounded", weight=3, auto_fail=True),
        criterion("Tone", weight=1),
        criterion("Escalated right", weight=2, applies_to=AppliesTo.ESCALATED),
    ]


def test_a_review_scores_the_weighted_share_and_finishes_a_single_review_item(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    grounded, tone, escalated_right = scorecard
    chat = conversation()
    item = item_for(chat, qa_reviewer)
    trace = TurnTrace.objects.get(conversation=chat)
    review = qa_review_submit(
        item=item,
        reviewer=qa_reviewer,
        results={grounded.pk: {"result": "pass"}, tone.pk: {"result": "fail", "comment": "curt"}},
        labels=LABELS_OK,
        annotations={str(trace.pk): "too short", "": ""},
        comment="fine otherwise",
    )
    assert review.score == 75.0 and review.passed is False  # 3 of 4 weighted points, under the pass mark of 80
    results = dict(review.scores.values_list("criterion__name", "result"))
    assert results == {"Grounded": "pass", "Tone": "fail", "Escalated right": "na"}  # not escalated: n/a
    assert list(review.annotations.values_list("note", flat=True)) == ["too short"]
    item.refresh_from_db()
    assert (item.status, item.final_review_id) == (ItemStatus.DONE, review.pk)
    assert item.finalised_at is not None
    record = AuditRecord.objects.get(decision="qa.reviewed")
    assert record.event_type == "qa.reviewed"
    assert record.conversation_id == str(chat.pk) and record.data["score"] == 75.0


def test_a_criterion_that_does_not_apply_is_na_whatever_was_sent(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    grounded, tone, escalated_right = scorecard
    item = item_for(conversation(), qa_reviewer)
    review = qa_review_submit(
        item=item,
        reviewer=qa_reviewer,
        results={**all_pass(grounded, tone), str(escalated_right.pk): {"result": "fail"}},
        labels=LABELS_OK,
    )
    assert (review.score, review.passed) == (100.0, True)
    assert review.scores.get(criterion=escalated_right).result == "na"


def test_an_auto_fail_criterion_fails_the_review(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    grounded, tone, escalated_right = scorecard
    item = item_for(conversation(owner=Owner.WAITING, escalated="legal"), qa_reviewer)
    review = qa_review_submit(
        item=item,
        reviewer=qa_reviewer,
        results={grounded.pk: "fail", tone.pk: "pass", escalated_right.pk: "pass"},
        labels={**LABELS_OK, "escalation_needed": True},
    )
    assert review.score == 50.0 and review.passed is False and review.was_escalated is True


def test_missing_answers_and_labels_are_refused_and_nothing_is_stored(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    grounded, tone, _ = scorecard
    item = item_for(conversation(), qa_reviewer)
    with pytest.raises(InvalidInput) as refused:
        qa_review_submit(
            item=item,
            reviewer=qa_reviewer,
            results={grounded.pk: "pass", tone.pk: "maybe", 424242: "pass"},
            labels={"escalation_needed": False, "policy_breach": True, "resolved": None},
            annotations={"99999999": "not a turn here"},
        )
    assert set(refused.value.errors) == {
        f"criterion-{tone.pk}",
        "criterion-424242",
        "resolved",
        "breached_policy",
        "annotations",
    }
    assert Review.objects.count() == 0
    item.refresh_from_db()
    assert item.status == ItemStatus.OPEN


def test_a_policy_breach_names_the_policy(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    item = item_for(conversation(), qa_reviewer)
    review = qa_review_submit(
        item=item,
        reviewer=qa_reviewer,
        results=all_pass(*scorecard[:2]),
        labels={**LABELS_OK, "policy_breach": True, "breached_policy": "refund_order limits"},
    )
    assert (review.policy_breach, review.breached_policy) == (True, "refund_order limits")


def test_a_reviewer_cannot_submit_an_item_assigned_to_someone_else(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    other = UserFactory(username="other_reviewer", roles=[Role.QA_REVIEWER])
    item = item_for(conversation(), other)
    with pytest.raises(NotPermitted):
        qa_review_submit(item=item, reviewer=qa_reviewer, results=all_pass(*scorecard), labels=LABELS_OK)
    assert Review.objects.count() == 0


def test_a_manager_may_review_any_item_but_not_twice(support_manager, qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    item = item_for(conversation(), qa_reviewer)
    qa_review_submit(item=item, reviewer=support_manager, results=all_pass(*scorecard), labels=LABELS_OK)
    with pytest.raises(ItemNotOpen):
        qa_review_submit(item=item, reviewer=qa_reviewer, results=all_pass(*scorecard), labels=LABELS_OK)


def test_double_review_is_blind_until_both_are_in_and_agreement_finishes_the_item(qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    second = UserFactory(username="second_reviewer", roles=[Role.QA_REVIEWER])
    item = item_for(conversation(), qa_reviewer, second)
    first = qa_review_submit(item=item, reviewer=qa_reviewer, results=all_pass(*scorecard), labels=LABELS_OK)
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_REVIEW and item.final_review is None
    assert visible_reviews(item, second) == []  # blind: the second reviewer sees nothing of the first
    assert visible_reviews(item, qa_reviewer) == [first]
    qa_review_submit(item=item, reviewer=second, results=all_pass(*scorecard), labels=LABELS_OK)
    item.refresh_from_db()
    assert (item.status, item.final_review_id) == (ItemStatus.DONE, first.pk)
    assert len(visible_reviews(item, second)) == 2


def test_a_disagreement_on_a_label_disputes_the_item_until_a_manager_settles_it(
    qa_reviewer, support_manager, scorecard
) -> None:  # type: ignore[no-untyped-def]
    second = UserFactory(username="second_reviewer", roles=[Role.QA_REVIEWER])
    item = item_for(conversation(), qa_reviewer, second)
    qa_review_submit(item=item, reviewer=qa_reviewer, results=all_pass(*scorecard), labels=LABELS_OK)
    standing = qa_review_submit(
        item=item, reviewer=second, results=all_pass(*scorecard), labels={**LABELS_OK, "escalation_needed": True}
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.DISPUTED and item.final_review is None
    with pytest.raises(NotPermitted):
        qa_item_settle(item=item, review=standing, actor=qa_reviewer, note="mine")
    qa_item_settle(item=item, review=standing, actor=support_manager, note="the customer asked twice")
    item.refresh_from_db()
    assert (item.status, item.final_review_id, item.settled_by_id) == (
        ItemStatus.SETTLED,
        standing.pk,
        support_manager.pk,
    )
    assert AuditRecord.objects.filter(decision="qa.settled", subject_id=str(item.pk)).exists()
    with pytest.raises(ItemNotOpen):
        qa_item_settle(item=item, review=standing, actor=support_manager)


def test_a_manager_who_reviewed_the_item_cannot_settle_it(support_manager, qa_reviewer, scorecard) -> None:  # type: ignore[no-untyped-def]
    item = item_for(conversation(), qa_reviewer, reviews_needed=2)
    qa_review_submit(item=item, reviewer=qa_reviewer, results=all_pass(*scorecard), labels=LABELS_OK)
    mine = qa_review_submit(
        item=item, reviewer=support_manager, results=all_pass(*scorecard), labels={**LABELS_OK, "resolved": False}
    )
    with pytest.raises(NotPermitted):
        qa_item_settle(item=item, review=mine, actor=support_manager)
