"""The OpenAI-compatible responder through the real turn loop: real database, real embeddings and help centre, the demo
company's system over real HTTP, the real channel layer on Redis, and the real ``openai`` client talking to a scripted
Chat Completions server on 127.0.0.1 (agent/tests/chat_completions_server.py). Only the model is scripted."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import mail

from agent.demo import seed_intents, seed_prompt_versions
from agent.messages import conversation_start, group_name, message_store_customer
from agent.models import Conversation, Message, Owner, TurnTrace
from agent.prompts import prompt_version_create
from agent.responders.tool_schema import ACTION_ARGUMENTS, TURN_TOOLS, InvalidToolCall, Tool, tool_call_parse
from agent.tests.chat_completions_server import (
    ChatCompletionsServer,
    Scripted,
    error,
    raw,
    stalled,
    text,
    tool_call,
)
from agent.turn import run_turn
from brewline.demo import seed_brewline
from connectors.demo import seed_connector_rows
from connectors.helpdesk_schema import ensure_helpdesk_schema, seed_helpdesk_connector
from connectors.models import Connector
from governance.demo import seed_governance
from governance.pii import PlaceholderVault
from knowledge.demo import seed_knowledge

pytestmark = pytest.mark.django_db(transaction=True)

MARA = "mara.lindqvist@example.com"  # C-1001 in the demo CRM, owner of BL-10042


@pytest.fixture
def governed_company(settings) -> None:  # type: ignore[no-untyped-def]
    """What every turn needs: governance (policies, escalation rules), the prompt, the helpdesk for handovers."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    seed_governance()
    seed_prompt_versions()
    ensure_helpdesk_schema()
    seed_helpdesk_connector()


@pytest.fixture
def demo_company(governed_company, live_server) -> None:  # type: ignore[no-untyped-def]
    """The demo company as agent/tests/test_turn.py has it: its system over real HTTP and its help centre."""
    seed_intents()
    _, token = seed_connector_rows()
    seed_brewline(token, customers=12, orders=40)
    Connector.objects.filter(key__in=["demo_crm", "demo_commerce"]).update(
        base_url=f"{live_server.url}/brewline-api/v1"
    )
    seed_knowledge(only=["shipping"])


@pytest.fixture
def endpoint(governed_company, settings) -> Iterator[ChatCompletionsServer]:  # type: ignore[no-untyped-def]
    """The scripted endpoint, configured as the responder's endpoint (STEWARD_RESPONDER=openai)."""
    with ChatCompletionsServer() as server:
        settings.STEWARD_RESPONDER = "openai"
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = "sk-test-steward"
        settings.OPENAI_MODEL = "scripted-model"
        settings.OPENAI_TIMEOUT = 5.0
        yield server


@pytest.fixture
def model(demo_company, endpoint) -> ChatCompletionsServer:  # type: ignore[no-untyped-def]
    """The scripted endpoint, for the demo company with its data."""
    return endpoint


class Chat:
    """A customer in a conversation, with a listener on the conversation's group like a websocket connection."""

    def __init__(self) -> None:
        self.conversation = conversation_start()
        self.layer = get_channel_layer()
        # A plain channel name (no "!"): read straight from Redis, so each frames() call may run in its own event loop.
        self.channel = f"test.listener.{uuid.uuid4().hex}"
        async_to_sync(self.layer.group_add)(group_name(self.conversation.id), self.channel)

    def say(self, text: str) -> Message:
        message_store_customer(conversation_id=self.conversation.id, client_id=uuid.uuid4(), text=text)
        run_turn(str(self.conversation.id))
        self.conversation.refresh_from_db()
        return Message.objects.filter(conversation=self.conversation, author="agent").order_by("-seq").first()

    def frames(self) -> list[dict[str, Any]]:
        """Return every frame pushed to the conversation since the last call."""

        async def receive_all() -> list[dict[str, Any]]:
            frames = []
            while True:
                try:
                    event = await asyncio.wait_for(self.layer.receive(self.channel), timeout=1.0)
                except TimeoutError:
                    return frames
                frames.append(event["frame"])

        return async_to_sync(receive_all)()


def _tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [message for message in request["messages"] if message["role"] == "tool"]


# --- Knowledge --------------------------------------------------------------------------------------------------------


