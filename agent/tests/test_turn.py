"""The turn loop end to end in-process: real database, real embeddings, the demo company's system over real HTTP,
the embedded helpdesk. (The websocket/worker path is covered in tests/test_end_to_end_services.py.)"""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from django.core import mail
from django.db import connection

from agent import turn
from agent.demo import seed_intents
from agent.messages import conversation_start, message_store_customer
from agent.models import Conversation, Message, Owner, TurnTrace
from agent.turn import run_turn
from brewline.demo import seed_brewline
from connectors.demo import seed_connector_rows
from connectors.helpdesk_schema import ensure_helpdesk_schema, seed_helpdesk_connector
from connectors.models import Connector
from governance.demo import seed_governance
from governance.models import ApprovalRequest, AuditRecord, EventType
from knowledge.demo import seed_knowledge

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_company(live_server, settings) -> None:  # type: ignore[no-untyped-def]
    """The demo company: governance, intents, a small knowledge base, its system served by the live server."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    seed_governance()
    seed_intents()
    ensure_helpdesk_schema()
    seed_helpdesk_connector()
    _, token = seed_connector_rows()
    seed_brewline(token, customers=12, orders=40)
    Connector.objects.filter(key__in=["demo_crm", "demo_commerce"]).update(
        base_url=f"{live_server.url}/brewline-api/v1"
    )
    seed_knowledge(only=["shipping"])


class Chat:
    def __init__(self) -> None:
        self.conversation = conversation_start()

    def say(self, text: str) -> Message:
        message_store_customer(conversation_id=self.conversation.id, client_id=uuid.uuid4(), text=text)
        run_turn(str(self.conversation.id))
        self.conversation.refresh_from_db()
        return Message.objects.filter(conversation=self.conversation, author="agent").order_by("-seq").first()


def test_a_knowledge_question_gets_a_quoted_answer_with_its_citation(demo_company) -> None:  # type: ignore[no-untyped-def]
    reply = Chat().say("How long does delivery to the UK take?")
    assert "2–3 business days" in reply.text
    assert reply.citations and reply.citations[0]["url"].startswith("https://help.brewline.example/")
    trace = TurnTrace.objects.get(reply=reply)
    assert trace.status == "done" and trace.retrieved and trace.timings["total_ms"] > 0
    assert AuditRecord.objects.filter(event_type=EventType.CONVERSATION, decision="replied").exists()


def test_a_turn_answers_from_the_vector_the_web_process_embedded_ahead(demo_company) -> None:  # type: ignore[no-untyped-def]
    from agent import query_vectors
    from knowledge.embeddings import embed_query

    chat, client_id = Chat(), uuid.uuid4()
    question = "How long does delivery to the UK take?"
    message_store_customer(conversation_id=chat.conversation.id, client_id=client_id, text=question)
    # A vector that is not the question's shows that the turn routes and searches with the one it was left.
    elsewhere = embed_query("How do I return an item?").astype("float32").tobytes()
    query_vectors._client().rpush(query_vectors._key(chat.conversation.id, client_id), elsewhere)

    assert run_turn(str(chat.conversation.id), embedded_ahead=str(client_id)) == "answered"
    reply = Message.objects.get(conversation=chat.conversation, author="agent")
    assert "2–3 business days" not in reply.text  # the answer followed the vector, not the question's own
    assert query_vectors.take(chat.conversation.id, client_id, wait=0.01) is None  # taken
    assert TurnTrace.objects.get(reply=reply).timings["vector_ahead"] == 1

    # No vector within the wait (the web process died, say): the turn embeds the question itself.
    later = uuid.uuid4()
    message_store_customer(conversation_id=chat.conversation.id, client_id=later, text=question)
    assert run_turn(str(chat.conversation.id), embedded_ahead=str(later)) == "answered"
    reply = Message.objects.filter(author="agent").order_by("-seq").first()
    assert "2–3 business days" in reply.text
    timings = TurnTrace.objects.get(reply=reply).timings
    assert timings["vector_ahead"] == 0 and timings["vector_wait_ms"] >= 200  # waited query_vectors.WAIT, then embedded


def test_a_knowledge_turn_sends_a_fixed_number_of_queries_and_round_trips(  # type: ignore[no-untyped-def]
    demo_company, django_assert_num_queries, monkeypatch
) -> None:
    Chat().say("How long does delivery to the UK take?")  # the intent table and the term statistics are cached
    chat = Chat()
    message_store_customer(
        conversation_id=chat.conversation.id, client_id=uuid.uuid4(), text="How long does delivery to the UK take?"
    )
    alone: list[str] = []  # statements sent by themselves, not in a pipeline (config.sql)
    flushes: list[str] = []  # each sends a pipeline's queued statements and a Sync: one round trip

    def note_alone(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if connection.connection._pipeline is None:
            alone.append(sql)
        return execute(sql, params, many, context)

    for method in ("sync", "__exit__"):
        original = getattr(psycopg.Pipeline, method)
        monkeypatch.setattr(
            psycopg.Pipeline, method, lambda self, *a, _o=original, _m=method: (flushes.append(_m), _o(self, *a))[1]
        )

    # Open (claim returning the conversation, the pass's messages, intents fingerprint, escalation rules); search
    # (BEGIN, prepare, dense, full text, COMMIT, hits), the document's chunks; finish (BEGIN, handled, reply with
    # its seq, trace, the claim released, audit lock, tail; audit record, analytics, COMMIT).
    with django_assert_num_queries(22), connection.execute_wrapper(note_alone):
        assert run_turn(str(chat.conversation.id)) == "answered"
    # Round trips: the open, the finish's two (its COMMIT in the second); 5 statements on their own; the search's
    # BEGIN and COMMIT. 10 in all, none after the customer has the reply; the claim went with it.
    assert (len(alone), flushes) == (5, ["__exit__", "sync", "__exit__"])
    chat.conversation.refresh_from_db()
    assert chat.conversation.turn_claimed_by == "" and chat.conversation.turn_claimed_at is None


def test_a_message_stored_during_a_pass_is_answered_in_the_next_one(demo_company, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    first, _ = message_store_customer(
        conversation_id=chat.conversation.id, client_id=uuid.uuid4(), text="How long does delivery to the UK take?"
    )
    decide = turn._decide

    def decide_while_a_message_arrives(conversation, pending, *args):  # type: ignore[no-untyped-def]
        if pending[0].pk == first.pk:  # its own task would find the claim taken: this run must answer it
            message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="thanks!")
        return decide(conversation, pending, *args)

    monkeypatch.setattr(turn, "_decide", decide_while_a_message_arrives)

    assert run_turn(str(chat.conversation.id)) == "answered"
    assert not Message.objects.filter(conversation=chat.conversation, author="customer", handled=False).exists()
    assert Message.objects.filter(conversation=chat.conversation, author="agent").count() == 2
    assert Conversation.objects.get(pk=chat.conversation.pk).turn_claimed_by == ""


def test_a_message_stored_after_the_reply_finds_the_claim_released(demo_company, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    message_store_customer(
        conversation_id=chat.conversation.id, client_id=uuid.uuid4(), text="How long does delivery to the UK take?"
    )
    finish, later = turn.finish, []

    def finish_then_a_message_arrives(*args, **kwargs):  # type: ignore[no-untyped-def]
        done = finish(*args, **kwargs)
        if not later:
            later.append(
                message_store_customer(conversation_id=chat.conversation.id, client_id=uuid.uuid4(), text="ok")[0]
            )
        return done

    monkeypatch.setattr(turn, "finish", finish_then_a_message_arrives)
    assert run_turn(str(chat.conversation.id)) == "answered"
    # The first run left with its reply: the message after it is its own task's, which finds the claim free.
    assert Message.objects.get(pk=later[0].pk).handled is False
    assert Conversation.objects.get(pk=chat.conversation.pk).turn_claimed_by == ""
    assert run_turn(str(chat.conversation.id)) == "answered"
    assert Message.objects.get(pk=later[0].pk).handled is True
    assert Message.objects.filter(conversation=chat.conversation, author="agent").count() == 2


def test_an_order_question_verifies_the_customer_then_answers_from_their_own_orders(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    assert "email address" in chat.say("Where is my order BL-10042?").text
    assert "6-digit code" in chat.say("mara.lindqvist@example.com").text
    code = re.search(r"\d{6}", mail.outbox[-1].subject).group(0)
    answer = chat.say(code).text
    assert answer.startswith("Thanks, you're verified. Order BL-10042 is shipped.")
    assert "Tracking number:" in answer
    assert (chat.conversation.verification, chat.conversation.customer_id) == (1, "C-1001")
    # Someone else's order is "not found", never shown.
    assert "couldn't find that on your account" in chat.say("Where is my order BL-10061?").text


def test_a_refund_above_the_ceiling_becomes_an_approval_request(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    chat.say("Where is my order BL-10041?")
    chat.say("mara.lindqvist@example.com")
    chat.say(re.search(r"\d{6}", mail.outbox[-1].subject).group(0))
    reply = chat.say("Please refund £80 for order BL-10041, it arrived broken")
    assert "approve" in reply.text
    request = ApprovalRequest.objects.get()
    assert request.arguments["order_id"] == "BL-10041" and request.arguments["amount"] == "80.00"
    assert request.conversation_id == str(chat.conversation.id) and request.status == "pending"


def test_questions_the_request_needs_and_verification_are_not_counted_as_going_in_circles(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    assert "Which order" in chat.say("where is my order?").text
    assert "email address" in chat.say("BL-10042").text
    assert "6-digit code" in chat.say("mara.lindqvist@example.com").text
    answer = chat.say(re.search(r"\d{6}", mail.outbox[-1].subject).group(0)).text
    assert "Order BL-10042 is shipped" in answer
    assert chat.conversation.owner == Owner.AGENT and chat.conversation.unresolved_turns == 0


def test_asked_why_the_email_is_needed_the_agent_explains_and_still_waits_for_it(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    assert "email address" in chat.say("my order BL-10042 hasn't arrived").text
    why = chat.say("why do you need that?")
    assert "confirm it's you" in why.text and [c["value"] for c in why.choices] == ["Talk to a person"]
    assert "6-digit code" in chat.say("mara.lindqvist@example.com").text
    answer = chat.say(re.search(r"\d{6}", mail.outbox[-1].subject).group(0)).text
    assert "Order BL-10042 is shipped" in answer  # the original request goes on after the detour


def test_nobody_is_asked_to_approve_a_refund_on_someone_elses_order(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    chat.say("Where is my order BL-10041?")
    chat.say("mara.lindqvist@example.com")
    chat.say(re.search(r"\d{6}", mail.outbox[-1].subject).group(0))
    reply = chat.say("Please refund £80 for order BL-10061, it arrived broken")  # Priya's order, not Mara's
    assert "couldn't find that on your account" in reply.text
    assert not ApprovalRequest.objects.exists()
    trace = TurnTrace.objects.get(reply=reply)
    assert trace.tool_calls[-1]["decision"] == "deny"


def test_asking_for_a_person_creates_a_complete_ticket_and_the_ai_goes_quiet(demo_company) -> None:  # type: ignore[no-untyped-def]
    from helpdesk.models import Ticket

    chat = Chat()
    chat.say("How long does delivery to the UK take?")
    reply = chat.say("I want to talk to a human")
    assert "passing you to a person" in reply.text
    assert chat.conversation.owner == Owner.WAITING and chat.conversation.ticket_id
    ticket = Ticket.objects.get(pk=chat.conversation.ticket_id)
    values = {v.field.name: v.value for v in ticket.ticketcustomfieldvalue_set.select_related("field")}
    assert values["escalation_reason"] == "customer asked for a person"
    assert "How long does delivery to the UK take?" in values.get("transcript", "") + ticket.description
    # The AI stays silent while a person owns the conversation.
    before = Message.objects.filter(conversation=chat.conversation, author="agent").count()
    chat.say("hello?")
    assert Message.objects.filter(conversation=chat.conversation, author="agent").count() == before


def test_a_redelivered_turn_answers_nothing_twice(demo_company) -> None:  # type: ignore[no-untyped-def]
    chat = Chat()
    chat.say("How long does delivery to the UK take?")
    assert run_turn(str(chat.conversation.id)) == "nothing to do"
    assert Message.objects.filter(conversation=chat.conversation, author="agent").count() == 1
