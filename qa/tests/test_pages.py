"""The QA pages: who may open them, the queue (its query count pinned), the review screen and its form, the
calibration page and settling from it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agent.models import Owner, TurnTrace
from governance.roles import Role
from governance.tests.factories import UserFactory
from qa.models import ItemStatus, Review, RuleKind
from qa.services import qa_queue_fill, qa_review_submit
from qa.tests.helpers import LABELS_OK, all_pass, conversation, criterion, item_for, rule

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _review_post(criteria, **labels) -> dict[str, str]:  # type: ignore[no-untyped-def]
    data = {f"result-{c.pk}": "pass" for c in criteria}
    values = {**LABELS_OK, **labels}
    data.update({f"label-{k}": "yes" if v else "no" for k, v in values.items() if isinstance(v, bool)})
    return data


def test_anonymous_visitors_are_sent_to_the_login(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    item = item_for(conversation(), qa_reviewer)
    for url in ("/qa/", f"/qa/items/{item.pk}/", "/qa/calibration/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=")
    assert Client().post(f"/qa/items/{item.pk}/review/").status_code == 302


def test_support_agents_admins_and_outsiders_are_refused(support_agent, support_admin, outsider, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    item = item_for(conversation(), qa_reviewer)
    for user in (support_agent, support_admin, outsider):
        client = _client(user)
        assert client.get("/qa/").status_code == 403
        assert client.get(f"/qa/items/{item.pk}/").status_code == 403
        assert client.post(f"/qa/items/{item.pk}/review/").status_code == 403


def test_the_calibration_page_is_for_managers(qa_reviewer, support_manager) -> None:  # type: ignore[no-untyped-def]
    assert _client(qa_reviewer).get("/qa/calibration/").status_code == 403
    assert _client(support_manager).get("/qa/calibration/").status_code == 200


def test_a_reviewer_sees_their_queue_with_why_each_was_sampled(qa_reviewer, support_manager) -> None:  # type: ignore[no-untyped-def]
    rule(RuleKind.ESCALATIONS, name="All escalations")
    chat = conversation(owner=Owner.WAITING, escalated="customer asked for a person")
    qa_queue_fill()
    page = _client(qa_reviewer).get("/qa/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "All escalations" in text and "customer asked for a person" in text and str(chat.pk)[:8] in text
    other = UserFactory(username="other_reviewer", roles=[Role.QA_REVIEWER])
    assert _client(other).get("/qa/").context["items"] == []
    assert len(_client(support_manager).get("/qa/").context["items"]) == 1


def test_the_queue_costs_the_same_queries_for_one_item_or_many(support_manager) -> None:  # type: ignore[no-untyped-def]
    reviewers = [UserFactory(username=f"rev{i}", roles=[Role.QA_REVIEWER]) for i in range(2)]
    rule(RuleKind.ESCALATIONS)
    rule(RuleKind.NEGATIVE_CSAT)
    conversation(owner=Owner.WAITING, escalated="legal", csat=1)
    qa_queue_fill()
    client = _client(support_manager)
    client.get("/qa/")  # warm the session and the content types
    with CaptureQueriesContext(connection) as one:
        client.get("/qa/")
    for _ in range(6):
        conversation(owner=Owner.WAITING, escalated="legal", csat=1)
    qa_queue_fill()
    with CaptureQueriesContext(connection) as many:
        response = client.get("/qa/")
    assert len(response.context["items"]) == 7
    assert len(many) == len(one) <= 12
    reviewer_client = _client(reviewers[0])
    reviewer_client.get("/qa/")
    with CaptureQueriesContext(connection) as mine:
        reviewer_client.get("/qa/")
    assert len(mine) <= 12


def test_the_review_screen_lays_out_the_trace_and_the_scorecard(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    criterion("Grounded", auto_fail=True)
    chat = conversation(
        tool_calls=[{"action": "refund_order", "decision": "deny", "reason": "over the hard limit", "arguments": {}}],
        pii_vault={"[EMAIL_1]": "jo@example.com"},
        citations=[{"source": "Shipping help", "source_id": 1, "title": "Shipping times", "section": "UK"}],
    )
    item = item_for(chat, qa_reviewer)
    page = _client(qa_reviewer).get(f"/qa/items/{item.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    for shown in (
        "Where is my parcel?",
        "order_status",
        "refund_order",
        "over the hard limit",
        "Shipping times",
        "[EMAIL_1]",
        "Low confidence",
        "total 41.5 ms",
        "Grounded",
        "auto-fail",
        "Ctrl",
    ):
        assert shown in text, shown
    assert "jo@example.com" not in text  # placeholders, never the values behind them


def test_a_reviewer_cannot_open_an_item_assigned_to_someone_else(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    other = UserFactory(username="other_reviewer", roles=[Role.QA_REVIEWER])
    item = item_for(conversation(), other)
    assert _client(qa_reviewer).get(f"/qa/items/{item.pk}/").status_code == 403
    assert _client(qa_reviewer).get("/qa/items/999999/").status_code == 404


def test_submitting_the_form_records_the_review_and_errors_keep_what_was_typed(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    grounded, tone = criterion("Grounded"), criterion("Tone")
    chat = conversation()
    item = item_for(chat, qa_reviewer)
    trace = TurnTrace.objects.get(conversation=chat)
    client = _client(qa_reviewer)
    incomplete = {f"result-{grounded.pk}": "pass", f"comment-{grounded.pk}": "spot on", f"note-{trace.pk}": "short"}
    response = client.post(f"/qa/items/{item.pk}/review/", incomplete)
    assert response.status_code == 400
    text = response.content.decode()
    assert "“Tone”: choose pass, fail or n/a." in text and "spot on" in text and ">short</textarea>" in text
    assert Review.objects.count() == 0
    response = client.post(f"/qa/items/{item.pk}/review/", {**_review_post([grounded, tone]), f"note-{trace.pk}": "ok"})
    assert response.status_code == 303 and response["Location"] == "/qa/"
    review = Review.objects.get()
    assert (review.passed, review.score, review.annotations.get().note) == (True, 100.0, "ok")
    again = client.post(f"/qa/items/{item.pk}/review/", _review_post([grounded, tone]), follow=True)
    assert "Not submitted" in again.content.decode() and Review.objects.count() == 1
    assert client.get(f"/qa/items/{item.pk}/review/").status_code == 405


def test_after_a_failed_review_the_screen_offers_the_two_next_steps(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    grounded = criterion("Grounded", auto_fail=True)
    item = item_for(conversation(), qa_reviewer)
    data = {**_review_post([grounded]), f"result-{grounded.pk}": "fail"}
    response = _client(qa_reviewer).post(f"/qa/items/{item.pk}/review/", data, follow=True)
    text = response.content.decode()
    review = Review.objects.get()
    assert f"/qa/reviews/{review.pk}/regression-case/" in text and f"/qa/reviews/{review.pk}/fix-request/" in text


def test_the_calibration_page_shows_kappa_and_a_manager_settles_a_disagreement(qa_reviewer, support_manager) -> None:  # type: ignore[no-untyped-def]
    grounded = criterion("Grounded")
    second = UserFactory(username="second_reviewer", roles=[Role.QA_REVIEWER])
    agreed = item_for(conversation(), qa_reviewer, second)
    disputed = item_for(conversation(), qa_reviewer, second)
    for reviewer in (qa_reviewer, second):
        qa_review_submit(item=agreed, reviewer=reviewer, results=all_pass(grounded), labels=LABELS_OK)
    qa_review_submit(item=disputed, reviewer=qa_reviewer, results=all_pass(grounded), labels=LABELS_OK)
    standing = qa_review_submit(item=disputed, reviewer=second, results={grounded.pk: "fail"}, labels=LABELS_OK)
    client = _client(support_manager)
    page = client.get("/qa/calibration/")
    data = page.context["data"]
    assert data.items == 2 and [item.pk for item in data.disputed] == [disputed.pk]
    grounded_row = next(row for row in data.criteria if row.name == "Grounded")
    assert (grounded_row.agreement.n, grounded_row.agreement.kappa) == (2, 0.0)
    assert "Disagreements to settle" in page.content.decode()
    assert client.post(f"/qa/items/{disputed.pk}/settle/", {"review": "nope"}).status_code == 303
    disputed.refresh_from_db()
    assert disputed.status == ItemStatus.DISPUTED
    response = client.post(f"/qa/items/{disputed.pk}/settle/", {"review": standing.pk, "note": "grounding failed"})
    assert response.status_code == 303 and response["Location"] == "/qa/calibration/"
    disputed.refresh_from_db()
    assert (disputed.status, disputed.final_review_id) == (ItemStatus.SETTLED, standing.pk)
    assert _client(qa_reviewer).post(f"/qa/items/{agreed.pk}/settle/", {"review": standing.pk}).status_code == 403