def test_a_knowledge_question_is_searched_then_answered_citing_only_the_passages_it_was_given(model) -> None:  # type: ignore[no-untyped-def]
    model.add(
        tool_call("search_knowledge", {"query": "delivery time to the UK"}, call_id="call_search"),
        # [1] was given; [7] was not, and must not become a citation.
        text("UK orders usually arrive in 2–3 business days [1]. Express is faster [7]."),
    )
    chat = Chat()
    reply = chat.say("How long does delivery to the UK take?")

    assert reply.text == "UK orders usually arrive in 2–3 business days. Express is faster."
    trace = TurnTrace.objects.get(reply=reply)
    assert trace.responder == "openai" and trace.status == "done"
    assert trace.prompt_version == "1:openai:default@v1:scripted-model"
    # The second request carries the search's passages as the answer to the model's call, numbered for citing.
    first, second = model.requests
    assert first["stream"] is True and {t["function"]["name"] for t in first["tools"]} >= {
        "search_knowledge",
        "verify_email",
        "escalate",
        "order_status_lookup",
        "refund",
    }
    (result,) = _tool_messages(second)
    assert result["tool_call_id"] == "call_search"
    passages = json.loads(result["content"])["passages"]
    assert [p["ref"] for p in passages] == list(range(1, len(passages) + 1)) and passages[0]["text"]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "search_knowledge"
    # One citation: passage 1, the best hit, with its source's citation; nothing invented.
    assert len(reply.citations) == 1
    citation = reply.citations[0]
    assert citation["chunk_id"] == trace.retrieved[0]["chunk_id"]
    assert citation["document_title"] == passages[0]["title"]
    assert citation["url"].startswith("https://help.brewline.example/")
    # The answer was streamed: delta frames of this turn add up to the reply, then the message frame.
    frames = chat.frames()
    deltas = [f for f in frames if f["type"] == "delta"]
    assert len(deltas) > 3 and {f["turn"] for f in deltas} == {trace.pk}
    assert "".join(f["text"] for f in deltas) == reply.text
    assert frames[-1]["type"] == "message" and frames[-1]["seq"] == reply.seq


def test_an_answer_after_a_search_that_cites_nothing_is_an_i_dont_know_with_a_person_offered(model) -> None:  # type: ignore[no-untyped-def]
    model.add(
        tool_call("search_knowledge", {"query": "gift wrapping"}),
        text("I'm sorry, I couldn't find anything about gift wrapping."),
    )
    reply = Chat().say("Do you do gift wrapping?")
    assert reply.text == "I'm sorry, I couldn't find anything about gift wrapping."
    assert reply.citations == [] and reply.choices == [{"label": "Talk to a person", "value": "Talk to a person"}]


def test_the_trace_names_the_active_prompt_version_and_the_model_gets_its_text(endpoint) -> None:  # type: ignore[no-untyped-def]
    prompt_version_create(
        actor=None, name="default", system_prompt="You are Brewline's barista bot.", guidance="Be brief.", activate=True
    )
    endpoint.add(text("Hello! How can I help?"))
    reply = Chat().say("hello")
    assert reply.text == "Hello! How can I help?"
    assert TurnTrace.objects.get(reply=reply).prompt_version == "1:openai:default@v2:scripted-model"
    system = endpoint.requests[0]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are Brewline's barista bot.\n\nBe brief.")


# --- Actions go through governance ------------------------------------------------------------------------------


def test_an_order_question_from_a_visitor_goes_through_governance_which_asks_them_to_verify(model) -> None:  # type: ignore[no-untyped-def]
    model.add(tool_call("order_status_lookup", {"order_id": "bl 10042"}))
    chat = Chat()
    reply = chat.say("Where is my order BL-10042?")

    assert "email address" in reply.text
    trace = TurnTrace.objects.get(reply=reply)
    (call,) = trace.tool_calls
    assert call["action"] == "order_status_lookup" and call["arguments"] == {"order_id": "BL-10042"}
    assert call["decision"] == "deny"
    # From here the turn loop verifies and runs the waiting action itself, exactly as with the embedded responder.
    assert "6-digit code" in chat.say(MARA).text
    code = re.search(r"\d{6}", mail.outbox[-1].subject).group(0)
    answer = chat.say(code).text
    assert answer.startswith("Thanks, you're verified. Order BL-10042 is shipped.")
    assert len(model.requests) == 1


