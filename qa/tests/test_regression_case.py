"""From a failed review to a regression case: the conversation's customer turns become the script with the
reviewer's expectations, through the service and through the page; and to a fix request through its page."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from governance.models import AuditRecord
from governance.roles import Verification
from knowledge.services import source_create
from qa.exceptions import InvalidInput, NotPermitted
from qa.models import FixRequest
from qa.services import qa_review_submit, regression_case_from_review
from qa.tests.helpers import LABELS_OK, conversation, criterion, item_for
from suites.models import RegressionSuite

pytestmark = pytest.mark.django_db


@pytest.fixture
def suite():  # type: ignore[no-untyped-def]
    return RegressionSuite.objects.create(name="demo")


@pytest.fixture
def failed_review(qa_reviewer):  # type: ignore[no-untyped-def]
    grounded = criterion("Grounded", auto_fail=True)
    chat = conversation(says=["Where is my parcel?", "It is order BL-10041"])
    chat.verification, chat.customer_email = Verification.EMAIL_VERIFIED, "jo@example.com"
    chat.save(update_fields=["verification", "customer_email"])
    item = item_for(chat, qa_reviewer)
    return qa_review_submit(item=item, reviewer=qa_reviewer, results={grounded.pk: "fail"}, labels=LABELS_OK)


def test_the_customer_turns_become_the_script_with_the_reviewers_expectations(  # type: ignore[no-untyped-def]
    qa_reviewer, failed_review, suite
) -> None:
    case = regression_case_from_review(
        review=failed_review,
        suite=suite,
        actor=qa_reviewer,
        expectations=[[{"type": "must_ask_to_verify"}], [{"type": "must_not_escalate"}]],
    )
    assert [turn["say"] for turn in case.turns] == ["Where is my parcel?", "It is order BL-10041"]
    assert case.turns[1]["expect"] == [{"type": "must_not_escalate"}]
    assert (case.identity, case.identity_email, case.intent) == ("email_verified", "jo@example.com", "order_status")
    assert case.source_conversation_id == str(failed_review.item.conversation_id)
    assert AuditRecord.objects.filter(decision="qa.regression_case", subject_id=str(failed_review.pk)).exists()


def test_a_case_without_expectations_or_with_a_bad_one_is_refused(qa_reviewer, failed_review, suite) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        regression_case_from_review(review=failed_review, suite=suite, actor=qa_reviewer, expectations=[[], []])
    with pytest.raises(InvalidInput) as refused:
        regression_case_from_review(
            review=failed_review, suite=suite, actor=qa_reviewer, expectations=[[{"type": "must_fly"}]]
        )
    assert "unknown expectation type" in str(refused.value)
    assert suite.cases.count() == 0


def test_only_people_who_may_add_cases_create_them(support_agent, failed_review, suite) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted):
        regression_case_from_review(
            review=failed_review, suite=suite, actor=support_agent, expectations=[[{"type": "must_not_escalate"}]]
        )


def test_the_regression_case_page_builds_the_expectations_from_the_form(qa_reviewer, failed_review, suite) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(qa_reviewer)
    url = f"/qa/reviews/{failed_review.pk}/regression-case/"
    page = client.get(url)
    assert page.status_code == 200 and "It is order BL-10041" in page.content.decode()
    bad = client.post(url, {"suite": suite.pk, "t0-extra": "[not json"})
    assert bad.status_code == 400 and "Not JSON" in bad.content.decode()
    response = client.post(
        url,
        {
            "suite": suite.pk,
            "name": "parcel-verify",
            "t0-verify": "on",
            "t1-escalate": "must_escalate",
            "t1-reason": "legal",
            "t1-cite": "Shipping help, Returns",
            "t1-no_tool": "*",
        },
    )
    assert response.status_code == 303
    case = suite.cases.get(name="parcel-verify")
    assert case.turns[0]["expect"] == [{"type": "must_ask_to_verify"}]
    assert case.turns[1]["expect"] == [
        {"type": "must_escalate", "reason": "legal"},
        {"type": "must_cite", "any_of": ["Shipping help", "Returns"]},
        {"type": "must_not_call_tool"},
    ]


def test_the_fix_request_page_sends_the_request_to_the_cited_sources_owner(  # type: ignore[no-untyped-def]
    qa_reviewer, failed_review, django_capture_on_commit_callbacks
) -> None:
    from governance.tests.factories import UserFactory

    kate = UserFactory(username="kate_knowledge", email="kate@brewline.example")
    source = source_create(actor=None, owner=kate, name="Shipping help", kind="help_article")
    chat = failed_review.item.conversation
    chat.messages.filter(author="agent").update(citations=[{"source": source.name, "source_id": source.pk}])
    client = Client()
    client.force_login(qa_reviewer)
    url = f"/qa/reviews/{failed_review.pk}/fix-request/"
    page = client.get(url)
    assert "Shipping help (owner kate_knowledge)" in page.content.decode()
    assert client.post(url, {"note": "", "source": source.pk}).status_code == 400
    assert client.post(url, {"note": "x"}).status_code == 400  # missing source without a topic or owner
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"source": source.pk, "note": "UK delivery times changed"})
    assert response.status_code == 303
    fix = FixRequest.objects.get()
    assert (fix.owner, fix.review, fix.conversation) == (kate, failed_review, chat)
    assert mail.outbox[0].to == ["kate@brewline.example"]


def test_someone_elses_review_is_not_theirs_to_follow_up(failed_review) -> None:  # type: ignore[no-untyped-def]
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    other = UserFactory(username="other_reviewer", roles=[Role.QA_REVIEWER])
    client = Client()
    client.force_login(other)
    assert client.get(f"/qa/reviews/{failed_review.pk}/fix-request/").status_code == 403
    assert client.get(f"/qa/reviews/{failed_review.pk}/regression-case/").status_code == 403
    assert client.get("/qa/reviews/999999/fix-request/").status_code == 404
