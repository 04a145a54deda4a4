"""Fix requests (to the owner of the cited or missing source: e-mailed, listed to them in admin, closed when the
source is re-reviewed) and flags people put on conversations."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from agent.models import Owner
from governance.models import AuditRecord
from governance.tests.factories import UserFactory
from knowledge.models import Document
from knowledge.services import source_approve, source_create, source_mark_reviewed
from qa.exceptions import InvalidInput, NotPermitted
from qa.models import ConversationFlag, FixRequest, FixStatus
from qa.services import conversation_flag, fix_request_create, fix_requests_close_reviewed
from qa.tests.helpers import conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def kate():  # type: ignore[no-untyped-def]
    """A knowledge owner with no QA role."""
    return UserFactory(username="kate_knowledge", email="kate@brewline.example")


@pytest.fixture
def source(kate):  # type: ignore[no-untyped-def]
    fallback = UserFactory(username="fran_fallback", email="fran@brewline.example")
    return source_create(actor=None, owner=kate, name="Shipping help", kind="help_article", fallback_owner=fallback)


def test_a_fix_request_goes_to_the_source_owner_and_is_mailed_after_commit(  # type: ignore[no-untyped-def]
    qa_reviewer, source, django_capture_on_commit_callbacks
) -> None:
    chat = conversation()
    document = Document.objects.create(source=source, external_id="shipping.md", title="Shipping times")
    with django_capture_on_commit_callbacks(execute=True):
        fix = fix_request_create(
            actor=qa_reviewer, conversation=chat, source=source, document=document, note="UK times are out of date"
        )
    assert (fix.owner.username, fix.status, fix.conversation_id) == ("kate_knowledge", FixStatus.OPEN, chat.pk)
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {"kate@brewline.example", "fran@brewline.example"}
    assert "UK times are out of date" in mail.outbox[0].body and "Shipping help" in mail.outbox[0].subject
    assert AuditRecord.objects.filter(decision="qa.fix_requested", subject_id=str(fix.pk)).exists()


def test_an_inactive_owner_hands_the_request_to_the_fallback_owner(qa_reviewer, source, kate) -> None:  # type: ignore[no-untyped-def]
    kate.is_active = False
    kate.save(update_fields=["is_active"])
    fix = fix_request_create(actor=qa_reviewer, source=source, note="stale")
    assert fix.owner.username == "fran_fallback"


def test_a_missing_source_needs_a_topic_and_someone_to_write_it(qa_reviewer, kate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as refused:
        fix_request_create(actor=qa_reviewer, note="nothing on Mars")
    assert "source" in refused.value.errors
    with pytest.raises(InvalidInput):
        fix_request_create(actor=qa_reviewer, note="nothing on Mars", missing_topic="Shipping to Mars")
    fix = fix_request_create(actor=qa_reviewer, note="nothing on Mars", missing_topic="Shipping to Mars", owner=kate)
    assert (fix.source, fix.owner, fix.missing_topic) == (None, kate, "Shipping to Mars")


def test_only_qa_staff_ask_for_fixes(support_agent, source) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted):
        fix_request_create(actor=support_agent, source=source, note="x")
    assert FixRequest.objects.count() == 0


def test_the_request_closes_once_the_source_is_reviewed_after_it(qa_reviewer, source, kate) -> None:  # type: ignore[no-untyped-def]
    fix = fix_request_create(actor=qa_reviewer, source=source, note="UK times are out of date")
    other = fix_request_create(actor=qa_reviewer, missing_topic="Mars", owner=kate, note="none")
    assert fix_requests_close_reviewed() == 0
    source_approve(actor=kate, source=source)  # approving counts as a review
    assert fix_requests_close_reviewed() == 1
    fix.refresh_from_db()
    other.refresh_from_db()
    assert fix.status == FixStatus.CLOSED and fix.closed_at is not None
    assert other.status == FixStatus.OPEN
    later = fix_request_create(actor=qa_reviewer, source=source, note="again")
    assert fix_requests_close_reviewed() == 0  # the review came before this request
    source_mark_reviewed(actor=kate, source=source)
    assert fix_requests_close_reviewed() == 1
    later.refresh_from_db()
    assert later.status == FixStatus.CLOSED


def test_an_owner_sees_only_their_own_requests_in_admin_and_closes_them(qa_reviewer, source, kate) -> None:  # type: ignore[no-untyped-def]
    mine = fix_request_create(actor=qa_reviewer, source=source, note="mine")
    someone = UserFactory(username="someone_else")
    theirs = fix_request_create(actor=qa_reviewer, missing_topic="Mars", owner=someone, note="not kate's")
    client = Client()
    client.force_login(kate)
    page = client.get("/admin/qa/fixrequest/")
    assert page.status_code == 200
    assert [row.pk for row in page.context["cl"].result_list] == [mine.pk]
    assert client.get(f"/admin/qa/fixrequest/{theirs.pk}/change/").status_code in (302, 403)
    response = client.post(
        "/admin/qa/fixrequest/", {"action": "close_requests", "_selected_action": [mine.pk, theirs.pk]}
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (FixStatus.CLOSED, FixStatus.OPEN)


def test_a_person_without_fix_requests_does_not_see_them_in_admin(support_agent, qa_reviewer, source) -> None:  # type: ignore[no-untyped-def]
    fix_request_create(actor=qa_reviewer, source=source, note="x")
    client = Client()
    client.force_login(support_agent)
    assert client.get("/admin/qa/fixrequest/").status_code == 403


def test_a_support_agent_flags_a_conversation_once_from_the_console(support_agent, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    chat = conversation(owner=Owner.WAITING, escalated="legal")
    client = Client()
    client.force_login(support_agent)
    page = client.get(f"/console/{chat.pk}/")
    assert b"Flag for QA" in page.content
    response = client.post(f"/qa/flag/{chat.pk}/", {"note": "the refund answer looked wrong"})
    assert response.status_code == 303 and response["Location"] == f"/console/{chat.pk}/"
    client.post(f"/qa/flag/{chat.pk}/", {"note": "again"})
    flag = ConversationFlag.objects.get()
    assert (flag.flagged_by, flag.note) == (support_agent, "the refund answer looked wrong")
    assert AuditRecord.objects.filter(decision="qa.flagged").count() == 1
    assert client.get(f"/qa/flag/{chat.pk}/").status_code == 405


def test_flagging_is_refused_to_outsiders_and_test_conversations(outsider, support_agent) -> None:  # type: ignore[no-untyped-def]
    chat = conversation()
    client = Client()
    client.force_login(outsider)
    assert client.post(f"/qa/flag/{chat.pk}/").status_code == 403
    with pytest.raises(InvalidInput):
        conversation_flag(conversation=conversation(is_test=True), actor=support_agent)
    assert Client().post(f"/qa/flag/{chat.pk}/").status_code == 302  # anonymous: to the login
    assert ConversationFlag.objects.count() == 0


def test_flagging_an_unknown_conversation_is_not_found(support_agent) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(support_agent)
    assert client.post("/qa/flag/00000000-0000-4000-8000-000000000000/").status_code == 404


def test_the_admin_login_page_still_renders_for_a_visitor() -> None:
    assert Client().get("/admin/login/?next=/qa/").status_code == 200
