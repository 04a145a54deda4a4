"""The customer chat end to end: the websocket on a real daphne, turns in a real Celery worker, Redis, PostgreSQL and
the demo company's system served by the same daphne (conftest.demo_company_served). The customer's side is
tests/chat_client.py; the protocol is docs/chat-protocol.md."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from conftest import mail_codes
from tests.chat_client import (
    REPLY_TIMEOUT,
    CustomerSocket,
    conversation_open,
    is_ack,
    is_agent_message,
    is_state,
)

pytestmark = pytest.mark.django_db(transaction=True)

MARA = "mara.lindqvist@example.com"  # C-1001: BL-10041 delivered, BL-10042 in transit, BL-10043 processing
PRIYA = "priya.castellano@example.com"  # C-1003: BL-10061 delivered damaged, the refund demo
PASSWORD = "correct horse battery staple"  # governance.tests.factories.UserFactory


def wait_until(condition: Callable[[], object], *, what: str, timeout: float = REPLY_TIMEOUT) -> object:
    """Poll ``condition`` until it returns something truthy; return it, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout:.0f} s")


def new_code(email: str, *, seen: int) -> str:
    """Wait for a code e-mailed to ``email`` after the ``seen`` codes already there; return it."""
    codes = wait_until(lambda: mail_codes(email)[seen:], what=f"no code was e-mailed to {email}")
    return codes[-1]  # type: ignore[index]


def verify(chat: CustomerSocket, request: str, email: str) -> dict:  # type: ignore[type-arg]
    """Ask ``request`` (which needs a verified customer), prove ``email`` with the e-mailed code; return the answer."""
    assert "email address" in chat.ask(request)["text"]
    seen = len(mail_codes(email))
    assert "6-digit code" in chat.ask(email)["text"]
    return chat.ask(new_code(email, seen=seen))


