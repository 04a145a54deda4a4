"""The handoff console: who may use it, each ownership move and its audit, replies, approvals, live events; and the
listener that tells the customer what became of an approval."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agent.approval_outcomes import approval_outcome_listener, approval_outcome_tell_customer
from agent.console.selectors import Controls, controls_for
from agent.messages import conversation_start, message_store_customer, message_store_reply
from agent.models import Author, Conversation, Message, Owner, TurnTrace
from agent.services import conversation_escalate, conversation_take_over
from governance.approvals import APPROVAL_OUTCOME_LISTENERS, approval_requests_expire
from governance.models import ApprovalRequest, ApprovalStatus, AuditRecord, EventType
from governance.tests.factories import ActionPolicyFactory, ApprovalRequestFactory, UserFactory


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _flash(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]] if response.context else []


def _waiting(reason: str = "customer asked for a person", ticket_id: str = "17", text: str = "Where is my parcel?"):  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text=text)
    return conversation_escalate(conversation_id=conversation.pk, reason=reason, ticket_id=ticket_id)


def _ownership_audits(conversation: Conversation) -> list[AuditRecord]:
    return list(
        AuditRecord.objects.filter(conversation_id=str(conversation.pk), decision__startswith="owner:").order_by("seq")
    )


# --- Controls (pure) -----------------------------------------------------------------------------------------------


def test_the_controls_follow_the_state_and_who_has_the_conversation() -> None:
    assert controls_for(owner="agent", assignee_id=None, user_id=1, may_act=True) == Controls(
        take_over=True, close=True
    )
    assert controls_for(owner="waiting", assignee_id=None, user_id=1, may_act=True) == Controls(
        take_over=True, close=True
    )
    assert controls_for(owner="human", assignee_id=1, user_id=1, may_act=True) == Controls(
        hand_back=True, close=True, send=True
    )
    assert controls_for(owner="human", assignee_id=2, user_id=1, may_act=True) == Controls(close=True)
    assert controls_for(owner="closed", assignee_id=None, user_id=1, may_act=True) == Controls()
    assert controls_for(owner="waiting", assignee_id=None, user_id=1, may_act=False) == Controls()


# --- Access --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_visitor_who_is_not_logged_in_is_sent_to_the_admin_login() -> None:
    conversation = _waiting()
    for url in ("/console/", f"/console/{conversation.pk}/", f"/console/{conversation.pk}/events.json"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    response = Client().post(f"/console/{conversation.pk}/take-over/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert Conversation.objects.get(pk=conversation.pk).owner == Owner.WAITING


@pytest.mark.django_db
def test_staff_without_a_support_role_and_support_users_who_are_not_staff_are_refused(outsider, support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    assert _client(outsider).get("/console/").status_code == 403
    assert _client(outsider).post(f"/console/{conversation.pk}/take-over/").status_code == 403
    support_agent.is_staff = False
    support_agent.save(update_fields=["is_staff"])
    assert _client(support_agent).get(f"/console/{conversation.pk}/").status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).owner == Owner.WAITING


@pytest.mark.django_db
def test_a_qa_reviewer_reads_conversations_but_cannot_move_them(qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    client = _client(qa_reviewer)
    page = client.get(f"/console/{conversation.pk}/")
    assert page.status_code == 200
    assert b"Take over" not in page.content
    assert client.post(f"/console/{conversation.pk}/take-over/").status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).owner == Owner.WAITING


@pytest.mark.django_db
def test_unknown_ids_are_not_found(support_manager) -> None:  # type: ignore[no-untyped-def]
    client = _client(support_manager)
    missing = uuid.uuid4()
    assert client.get(f"/console/{missing}/").status_code == 404
    assert client.get(f"/console/{missing}/events.json").status_code == 404
    assert client.get("/console/not-a-uuid/").status_code == 404
    for move in ("take-over", "hand-back", "close", "send"):
        assert client.post(f"/console/{missing}/{move}/", {"text": "hi"}).status_code == 404
    assert client.post("/console/approvals/999999/approve/").status_code == 404
    assert client.post("/console/approvals/999999/reject/").status_code == 404


@pytest.mark.django_db
def test_a_get_on_a_post_endpoint_is_refused_and_changes_nothing(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    client = _client(support_agent)
    for move in ("take-over", "hand-back", "close", "send"):
        response = client.get(f"/console/{conversation.pk}/{move}/")
        assert response.status_code == 405 and response["Allow"] == "POST"
    assert client.get("/console/approvals/1/approve/").status_code == 405
    assert Conversation.objects.get(pk=conversation.pk).owner == Owner.WAITING


@pytest.mark.django_db
def test_a_post_without_a_csrf_token_is_refused(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    client = Client(enforce_csrf_checks=True)
    client.force_login(support_agent)
    assert client.post(f"/console/{conversation.pk}/take-over/").status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).owner == Owner.WAITING


# --- The list ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_regression_suites_test_conversation_never_reaches_the_console(support_agent) -> None:  # type: ignore[no-untyped-def]
    live, test = _waiting(ticket_id="51"), _waiting(ticket_id="52", text="a scripted customer")
    Conversation.objects.filter(pk=test.pk).update(is_test=True)
    with_ai = conversation_start()
    Conversation.objects.filter(pk=with_ai.pk).update(is_test=True)
    client = _client(support_agent)

    queues = client.get("/console/").context["queues"]

    assert [c.pk for c in queues.waiting] == [live.pk]
    assert with_ai.pk not in [c.pk for c in queues.with_ai]
    assert client.get(f"/console/{test.pk}/").status_code == 404
    assert client.post(f"/console/{test.pk}/take-over/").status_code == 404
    assert Conversation.objects.get(pk=test.pk).owner == Owner.WAITING


@pytest.mark.django_db
def test_the_list_shows_who_waits_oldest_first_who_is_with_a_person_and_recent_ai_conversations(  # type: ignore[no-untyped-def]
    support_agent, support_manager, django_assert_max_num_queries
) -> None:
    first = _waiting(reason="refund above policy", ticket_id="41", text="I was charged twice")
    second = _waiting(reason="customer asked for a person", ticket_id="42", text="Hello??")
    # The first one's customer wrote again: it still waited longest (its updated_at is now the newest).
    message_store_customer(conversation_id=first.pk, client_id=uuid.uuid4(), text="Anyone there?")
    taken = _waiting(ticket_id="43")
    conversation_take_over(conversation_id=taken.pk, user=support_manager)
    with_ai = conversation_start()
    message_store_customer(conversation_id=with_ai.pk, client_id=uuid.uuid4(), text="How long does delivery take?")

    client = _client(support_agent)
    client.get("/console/")  # warm the permission cache, so the count below is the page's own
    with django_assert_max_num_queries(12):
        response = client.get("/console/")
    assert response.status_code == 200
    queues = response.context["queues"]
    assert [c.pk for c in queues.waiting] == [first.pk, second.pk]
    assert queues.waiting[0].last_customer_text == "Anyone there?"
    assert queues.waiting[0].waiting_since <= queues.waiting[1].waiting_since
    assert [c.pk for c in queues.with_person] == [taken.pk]
    assert [c.pk for c in queues.with_ai] == [with_ai.pk]
    html = response.content.decode()
    assert "refund above policy" in html and ">41<" in html and "mo_manager" in html
    assert "How long does delivery take?" in html


@pytest.mark.django_db
def test_the_list_query_count_does_not_grow_with_the_number_of_conversations(  # type: ignore[no-untyped-def]
    support_agent, django_assert_num_queries
) -> None:
    client = _client(support_agent)
    _waiting()
    client.get("/console/")
    with CaptureQueriesContext(connection) as few:
        client.get("/console/")
    for _ in range(5):
        _waiting()
        conversation_start()
    with django_assert_num_queries(len(few.captured_queries)):
        client.get("/console/")


# --- Moves and their audit -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_taking_over_a_waiting_conversation_gives_it_to_you_and_is_audited(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    response = _client(support_agent).post(f"/console/{conversation.pk}/take-over/", follow=True)
    assert response.redirect_chain == [(f"/console/{conversation.pk}/", 303)]
    assert "You have the conversation" in " ".join(_flash(response))
    conversation.refresh_from_db()
    assert (conversation.owner, conversation.assignee) == (Owner.HUMAN, support_agent)
    audit = _ownership_audits(conversation)[-1]
    assert (audit.decision, audit.actor_user_id, audit.actor_kind) == ("owner:human", support_agent.pk, "user")
    assert Message.objects.filter(conversation=conversation, author=Author.SYSTEM, text__contains="joined").exists()
    html = response.content.decode()
    assert "Hand back to the AI" in html and 'name="text"' in html and "Take over" not in html


@pytest.mark.django_db
def test_taking_over_a_conversation_someone_else_has_says_why_instead_of_failing(  # type: ignore[no-untyped-def]
    support_agent, support_manager
) -> None:
    conversation = _waiting()
    conversation_take_over(conversation_id=conversation.pk, user=support_manager)
    response = _client(support_agent).post(f"/console/{conversation.pk}/take-over/", follow=True)
    assert response.status_code == 200
    assert "Not taken over: The conversation is a person; it cannot move to a person." in _flash(response)
    conversation.refresh_from_db()
    assert conversation.assignee == support_manager


@pytest.mark.django_db
def test_only_the_person_who_has_the_conversation_hands_it_back(support_agent, support_manager) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    conversation_take_over(conversation_id=conversation.pk, user=support_agent)

    refused = _client(support_manager).post(f"/console/{conversation.pk}/hand-back/", follow=True)
    assert any(m.startswith("Not handed back: Only the person") for m in _flash(refused))
    assert Conversation.objects.get(pk=conversation.pk).owner == Owner.HUMAN

    done = _client(support_agent).post(f"/console/{conversation.pk}/hand-back/", follow=True)
    assert "Handed back" in " ".join(_flash(done))
    conversation.refresh_from_db()
    assert (conversation.owner, conversation.assignee) == (Owner.AGENT, None)
    audit = _ownership_audits(conversation)[-1]
    assert (audit.decision, audit.actor_user_id) == ("owner:agent", support_agent.pk)
    assert Message.objects.filter(conversation=conversation, text="The assistant is back with you.").exists()


@pytest.mark.django_db
def test_closing_is_audited_and_a_closed_conversation_offers_no_controls(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    client = _client(support_agent)
    response = client.post(f"/console/{conversation.pk}/close/", follow=True)
    assert "Closed." in " ".join(_flash(response))
    conversation.refresh_from_db()
    assert conversation.owner == Owner.CLOSED and conversation.closed_at is not None
    audit = _ownership_audits(conversation)[-1]
    assert (audit.decision, audit.reason, audit.actor_user_id) == (
        "owner:closed",
        "closed by sam_agent",
        support_agent.pk,
    )
    assert b"Close conversation" not in response.content and b"Take over" not in response.content
    again = client.post(f"/console/{conversation.pk}/close/", follow=True)
    assert any(m.startswith("Not closed: The conversation is closed") for m in _flash(again))


# --- Replies -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_assignee_replies_and_the_reply_is_stored_as_theirs(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    client = _client(support_agent)
    client.post(f"/console/{conversation.pk}/take-over/")
    response = client.post(f"/console/{conversation.pk}/send/", {"text": "  Hi, I'm Sam. Let me look.  "})
    assert response.status_code == 303 and response["Location"] == f"/console/{conversation.pk}/#reply"
    reply = Message.objects.filter(conversation=conversation, author=Author.HUMAN).get()
    assert (reply.text, reply.author_user) == ("Hi, I'm Sam. Let me look.", support_agent)


@pytest.mark.django_db
def test_nobody_but_the_assignee_can_reply(support_agent, support_manager) -> None:  # type: ignore[no-untyped-def]
    waiting = _waiting()
    refused = _client(support_agent).post(f"/console/{waiting.pk}/send/", {"text": "hello"}, follow=True)
    assert "Not sent: Take the conversation over before writing to the customer." in _flash(refused)
    conversation_take_over(conversation_id=waiting.pk, user=support_manager)
    refused = _client(support_agent).post(f"/console/{waiting.pk}/send/", {"text": "hello"}, follow=True)
    assert any(m.startswith("Not sent:") for m in _flash(refused))
    assert not Message.objects.filter(conversation=waiting, author=Author.HUMAN).exists()


@pytest.mark.django_db
def test_an_empty_or_too_long_reply_is_refused_with_a_reason(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    client = _client(support_agent)
    client.post(f"/console/{conversation.pk}/take-over/")
    empty = client.post(f"/console/{conversation.pk}/send/", {"text": "   "}, follow=True)
    assert "Write a reply first (1–4000 characters)." in _flash(empty)
    long = client.post(f"/console/{conversation.pk}/send/", {"text": "x" * 4001}, follow=True)
    assert "A reply can be at most 4000 characters (this one has 4001)." in _flash(long)
    assert client.post(f"/console/{conversation.pk}/send/", {"text": "x" * 4000}).status_code == 303
    assert Message.objects.filter(conversation=conversation, author=Author.HUMAN).count() == 1


# --- The conversation page -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_conversation_page_shows_the_trace_the_context_and_the_ticket_with_customer_text_escaped(  # type: ignore[no-untyped-def]
    support_agent,
) -> None:
    conversation = conversation_start()
    Conversation.objects.filter(pk=conversation.pk).update(
        customer_id="C-1001",
        customer_name="Mara Lindqvist",
        customer_email="mara.lindqvist@example.com",
        verification=1,
        context={
            "account_tier": "vip",
            "known_slots": {"order_id": "BL-10041"},
            "pending": {"intent": "refund_request", "slot": "amount"},
        },
    )
    message_store_customer(
        conversation_id=conversation.pk, client_id=uuid.uuid4(), text="<script>alert(1)</script> refund?"
    )
    reply = message_store_reply(
        conversation_id=conversation.pk,
        author=Author.AGENT,
        text="Here is our refund policy.",
        citations=[
            {"title": "Returns and refunds", "url": "https://help.brewline.example/refunds", "section": "Damaged"},
            {"title": "Sneaky", "url": "javascript:alert(1)"},
        ],
        choices=[{"label": "Talk to a person", "value": "Talk to a person"}],
    )
    TurnTrace.objects.create(
        conversation=conversation,
        status=TurnTrace.Status.DONE,
        message_seqs=[1],
        intent="refund_request",
        intent_score=0.8123,
        retrieved=[{"chunk_id": 7, "document_title": "Returns and refunds", "score": 0.7712}],
        tool_calls=[
            {
                "action": "refund",
                "arguments": {"order_id": "BL-10041"},
                "decision": "needs_approval",
                "reason": "above the automated ceiling 50",
            }
        ],
        escalation=[
            {
                "rule": "VIP account",
                "trigger": "vip",
                "fired": True,
                "detail": "tier vip",
                "priority": 2,
                "queue": "vip",
            }
        ],
        confidence=0.66,
        responder="embedded",
        prompt_version="embedded-1:cfg-3",
        timings={"total_ms": 41.5, "responder_ms": 30.1},
        stage=3,
        capabilities=[
            {"capability": "ticket_draft", "stage": 3, "allowed": True, "reason": ""},
            {"capability": "low_risk_actions", "stage": 4, "allowed": False, "reason": "from rollout stage 4"},
        ],
        reply=reply,
    )
    conversation_escalate(conversation_id=conversation.pk, reason="VIP account", ticket_id="12")

    html = _client(support_agent).get(f"/console/{conversation.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; refund?" in html and "<script>alert(1)" not in html
    assert '<a href="https://help.brewline.example/refunds"' in html and 'href="javascript:' not in html
    assert "Talk to a person" in html
    for shown in (
        "refund_request",
        "0.8123",
        "Returns and refunds",
        "0.7712",
        "needs_approval",
        "above the automated ceiling 50",
        "VIP account",
        "embedded-1:cfg-3",
        "total 41.5 ms",
        "0.660",
        "ticket_draft",
        "low_risk_actions</span> (from rollout stage 4)",
    ):
        assert shown in html, shown
    for shown in (
        "Mara Lindqvist",
        "mara.lindqvist@example.com",
        "C-1001",
        "Email verified",
        "vip",
        "BL-10041",
        "amount",
    ):
        assert shown in html, shown
    assert 'href="/helpdesk/tickets/12/"' in html
    assert "Escalated because:</strong> VIP account" in html


# --- Live events ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_give_the_state_and_only_the_messages_after_the_seq_asked_for(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = _waiting()
    message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="Second")
    client = _client(support_agent)
    everything = client.get(f"/console/{conversation.pk}/events.json").json()
    assert (everything["owner"], everything["assignee"]) == ("waiting", "")
    assert [m["seq"] for m in everything["messages"]] == [1, 2]
    client.post(f"/console/{conversation.pk}/take-over/")
    later = client.get(f"/console/{conversation.pk}/events.json?after=2").json()
    assert (later["owner"], later["assignee_is_you"]) == ("human", True)
    assert [(m["seq"], m["author"]) for m in later["messages"]] == [(3, "system")]
    assert later["approvals"] == []
    for bad in ("x", "-1"):
        response = client.get(f"/console/{conversation.pk}/events.json?after={bad}")
        assert response.status_code == 400 and "after" in response.json()["error"]


# --- Approvals and telling the customer ---------------------------------------------------------------------------


def _refund_request(conversation: Conversation, **fields):  # type: ignore[no-untyped-def]
    policy = ActionPolicyFactory(action="refund", label="Refund an order", tier="approval_required")
    return ApprovalRequestFactory(
        action=policy,
        conversation_id=str(conversation.pk),
        arguments={"order_id": "BL-10061", "amount": "80", "currency": "GBP"},
        **fields,
    )


def _agent_messages(conversation: Conversation) -> list[str]:
    return list(Message.objects.filter(conversation=conversation, author=Author.AGENT).values_list("text", flat=True))


@pytest.mark.django_db
def test_the_outcome_listener_is_registered_once() -> None:
    assert APPROVAL_OUTCOME_LISTENERS.count(approval_outcome_listener) == 1


@pytest.mark.django_db
def test_a_rejection_from_the_console_tells_the_customer_with_the_note(  # type: ignore[no-untyped-def]
    support_manager, django_capture_on_commit_callbacks
) -> None:
    conversation = conversation_start()
    request = _refund_request(conversation)
    client = _client(support_manager)
    page = client.get(f"/console/{conversation.pk}/").content.decode()
    assert f'action="/console/approvals/{request.pk}/reject/"' in page and "BL-10061" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/console/approvals/{request.pk}/reject/", {"note": "the parcel was delivered intact"}, follow=True
        )
    assert response.redirect_chain == [(f"/console/{conversation.pk}/", 303)]
    request.refresh_from_db()
    assert (request.status, request.approver, request.decision_note) == (
        ApprovalStatus.REJECTED,
        support_manager,
        "the parcel was delivered intact",
    )
    assert _agent_messages(conversation) == [
        "Sorry — your refund of £80.00 for order BL-10061 was not approved: the parcel was delivered intact."
    ]
    told = AuditRecord.objects.get(decision="approval_told")
    assert (told.subject_id, told.conversation_id) == (str(request.pk), str(conversation.pk))
    again = client.post(f"/console/approvals/{request.pk}/approve/", follow=True)
    assert any("no longer waiting for a decision (rejected)" in m for m in _flash(again))


@pytest.mark.django_db
def test_a_support_agent_who_is_not_an_approver_gets_a_reason_not_a_form(support_agent) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    request = _refund_request(conversation)
    client = _client(support_agent)
    page = client.get(f"/console/{conversation.pk}/").content.decode()
    assert f"/console/approvals/{request.pk}/approve/" not in page and "You cannot decide this one." in page
    response = client.post(f"/console/approvals/{request.pk}/approve/", follow=True)
    assert any(
        m.startswith("Refund an order #") and "You may not decide refund requests" in m for m in _flash(response)
    )
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


@pytest.mark.django_db
def test_deciding_goes_back_to_a_safe_next_only(support_manager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    first, second = _refund_request(conversation), _refund_request(conversation)
    client = _client(support_manager)
    with django_capture_on_commit_callbacks(execute=True):
        inside = client.post(f"/console/approvals/{first.pk}/reject/", {"next": "/console/"})
        outside = client.post(f"/console/approvals/{second.pk}/reject/", {"next": "https://evil.example/"})
    assert inside["Location"] == "/console/"
    assert outside["Location"] == f"/console/{conversation.pk}/"


@pytest.mark.django_db
def test_the_listener_tells_the_customer_once_however_often_it_is_called(support_manager) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    request = _refund_request(conversation, status=ApprovalStatus.REJECTED, approver=support_manager)
    first = approval_outcome_tell_customer(request)
    second = approval_outcome_tell_customer(request)
    approval_outcome_listener(request)
    assert first is not None and second is None
    assert _agent_messages(conversation) == [
        "Sorry — your refund of £80.00 for order BL-10061 was not approved. If you have questions, a person from our "
        "team can help."
    ]
    assert first.choices == [{"label": "Talk to a person", "value": "Talk to a person"}]
    assert AuditRecord.objects.filter(decision="approval_told").count() == 1


@pytest.mark.django_db
def test_the_listener_says_nothing_for_a_request_without_a_conversation_or_still_pending(support_manager) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    assert approval_outcome_tell_customer(_refund_request(conversation)) is None  # pending
    orphan = _refund_request(conversation, status=ApprovalStatus.REJECTED, approver=support_manager)
    orphan.conversation_id = "not-a-conversation"
    assert approval_outcome_tell_customer(orphan) is None
    assert _agent_messages(conversation) == []


# --- With the real worker: execution, failure, expiry -----------------------------------------------------------------


def _until(check, explain, timeout: float = 40.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for the worker: {explain()}")


class Chat:
    """A customer talking to the AI in-process (run_turn), against the demo company served by daphne."""

    def __init__(self) -> None:
        self.conversation = conversation_start()

    def say(self, text: str) -> str:
        from agent.turn import run_turn

        message_store_customer(conversation_id=self.conversation.pk, client_id=uuid.uuid4(), text=text)
        run_turn(str(self.conversation.pk))
        return Message.objects.filter(conversation=self.conversation, author="agent").order_by("-seq").first().text


def _real_refund_request(*, email: str, order_id: str, amount: str) -> tuple[Chat, ApprovalRequest]:
    """A verified customer asks the AI for a refund above the automated limit: a real approval request."""
    chat = Chat()
    chat.say(f"Where is my order {order_id}?")
    chat.say(email)
    chat.say(re.search(r"\d{6}", mail.outbox[-1].subject).group(0))
    assert "approve" in chat.say(f"Please refund {amount} for order {order_id}, it arrived broken")
    return chat, ApprovalRequest.objects.get(conversation_id=str(chat.conversation.pk))


def _approve_in_the_console(request: ApprovalRequest) -> Client:
    client = _client(UserFactory(username="mo_manager", roles=["support_manager"]))
    page = client.get(f"/console/{request.conversation_id}/").content.decode()
    assert f'action="/console/approvals/{request.pk}/approve/"' in page
    response = client.post(f"/console/approvals/{request.pk}/approve/", {"note": "photo checked"}, follow=True)
    assert any(m.startswith(f"Approved refund an order #{request.pk}") for m in _flash(response))
    return client


def _status(request: ApprovalRequest, status: str) -> ApprovalRequest:
    return _until(
        lambda: ApprovalRequest.objects.filter(pk=request.pk, status=status).first(),
        lambda: ApprovalRequest.objects.values("status", "error").get(pk=request.pk),
    )


def _handed_to_a_person(conversation: Conversation) -> Conversation:
    return _until(
        lambda: Conversation.objects.filter(pk=conversation.pk, owner=Owner.WAITING).exclude(ticket_id="").first(),
        lambda: Conversation.objects.values("owner", "ticket_id", "escalation_reason").get(pk=conversation.pk),
    )


def test_an_approval_from_the_console_is_executed_once_and_the_customer_is_told(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    chat, request = _real_refund_request(email="priya.castellano@example.com", order_id="BL-10061", amount="$51")
    client = _approve_in_the_console(request)
    _status(request, ApprovalStatus.EXECUTED)
    told = _until(
        lambda: Message.objects.filter(conversation=chat.conversation, text__contains="has been approved").first(),
        lambda: _agent_messages(chat.conversation),
    )
    assert told.text.startswith("Good news — your refund of $51.00 for order BL-10061 has been approved and issued.")

    # A second approval (a double click, another manager) is refused, and a repeated outcome posts nothing more.
    again = client.post(f"/console/approvals/{request.pk}/approve/", follow=True)
    assert any("no longer waiting for a decision (executed)" in m for m in _flash(again))
    approval_outcome_listener(ApprovalRequest.objects.get(pk=request.pk))
    assert AuditRecord.objects.filter(event_type=EventType.ACTION_EXECUTED, subject_id=str(request.pk)).count() == 1
    assert Message.objects.filter(conversation=chat.conversation, text__contains="has been approved").count() == 1
    assert AuditRecord.objects.filter(decision="approval_told", subject_id=str(request.pk)).count() == 1
    chat.conversation.refresh_from_db()
    assert chat.conversation.owner == Owner.AGENT  # nothing to follow up


def test_an_approved_refund_the_shop_refuses_tells_the_customer_and_goes_to_a_person(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    # BL-10041 has 44.00 left to refund: the demo shop refuses 80.00 (a permanent failure, not retried).
    chat, request = _real_refund_request(email="mara.lindqvist@example.com", order_id="BL-10041", amount="£80")
    _approve_in_the_console(request)
    failed = _status(request, ApprovalStatus.FAILED)
    assert "more than the 44.00 GBP left to refund" in failed.error
    conversation = _handed_to_a_person(chat.conversation)
    # The arguments carry no currency and there is no result to read it from: the amount goes without a sign.
    assert _agent_messages(conversation)[-1] == (
        "Sorry — your refund of 80.00 for order BL-10041 was approved but could not be completed. A person from our "
        "team will follow up here."
    )
    assert conversation.escalation_reason.startswith(f"Refund an order (approval #{request.pk}) execution failed")


def test_an_expired_request_tells_the_customer_and_hands_the_conversation_to_a_person(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    request = _refund_request(conversation, expires_at=timezone.now() - timedelta(minutes=1))
    assert approval_requests_expire() == 1
    assert _agent_messages(conversation) == [
        "Sorry — your refund of £80.00 for order BL-10061 could not be reviewed in time. A person from our team will "
        "follow up here."
    ]
    waiting = _handed_to_a_person(conversation)
    assert waiting.escalation_reason == f"Refund an order (approval #{request.pk}) expired"