def test_personal_data_is_masked_before_it_leaves_and_the_tool_call_gets_the_real_address(endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(tool_call("verify_email", {"email": "[EMAIL_1]"}))
    chat = Chat()
    reply = chat.say(
        f"Hi, it's {MARA}, you can call me on (415) 555-0132 and my card is 4111 1111 1111 1111. Verify me please."
    )

    sent = endpoint.sent_text()
    for personal in (MARA, "555-0132", "4111 1111 1111 1111", "4111111111111111"):
        assert personal not in sent
    user = endpoint.requests[0]["messages"][-1]["content"]
    assert user == "Hi, it's [EMAIL_1], you can call me on [PHONE_1] and my card is [CARD_1]. Verify me please."
    # The code went to the real address, and the customer reads it back as they wrote it.
    assert mail.outbox[-1].to == [MARA]
    assert reply.text == f"I've sent a 6-digit code to {MARA}. Please type it here to continue."
    assert Conversation.objects.get(pk=chat.conversation.pk).pii_vault["[EMAIL_1]"] == MARA


def test_placeholders_stay_the_same_across_turns_and_the_reply_shows_real_values(endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(
        text("Thanks! I'll remember that."),
        text("You told me your e-mail is [EMAIL_1] and your phone is [PHONE_1]."),
    )
    chat = Chat()
    chat.say(f"My email is {MARA} and my phone is (415) 555-0132")
    chat.frames()
    reply = chat.say("What did I tell you?")

    assert reply.text == f"You told me your e-mail is {MARA} and your phone is (415) 555-0132."
    assert "".join(f["text"] for f in chat.frames() if f["type"] == "delta") == reply.text
    second = endpoint.requests[1]["messages"]
    assert second[1]["content"] == "My email is [EMAIL_1] and my phone is [PHONE_1]"
    assert MARA not in endpoint.sent_text()


def test_a_model_that_asks_to_escalate_hands_the_conversation_over_with_its_reason(endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(tool_call("escalate", {"reason": "customer asked for a person"}))
    chat = Chat()
    reply = chat.say("I want a human please")
    assert "passing you to a person" in reply.text
    assert chat.conversation.owner == Owner.WAITING
    assert chat.conversation.escalation_reason == "the assistant handed over: customer asked for a person"


# --- Failures -----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _handed_over(chat: Chat, reply: Message, reason: str) -> None:
    assert "passing you to a person" in reply.text
    assert chat.conversation.owner == Owner.WAITING
    assert chat.conversation.escalation_reason == reason
    trace = TurnTrace.objects.get(reply=reply)
    assert trace.status == "done" and trace.error == ""  # a reason, not a crash


def test_an_endpoint_that_is_down_hands_over_with_the_reason(endpoint, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{_free_port()}/v1"
    chat = Chat()
    reply = chat.say("How long does delivery take?")
    _handed_over(chat, reply, f"the language model endpoint could not be reached ({settings.OPENAI_BASE_URL})")


def test_a_rejected_key_is_logged_as_a_configuration_error_and_hands_over(endpoint, caplog) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(error(401, "Incorrect API key provided.", kind="invalid_request_error", code="invalid_api_key"))
    chat = Chat()
    with caplog.at_level(logging.ERROR, logger="agent.responders.openai_chat"):
        reply = chat.say("How long does delivery take?")
    _handed_over(chat, reply, "the language model endpoint rejected the API key (HTTP 401, check OPENAI_API_KEY)")
    assert any(r.levelno == logging.ERROR and "Configuration error" in r.getMessage() for r in caplog.records)
    assert endpoint.headers[0]["authorization"] == "Bearer sk-test-steward"
    assert len(endpoint.requests) == 1  # a 401 is not retried


def test_a_server_error_is_retried_once_then_hands_over(endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(error(500, "overloaded"), error(503, "overloaded"))
    chat = Chat()
    reply = chat.say("How long does delivery take?")
    _handed_over(chat, reply, "the language model endpoint answered HTTP 503")
    assert len(endpoint.requests) == 2


def test_an_endpoint_that_does_not_answer_in_time_hands_over(endpoint, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_TIMEOUT = 0.3
    endpoint.add(stalled(1.5), stalled(1.5))
    chat = Chat()
    reply = chat.say("How long does delivery take?")
    _handed_over(chat, reply, "the language model endpoint did not answer within 0.3 s")


@pytest.mark.parametrize(
    ("scripted", "reason"),
    [
        (raw(b"data: {not json\n\n"), "the language model endpoint sent an unusable reply"),
        (Scripted(content="Delivery takes", stop_after=2), "the model's reply ended before it was finished"),
        (text("Delivery takes two", finish_reason="length"), "the model's reply was cut off"),
    ],
    ids=["not-json", "cut-stream", "length"],
)
def test_a_reply_that_is_not_a_usable_completion_hands_over(endpoint, scripted, reason) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(scripted)
    chat = Chat()
    reply = chat.say("How long does delivery take?")
    assert "passing you to a person" in reply.text
    assert chat.conversation.escalation_reason.startswith(reason)


def test_malformed_tool_arguments_go_back_to_the_model_which_can_ask_instead(endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(
        tool_call("order_status_lookup", '{"order_id": "BL-100', call_id="call_broken"),
        text("Sorry — which order is it? The number starts with BL."),
    )
    chat = Chat()
    reply = chat.say("where's my order")
    assert reply.text == "Sorry — which order is it? The number starts with BL."
    (result,) = _tool_messages(endpoint.requests[1])
    assert result["tool_call_id"] == "call_broken"
    assert "not valid JSON" in json.loads(result["content"])["error"]
    assert TurnTrace.objects.get(reply=reply).tool_calls == []  # nothing reached governance


def test_a_second_wrong_tool_call_hands_over(endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.add(
        tool_call("refund", {"order_id": "BL-10042", "amount": "lots"}),
        tool_call("delete_customer", {"id": "C-1001"}),
    )
    chat = Chat()
    reply = chat.say("refund my order BL-10042")
    assert "passing you to a person" in reply.text
    assert chat.conversation.escalation_reason == (
        "the model called a tool wrongly twice: there is no tool named 'delete_customer'"
    )
    assert "amount of refund is not valid" in json.loads(_tool_messages(endpoint.requests[1])[0]["content"])["error"]


# --- Tool arguments (no endpoint) -----------------------------------------------------------------------------------


def test_tool_arguments_get_real_values_back_and_are_normalised_like_the_embedded_slots() -> None:
    vault = PlaceholderVault({"[EMAIL_1]": MARA, "[PHONE_1]": "(415) 555-0132"})
    tools = {name: Tool(name, "", ACTION_ARGUMENTS[name]) for name in ("refund", "address_change")}
    tools["verify_email"] = Tool("verify_email", "", TURN_TOOLS["verify_email"][1])

    def parse(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return tool_call_parse(tools, name, json.dumps(arguments), vault)

    assert parse("refund", {"order_id": "bl10042", "amount": "£40", "reason": "call me on [PHONE_1]"}) == {
        "order_id": "BL-10042",
        "amount": "40.00",
        "reason": "call me on (415) 555-0132",
    }
    address = {"line1": "1 High St", "city": "London", "postcode": "SW1A 1AA", "country": "GB"}
    assert parse("address_change", {"order_id": "BL-10042", "address": address}) == {
        "order_id": "BL-10042",
        "address": {**address, "line2": ""},
    }
    assert parse("verify_email", {"email": "[EMAIL_1]"}) == {"email": MARA}
    with pytest.raises(InvalidToolCall, match="order_id of address_change is not valid"):
        parse("address_change", {"order_id": "BL-1", "address": address})
    with pytest.raises(InvalidToolCall, match="address_change needs address"):
        parse("address_change", {"order_id": "BL-10042"})
    with pytest.raises(InvalidToolCall, match="refund has no argument customer_id"):
        parse("refund", {"order_id": "BL-10042", "customer_id": "C-1"})
    # A code only ever goes to an address the customer wrote, never to one the model made up.
    with pytest.raises(InvalidToolCall, match="placeholder of an e-mail address the customer wrote"):
        parse("verify_email", {"email": "someone@elsewhere.example"})
    with pytest.raises(InvalidToolCall, match="placeholder of an e-mail address the customer wrote"):
        parse("verify_email", {"email": "[EMAIL_2]"})