def test_a_knowledge_question_is_answered_with_its_citation(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_open(demo_company_served.http)
    with CustomerSocket(demo_company_served, conversation) as chat:
        assert (chat.hello["protocol"], chat.hello["conversation"], chat.hello["owner"]) == (
            1,
            conversation.id,
            "agent",
        )
        client_id = chat.say("How long does delivery to the UK take?")
        ack = chat.wait_for(is_ack(client_id), what="the ack")
        answer = chat.wait_for(is_agent_message(after_seq=ack["seq"]), what="the answer")

    assert ack["seq"] == 1 and answer["seq"] == 2
    assert "2–3 business days" in answer["text"]
    assert answer["citations"], answer
    assert answer["citations"][0]["url"].startswith("https://help.brewline.example/")
    assert answer["citations"][0]["title"]


def test_an_order_question_is_answered_from_the_demo_system_once_the_customer_proves_their_email(  # type: ignore[no-untyped-def]
    demo_company_served,
) -> None:
    from agent.models import Conversation
    from brewline.models import Order

    conversation = conversation_open(demo_company_served.http)
    with CustomerSocket(demo_company_served, conversation) as chat:
        answer = verify(chat, "Where is my order BL-10042?", MARA)

    order = Order.objects.get(number="BL-10042")
    assert order.shipping_status == "in_transit"
    assert answer["text"].startswith(f"Thanks, you're verified. Order BL-10042 is {order.status}.")
    assert "in transit" in answer["text"] and f"Tracking number: {order.tracking_number}" in answer["text"]
    stored = Conversation.objects.get(pk=conversation.id)
    assert (stored.verification, stored.customer_id, stored.customer_email) == (1, "C-1001", MARA)


def test_wrong_codes_hand_the_conversation_to_a_person_and_each_one_is_audited(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    from agent.identity import MAX_FAILED_VERIFICATIONS
    from agent.models import Conversation
    from governance.models import AuditRecord

    conversation = conversation_open(demo_company_served.http)
    with CustomerSocket(demo_company_served, conversation) as chat:
        assert "email address" in chat.ask("Where is my order BL-10042?")["text"]
        seen = len(mail_codes(MARA))
        chat.ask(MARA)
        right = new_code(MARA, seen=seen)
        wrong = f"{(int(right) + 1) % 10**6:06d}"
        replies = []
        while len(replies) < MAX_FAILED_VERIFICATIONS and "person" not in (replies[-1]["text"] if replies else ""):
            replies.append(chat.ask(wrong))
        chat.wait_for(is_state("waiting"), what="the hand-over to a person")

    # Whichever limit comes first hands over: in the demo company "going in circles" (3 turns without progress)
    # fires before the verification lock (MAX_FAILED_VERIFICATIONS wrong codes) would.
    assert "person" in replies[-1]["text"], replies
    assert all("didn't match" in reply["text"] for reply in replies[:-1]), replies
    stored = Conversation.objects.get(pk=conversation.id)
    assert (stored.owner, stored.verification, stored.customer_id) == ("waiting", 0, "")
    assert stored.failed_verifications == len(replies) and stored.ticket_id
    audit = AuditRecord.objects.filter(conversation_id=conversation.id)
    failed = audit.filter(decision__in=["verification_failed", "verification_locked"])
    assert failed.count() == len(replies)
    handed_over = audit.get(decision="owner:waiting")
    assert handed_over.reason == stored.escalation_reason != ""


@pytest.fixture
def refund_approver(demo_company_served):  # type: ignore[no-untyped-def]
    """A support manager: governance.demo gives refunds above the automated limit to managers and admins."""
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    return UserFactory(username="mo_manager", roles=[Role.SUPPORT_MANAGER])


def console_session(http: str, user) -> httpx.Client:  # type: ignore[no-untyped-def]
    """Log ``user`` in through the admin login page, as a browser would; return the client holding the session."""
    client = httpx.Client(base_url=http, timeout=30)
    client.get("/admin/login/").raise_for_status()
    response = client.post(
        "/admin/login/",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
            "next": "/console/",
        },
        headers={"Referer": f"{http}/admin/login/"},
    )
    assert response.status_code == 302 and response.headers["location"] == "/console/", response.text[:2000]
    return client


def console_post(client: httpx.Client, path: str) -> httpx.Response:
    return client.post(
        path, headers={"X-CSRFToken": client.cookies["csrftoken"], "Referer": f"{client.base_url}{path}"}
    )


def test_a_refund_over_the_ceiling_is_approved_in_the_console_executed_once_and_the_customer_is_told(  # type: ignore[no-untyped-def]
    demo_company_served, refund_approver
) -> None:
    from brewline.models import Refund
    from connectors.models import WriteReceipt
    from governance.models import ApprovalRequest, AuditRecord, EventType

    conversation = conversation_open(demo_company_served.http)
    with CustomerSocket(demo_company_served, conversation) as chat:
        # BL-10061 comes to 51.00: all of it is over the automated limit of 50 (governance.demo), and within what the
        # demo system lets us refund.
        asked = verify(chat, "I'd like a refund of £51 for BL-10061, it arrived damaged", PRIYA)
        assert "approve" in asked["text"], asked
        request = ApprovalRequest.objects.get(conversation_id=conversation.id)
        assert (request.status, request.arguments["order_id"], request.arguments["amount"]) == (
            "pending",
            "BL-10061",
            "51.00",
        )
        assert request.principal["customer_id"] == "C-1003"

        console = console_session(demo_company_served.http, refund_approver)
        response = console_post(console, f"/console/approvals/{request.pk}/approve/")
        assert response.status_code in (200, 302, 303), (response.status_code, response.text[:2000])
        assert "/login" not in response.headers.get("location", ""), response.headers
        told = chat.wait_for(is_agent_message(after_seq=asked["seq"]), what="the outcome of the approval")

        # Approving again changes nothing. A ping is answered by the same solo worker after everything queued
        # before it, so once the pong is here any second execution would have happened.
        console_post(console, f"/console/approvals/{request.pk}/approve/")
        chat.send({"type": "ping"})
        chat.wait_for(lambda frame: frame["type"] == "pong", what="the pong")

    request.refresh_from_db()
    assert (request.status, request.approver_id) == ("executed", refund_approver.pk), request.error
    assert "BL-10061 has been approved and issued" in told["text"], told
    refund = Refund.objects.get(order__number="BL-10061")
    assert refund.amount == Decimal("51.00") and refund.idempotency_key == str(request.idempotency_key)
    # One refund, under the request's key: the demo system keeps refund keys unique (brewline.models.Refund) and
    # honours them itself, so the gateway keeps no WriteReceipt of its own for this write.
    assert not WriteReceipt.objects.filter(idempotency_key=str(request.idempotency_key)).exists()
    executed = AuditRecord.objects.filter(subject_id=str(request.pk), event_type=EventType.ACTION_EXECUTED)
    assert executed.count() == 1
    agent_texts = [f["text"] for f in chat.frames if f["type"] == "message" and f["author"] == "agent"]
    assert [text for text in agent_texts if "approved" in text] == [told["text"]]


def test_asking_for_a_person_files_a_helpdesk_ticket_with_every_field_of_the_schema(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    from helpdesk.models import Ticket

    from agent.models import Conversation
    from connectors.helpdesk_schema import FIELD_NAMES, QUEUES

    conversation = conversation_open(demo_company_served.http)
    with CustomerSocket(demo_company_served, conversation) as chat:
        verify(chat, "Where is my order BL-10042?", MARA)
        knowledge = chat.ask("How long does delivery to the UK take?")
        assert knowledge["citations"], knowledge
        chat.send({"type": "request_human"})
        note = chat.wait_for(lambda f: f["type"] == "message" and f["author"] == "system", what="the system note")
        chat.wait_for(is_state("waiting"), what="the hand-over to a person")

    assert note["text"] == "You asked to talk to a person."
    stored = Conversation.objects.get(pk=conversation.id)
    assert stored.owner == "waiting"
    ticket = Ticket.objects.select_related("queue").get(pk=stored.ticket_id)
    values = {v.field.name: v.value or "" for v in ticket.ticketcustomfieldvalue_set.select_related("field")}
    assert values["customer_id"] == "C-1001" and values["customer_email"] == MARA
    assert values["channel"] == "web_chat" and values["severity"] == "normal"
    assert values["escalation_reason"] == "customer asked for a person"
    assert values["issue_category"] and values["issue_category"] != "unknown"
    assert values["product_area"]
    assert -1 <= Decimal(values["sentiment"]) <= 1 and 0 < Decimal(values["confidence"]) <= 1
    assert "order_status_lookup: allow" in values["attempted_resolution"]
    assert values["suggested_next_step"]
    assert knowledge["citations"][0]["title"] in values["related_sources"].splitlines()
    for said in ("Where is my order BL-10042?", MARA, "How long does delivery to the UK take?"):
        assert said in values["transcript"]
    assert values["conversation_id"] == conversation.id
    assert values["idempotency_key"] == f"{conversation.id}:escalation"
    # Nothing was changed and nothing is missing: the ticket says so rather than inventing either.
    assert values.get("fields_changed", "") == "" and values.get("missing_fields", "") == ""
    assert ticket.queue.slug in QUEUES and ticket.due_date and ticket.due_date > ticket.created
    # Steward read the order's status to answer: the ticket names it among the fields read.
    fields_read = values.get("fields_read", "").splitlines()
    assert any("status" in field for field in fields_read), f"fields_read={fields_read!r}"
    assert set(FIELD_NAMES) - {"fields_changed", "missing_fields"} <= {name for name, v in values.items() if v}


def test_a_reconnect_resumes_without_gaps_or_duplicates_and_a_resent_message_is_answered_once(  # type: ignore[no-untyped-def]
    demo_company_served,
) -> None:
    from agent.models import Message

    conversation = conversation_open(demo_company_served.http)
    first = CustomerSocket(demo_company_served, conversation)
    first.ask("How long does delivery to the UK take?")
    second_question = "Do you deliver to the EU?"
    second_id = first.say(second_question)
    first.wait_for(is_agent_message(after_seq=first.wait_for(is_ack(second_id))["seq"]), what="the second answer")
    dropped = first.wait_for(is_ack(first.say("How much does shipping cost?")), what="the third ack")
    first.close()  # while the worker is writing the answer
    wait_until(
        lambda: Message.objects.filter(conversation_id=conversation.id, seq=dropped["seq"] + 1).exists(),
        what="the answer to the message sent before the drop was not stored",
    )

    with CustomerSocket(demo_company_served, conversation) as again:
        assert again.hello["last_seq"] == dropped["seq"] + 1
        again.send({"type": "resume", "last_seq": max(first.message_seqs())})
        again.wait_for(is_agent_message(after_seq=dropped["seq"]), what="the missed answer")
        seen = first.message_seqs() + again.message_seqs()
        assert sorted(seen) == list(range(1, dropped["seq"] + 2)), seen  # 1..N, each once

        resent = again.wait_for(is_ack(again.say(second_question, client_id=second_id)), what="the resent ack")
        fresh = again.wait_for(is_ack(again.say("Thanks! How long does delivery to the UK take?")))
        again.wait_for(is_agent_message(after_seq=fresh["seq"]), what="the answer to the fresh message")

    assert resent["seq"] == 3  # its original seq
    assert fresh["seq"] == dropped["seq"] + 2  # the resend took no seq
    assert not [f for f in again.frames if f["type"] == "message" and f["client_id"] == second_id]
    stored = Message.objects.filter(conversation_id=conversation.id)
    assert stored.filter(client_id=second_id).count() == 1
    assert (stored.filter(author="customer").count(), stored.filter(author="agent").count()) == (4, 4)
    assert list(stored.order_by("seq").values_list("seq", flat=True)) == list(range(1, 9))


def test_a_frame_flood_is_rate_limited_then_closed_and_a_new_connection_still_works(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    from agent.consumers import BURST, CLOSE_FLOOD

    conversation = conversation_open(demo_company_served.http)
    flood = CustomerSocket(demo_company_served, conversation)
    try:
        for _ in range(40):
            flood.send({"type": "typing"})
    except ConnectionClosed:
        pass  # closed mid-flood: what we are testing
    close_code = flood.receive_until_closed()

    errors = [frame for frame in flood.frames if frame["type"] == "error"]
    assert close_code == CLOSE_FLOOD
    assert {error["code"] for error in errors} == {"rate_limited"}
    assert len(errors) == 3 * BURST  # a warning for each frame over the limit, then the 25th closes
    with CustomerSocket(demo_company_served, conversation) as again:
        assert "2–3 business days" in again.ask("How long does delivery to the UK take?")["text"]


def send_within_the_frame_limit(chat: CustomerSocket, text: str) -> dict:  # type: ignore[type-arg]
    """Send a message; when the connection's frame bucket is empty, resend it a second later (same client id).

    Returns the ack, or the error that is not about the connection's frame rate.
    """
    client_id = str(uuid.uuid4())
    while True:
        chat.say(text, client_id=client_id)
        frame = chat.wait_for(lambda f: is_ack(client_id)(f) or f["type"] == "error", what=f"an answer to {text!r}")
        if frame["type"] == "error" and "frames" in frame["message"]:
            time.sleep(1.1)  # the bucket refills one frame a second
            continue
        return frame


def test_a_message_is_acknowledged_to_its_connection_and_shown_on_the_conversations_others(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_open(demo_company_served.http)
    with (
        CustomerSocket(demo_company_served, conversation) as sender,
        CustomerSocket(demo_company_served, conversation) as other_tab,
    ):
        client_id = sender.say("How long does delivery to the UK take?")
        ack = sender.wait_for(is_ack(client_id), what="the ack")
        echo = other_tab.wait_for(
            lambda frame: frame.get("client_id") == client_id, what="the message on the other tab"
        )
        sender.wait_for(is_agent_message(after_seq=ack["seq"]), what="the answer")
        other_tab.wait_for(is_agent_message(after_seq=ack["seq"]), what="the answer on the other tab")

    assert (echo["type"], echo["seq"], echo["author"]) == ("message", ack["seq"], "customer")
    assert not [f for f in sender.frames if f["type"] == "message" and f.get("client_id") == client_id]


def test_a_conversation_takes_twenty_customer_messages_a_minute_across_its_connections(demo_company_served) -> None:  # type: ignore[no-untyped-def]
    from agent.messages import MESSAGES_PER_MINUTE
    from agent.models import Message

    conversation = conversation_open(demo_company_served.http)
    with (
        CustomerSocket(demo_company_served, conversation) as one,
        CustomerSocket(demo_company_served, conversation) as two,
    ):
        answers = [
            send_within_the_frame_limit((one, two)[n % 2], f"Question {n}: how long does delivery to the UK take?")
            for n in range(MESSAGES_PER_MINUTE + 1)
        ]
    stored = Message.objects.filter(conversation_id=conversation.id, author="customer")

    assert [answer["type"] for answer in answers] == ["ack"] * MESSAGES_PER_MINUTE + ["error"]
    assert answers[-1]["code"] == "rate_limited" and "conversation" in answers[-1]["message"]
    assert stored.count() == MESSAGES_PER_MINUTE
    wait_until(
        lambda: not stored.filter(handled=False).exists(), what="the worker did not finish the conversation's turns"
    )


def test_a_thumbs_up_on_an_agent_reply_is_recorded_and_anything_else_is_refused_with_a_reason(  # type: ignore[no-untyped-def]
    demo_company_served,
) -> None:
    from agent.models import TurnTrace
    from analytics.models import AnalyticsEvent, EventKind

    def feedback(frame: dict) -> dict:  # type: ignore[type-arg]
        chat.send({"type": "feedback", **frame})
        return chat.wait_for(lambda f: f["type"] in ("feedback_thanks", "error"), what=f"an answer to {frame}")

    conversation = conversation_open(demo_company_served.http)
    with CustomerSocket(demo_company_served, conversation) as chat:
        answer = chat.ask("How long does delivery to the UK take?")
        question_seq = answer["seq"] - 1

        thanks = feedback({"seq": answer["seq"], "helpful": True})
        again = feedback({"seq": answer["seq"], "helpful": True})  # the same rating: answered, not counted twice
        changed = feedback({"seq": answer["seq"], "helpful": False})
        refusals = [
            feedback({"seq": question_seq, "helpful": True}),  # the customer's own message
            feedback({"seq": answer["seq"] + 50, "helpful": True}),  # no such message
            feedback({"seq": answer["seq"], "helpful": "yes"}),
            feedback({"seq": str(answer["seq"]), "helpful": True}),
        ]

    assert thanks == again == {"type": "feedback_thanks", "seq": answer["seq"], "helpful": True}
    assert changed == {"type": "feedback_thanks", "seq": answer["seq"], "helpful": False}
    assert [(r["type"], r["code"]) for r in refusals] == [
        ("error", "not_agent_reply"),
        ("error", "unknown_seq"),
        ("error", "bad_frame"),
        ("error", "bad_frame"),
    ]
    assert all(r["message"] for r in refusals)
    events = AnalyticsEvent.objects.filter(conversation_id=conversation.id, kind=EventKind.REPLY_FEEDBACK)
    turn = TurnTrace.objects.get(conversation_id=conversation.id, reply__seq=answer["seq"])
    assert [(e.data["helpful"], e.data["changed"], e.data["turn"]) for e in events.order_by("pk")] == [
        (True, False, turn.pk),
        (False, True, turn.pk),
    ]
    assert {e.intent for e in events} == {turn.intent}
