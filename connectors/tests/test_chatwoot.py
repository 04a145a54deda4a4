"""The Chatwoot adapter against Chatwoot's own OpenAPI document (shared/contracts/chatwoot/swagger.json).

Every request is validated by the contract harness, and so is every canned answer unless it is marked
``off_contract``: Chatwoot publishes no fixtures, so answers are built from the document's schemas (the harness
rejects any that do not fit), and the one place Chatwoot's real answer differs from its document — the
create-contact response — is played as Chatwoot's view template renders it and marked as such.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.adapters.chatwoot import MESSAGE_MAX, ChatwootAdapter, handover_note
from connectors.base import ConnectorError, CustomerRef, Macro, NotFound, TicketDraft, TicketRef
from connectors.gateway import call, idempotent
from connectors.models import Connector
from connectors.tests.contracts import ContractTransport, Exchange, contract_or_skip
from governance.tests.factories import UserFactory

SPEC = "chatwoot/swagger.json"
SERVER = "https://app.chatwoot.com"
TOKEN = "pvZRvDoXu7Bq4cuFF1g2ZcAz"
ACCOUNT = "/api/v1/accounts/1"
INBOX = 4
CONFIG = {"account_id": 1, "inbox_id": INBOX, "teams": {"billing": 2}, "labels": ["steward"]}


@pytest.fixture
def api() -> Any:
    return contract_or_skip(SPEC)


# --- Chatwoot's records, shaped by the contract's schemas ---------------------------------------------------------


def contact(contact_id: int, email: str, *, in_inbox: str = "", identifier: str | None = None) -> dict[str, Any]:
    """A ``contact_list_item``; ``in_inbox`` is the contact's source id in our inbox, if it has one there."""
    inboxes = [{"source_id": in_inbox, "inbox": {"id": INBOX, "name": "Escalations", "channel_type": "Channel::Api"}}]
    return {
        "id": contact_id,
        "name": "Ada Lovelace",
        "email": email,
        "phone_number": None,
        "identifier": identifier,
        "availability_status": "offline",
        "blocked": False,
        "thumbnail": "",
        "additional_attributes": {},
        "custom_attributes": {},
        "created_at": 1700000000,
        "last_activity_at": None,
        "contact_inboxes": inboxes if in_inbox else [],
    }


def contacts(*items: dict[str, Any]) -> dict[str, Any]:
    return {"meta": {"count": len(items), "current_page": 1}, "payload": list(items)}


def conversation(conversation_id: int, *, status: str = "open", subject: str = "", last: str = "") -> dict[str, Any]:
    """A ``conversation`` with the ``meta`` the list and show endpoints add."""
    return {
        "id": conversation_id,
        "account_id": 1,
        "inbox_id": INBOX,
        "uuid": "0e5b0a5e-7f51-4a39-9b49-6a1f0c6f2f0d",
        "status": status,
        "priority": None,
        "labels": [],
        "muted": False,
        "can_reply": True,
        "snoozed_until": None,
        "unread_count": 0,
        "created_at": 1700000000,
        "timestamp": 1700000000,
        "last_activity_at": 1700000100,
        "additional_attributes": {"mail_subject": subject} if subject else {},
        "custom_attributes": {},
        "last_non_activity_message": {"id": 90, "content": last, "message_type": 0, "private": False} if last else None,
        "meta": {"sender": {"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"}, "channel": "Channel::Api"},
    }


def message(message_id: int, content: str, *, private: bool) -> dict[str, Any]:
    return {
        "id": message_id,
        "content": content,
        "account_id": 1,
        "inbox_id": INBOX,
        "conversation_id": 55,
        "message_type": 1,  # outgoing, as the contract's integer enum stores it
        "private": private,
        "status": "sent",
        "content_type": "text",
        "created_at": 1700000200,
        "sender_type": "User",
        "sender_id": 3,
    }


def draft(**overrides: Any) -> TicketDraft:
    values: dict[str, Any] = {
        "subject": "Refund for a damaged grinder",
        "customer_id": "C-1001",
        "customer_email": "ada@example.com",
        "issue_category": "Billing issue",
        "product_area": "Grinders",
        "channel": "web chat",
        "severity": "high",
        "sentiment": -0.6,
        "attempted_resolution": "Offered a replacement; the customer wants a refund.",
        "confidence": 0.42,
        "escalation_reason": "Refund above the automatic limit",
        "transcript": "customer: it arrived broken\nagent: I am sorry to hear that",
        "suggested_next_step": "Approve a refund of 120.00 GBP",
        "related_sources": ["kb:refund-policy"],
        "missing": ["order photo"],
        "queue": "billing",
        "priority": 2,
        "sla_due_at": datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
        "conversation_id": "7d1f0c1e-0000-4000-8000-000000000001",
    }
    return TicketDraft(**{**values, **overrides})


# --- The harness --------------------------------------------------------------------------------------------------


class OffContract:
    """An answer Chatwoot really sends that its OpenAPI document does not describe (not validated as a response)."""

    def __init__(self, answer: tuple[Any, ...]) -> None:
        self.answer = answer


class Chatwoot:
    """The adapter wired to a ContractTransport that plays ``answers`` in order (an exception instance is raised)."""

    def __init__(
        self,
        api: Any,
        *answers: Any,
        config: dict[str, Any] | None = None,
        validate: bool = True,
        connector: Connector | None = None,
    ):
        self.sleeps: list[float] = []
        queue = list(answers)

        def responder(exchange: Exchange) -> Any:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            # The harness validates the answer after this returns; an off-contract answer switches that off once.
            self.transport.validate_response = validate and not isinstance(answer, OffContract)
            return answer.answer if isinstance(answer, OffContract) else answer

        self.transport = ContractTransport(api=api, server=SERVER, responder=responder, validate_response=validate)
        self.connector = connector or Connector(
            key="chatwoot", name="Chatwoot", family="helpdesk", adapter="chatwoot", config=config or CONFIG
        )
        self.adapter = ChatwootAdapter(
            self.connector, credential=TOKEN, transport=self.transport, sleep=self.sleeps.append
        )

    @property
    def sent(self) -> list[Exchange]:
        return self.transport.exchanges

    def calls(self) -> list[tuple[str, str]]:
        return [(exchange.method, exchange.path) for exchange in self.sent]


# --- Reads --------------------------------------------------------------------------------------------------------


def test_a_customers_tickets_are_the_conversations_of_their_contact(api):
    exact = contact(7, "Ada@Example.com")
    lookalike = contact(9, "notada@example.com")
    chatwoot = Chatwoot(
        api,
        (200, contacts(exact, lookalike)),
        (
            200,
            {"payload": [conversation(55, subject="Grinder broken"), conversation(41, status="resolved", last="Hi")]},
        ),
    )

    tickets = chatwoot.adapter.search_tickets(CustomerRef(id="C-1001", email="ada@example.com"))

    assert chatwoot.calls() == [("GET", f"{ACCOUNT}/contacts/search"), ("GET", f"{ACCOUNT}/contacts/7/conversations")]
    assert chatwoot.sent[0].query == {"q": "ada@example.com"}
    assert chatwoot.sent[0].headers["Api_Access_Token"] == TOKEN
    assert tickets == [
        TicketRef(id="55", url=f"{SERVER}/app/accounts/1/conversations/55", status="open", subject="Grinder broken"),
        TicketRef(id="41", url=f"{SERVER}/app/accounts/1/conversations/41", status="resolved", subject="Hi"),
    ]


def test_a_customer_without_an_email_is_found_by_their_id_as_identifier(api):
    chatwoot = Chatwoot(
        api, (200, contacts(contact(7, "ada@example.com", identifier="C-1001"))), (200, {"payload": []})
    )

    tickets = chatwoot.adapter.search_tickets(CustomerRef(id="C-1001"))

    assert chatwoot.sent[0].query == {"q": "C-1001"}
    assert len(chatwoot.sent) == 2
    assert tickets == []


def test_a_customer_chatwoot_does_not_know_has_no_tickets(api):
    chatwoot = Chatwoot(api, (200, contacts()))

    assert chatwoot.adapter.search_tickets(CustomerRef(id="", email="new@example.com")) == []
    assert len(chatwoot.sent) == 1


def test_macros_are_the_accounts_canned_responses(api):
    chatwoot = Chatwoot(
        api, (200, [{"id": 3, "account_id": 1, "short_code": "refund-ok", "content": "Your refund is on its way."}])
    )

    assert chatwoot.adapter.list_macros() == [Macro(id="3", title="refund-ok", body="Your refund is on its way.")]
    assert chatwoot.calls() == [("GET", f"{ACCOUNT}/canned_responses")]


def test_it_reads_a_conversation_and_a_contact_as_dotted_paths(api):
    chatwoot = Chatwoot(api, (200, conversation(55)), (200, {"payload": contact(7, "ada@example.com")}))

    conv = chatwoot.adapter.read_object("conversation", "55")
    person = chatwoot.adapter.read_object("contact", "7")

    assert chatwoot.calls() == [("GET", f"{ACCOUNT}/conversations/55"), ("GET", f"{ACCOUNT}/contacts/7")]
    assert conv["status"] == "open"
    assert conv["meta.sender.email"] == "ada@example.com"
    assert person["email"] == "ada@example.com"


def test_an_id_that_is_not_a_number_is_not_found_without_asking(api):
    chatwoot = Chatwoot(api)

    with pytest.raises(NotFound):
        chatwoot.adapter.read_object("conversation", "ZD-12")

    assert chatwoot.sent == []


def test_the_health_check_reads_the_account(api):
    chatwoot = Chatwoot(api, (200, {"id": 1, "name": "Brewline", "locale": "en", "status": "active"}))

    chatwoot.adapter.health_check()

    assert chatwoot.calls() == [("GET", ACCOUNT)]


# --- Creating a ticket --------------------------------------------------------------------------------------------


def test_a_ticket_for_a_known_contact_opens_a_conversation_with_a_private_handover_note(api):
    chatwoot = Chatwoot(
        api,
        (200, contacts(contact(7, "ada@example.com", in_inbox="steward-ada"))),
        (200, {"id": 55, "account_id": 1, "inbox_id": INBOX}),
        (200, message(90, "note", private=True)),
        (200, b""),  # toggle_priority answers 200 with no body
        (200, {"payload": ["steward", "billing-issue"]}),
    )

    ticket = chatwoot.adapter.create_ticket(draft(), idempotency_key="esc-1")

    assert chatwoot.calls() == [
        ("GET", f"{ACCOUNT}/contacts/search"),
        ("POST", f"{ACCOUNT}/conversations"),
        ("POST", f"{ACCOUNT}/conversations/55/messages"),
        ("POST", f"{ACCOUNT}/conversations/55/toggle_priority"),
        ("POST", f"{ACCOUNT}/conversations/55/labels"),
    ]
    create, note, priority, labels = (exchange.body for exchange in chatwoot.sent[1:])
    assert create == {"source_id": "steward-ada", "inbox_id": INBOX, "contact_id": 7, "status": "open", "team_id": 2}
    assert note["message_type"] == "outgoing"
    assert note["private"] is True
    assert note["content"] == handover_note(draft())
    assert priority == {"priority": "high"}
    assert labels == {"labels": ["steward", "billing-issue"]}
    assert ticket == TicketRef(
        id="55", url=f"{SERVER}/app/accounts/1/conversations/55", status="open", subject="Refund for a damaged grinder"
    )


def test_a_ticket_for_a_new_customer_creates_the_contact_and_its_place_in_the_inbox(api):
    chatwoot = Chatwoot(
        api,
        (200, contacts()),
        # The contract's ``extended_contact`` (its ``contact`` items allow no nulls).
        (200, {"id": 8, "availability_status": "offline", "payload": [{"id": 8, "email": "new@example.com"}]}),
        (200, {"source_id": "4b1d6c1e-generated", "inbox": {"id": INBOX, "name": "Escalations"}}),
        (200, {"id": 56, "account_id": 1, "inbox_id": INBOX}),
        (200, message(91, "note", private=True)),
        (200, b""),
        (200, {"payload": ["steward"]}),
    )

    chatwoot.adapter.create_ticket(
        draft(customer_email="new@example.com", queue="", issue_category="", priority=5), idempotency_key="esc-2"
    )

    assert chatwoot.calls() == [
        ("GET", f"{ACCOUNT}/contacts/search"),
        ("POST", f"{ACCOUNT}/contacts"),
        ("POST", f"{ACCOUNT}/contacts/8/contact_inboxes"),
        ("POST", f"{ACCOUNT}/conversations"),
        ("POST", f"{ACCOUNT}/conversations/56/messages"),
        ("POST", f"{ACCOUNT}/conversations/56/toggle_priority"),
        ("POST", f"{ACCOUNT}/conversations/56/labels"),
    ]
    new_contact, contact_inbox, create, _, priority, labels = (exchange.body for exchange in chatwoot.sent[1:])
    assert new_contact == {"inbox_id": INBOX, "email": "new@example.com", "identifier": "C-1001"}
    assert contact_inbox == {"inbox_id": INBOX}
    assert create == {"source_id": "4b1d6c1e-generated", "inbox_id": INBOX, "contact_id": 8, "status": "open"}
    assert priority == {"priority": "none"}
    assert labels == {"labels": ["steward"]}


def test_chatwoots_own_create_contact_answer_gives_the_source_id_without_another_call(api):
    # What Chatwoot renders (app/views/api/v1/accounts/contacts/create.json.jbuilder), not its document's shape.
    created = {
        "payload": {
            "contact": contact(8, "new@example.com"),
            "contact_inbox": {"inbox": {"id": INBOX, "name": "Escalations"}, "source_id": "from-create"},
        }
    }
    chatwoot = Chatwoot(
        api,
        (200, contacts()),
        OffContract((200, created)),
        (200, {"id": 57, "account_id": 1, "inbox_id": INBOX}),
        (200, message(92, "note", private=True)),
        (200, b""),
        (200, {"payload": ["steward"]}),
    )

    chatwoot.adapter.create_ticket(
        draft(customer_email="new@example.com", queue="", issue_category=""), idempotency_key="esc-3"
    )

    assert ("POST", f"{ACCOUNT}/contacts/8/contact_inboxes") not in chatwoot.calls()
    assert chatwoot.sent[2].body["source_id"] == "from-create"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"queue": "legal"}, "No Chatwoot team"),
        ({"priority": 9}, "1 \\(critical\\) to 5"),
        ({"customer_email": "", "customer_id": ""}, "email or id"),
    ],
)
def test_a_ticket_that_cannot_be_filed_whole_is_refused_before_anything_is_created(api, overrides, complaint):
    chatwoot = Chatwoot(api)

    with pytest.raises(ConnectorError, match=complaint) as caught:
        chatwoot.adapter.create_ticket(draft(**overrides), idempotency_key="esc-4")

    assert caught.value.permanent
    assert chatwoot.sent == []


def test_the_handover_note_carries_what_a_person_needs_and_fits_chatwoots_limit():
    note = handover_note(draft())

    for expected in (
        "Refund for a damaged grinder",
        "Refund above the automatic limit",
        "Approve a refund of 120.00 GBP",
        "Not filled in: order photo",
        "SLA due: 2026-11-26T09:00:00+00:00",
        "customer: it arrived broken",
    ):
        assert expected in note
    long = handover_note(draft(transcript="x" * (MESSAGE_MAX * 2)))
    assert len(long) == MESSAGE_MAX
    assert long.endswith("the full one is in Steward]")


# --- Comments, priority, fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("public", "private"), [(True, False), (False, True)])
def test_a_comment_is_a_reply_or_a_private_note(api, public, private):
    chatwoot = Chatwoot(api, (200, message(93, "We are on it", private=private)))

    chatwoot.adapter.add_comment("55", "We are on it", public=public, idempotency_key="c-1")

    (sent,) = chatwoot.sent
    assert (sent.method, sent.path) == ("POST", f"{ACCOUNT}/conversations/55/messages")
    assert sent.body == {"content": "We are on it", "message_type": "outgoing", "private": private}


def test_setting_priority_for_a_queue_assigns_the_queues_team(api):
    chatwoot = Chatwoot(api, (200, b""), (200, {"id": 3, "name": "Billing desk", "role": "agent"}))

    chatwoot.adapter.set_priority("55", 1, queue="billing", idempotency_key="p-1")

    assert chatwoot.calls() == [
        ("POST", f"{ACCOUNT}/conversations/55/toggle_priority"),
        ("POST", f"{ACCOUNT}/conversations/55/assignments"),
    ]
    assert [exchange.body for exchange in chatwoot.sent] == [{"priority": "urgent"}, {"team_id": 2}]


def test_an_unknown_queue_changes_nothing(api):
    chatwoot = Chatwoot(api)

    with pytest.raises(ConnectorError, match="legal"):
        chatwoot.adapter.set_priority("55", 1, queue="legal", idempotency_key="p-2")

    assert chatwoot.sent == []


def test_status_and_priority_are_the_writable_fields(api):
    resolved = {"meta": {}, "payload": {"success": True, "current_status": "resolved", "conversation_id": 55}}
    chatwoot = Chatwoot(api, (200, resolved), (200, b""))

    assert chatwoot.adapter.write_field("conversation", "55", "status", "resolved", idempotency_key="w-1") == "resolved"
    assert chatwoot.adapter.write_field("conversation", "55", "priority", "low", idempotency_key="w-2") == "low"

    assert chatwoot.calls() == [
        ("POST", f"{ACCOUNT}/conversations/55/toggle_status"),
        ("POST", f"{ACCOUNT}/conversations/55/toggle_priority"),
    ]
    assert chatwoot.sent[0].body == {"status": "resolved"}


@pytest.mark.parametrize(
    ("obj", "field", "value"),
    [("conversation", "status", "closed"), ("conversation", "priority", "p1"), ("contact", "email", "x@example.com")],
)
def test_a_write_outside_the_contract_is_refused_before_sending(api, obj, field, value):
    chatwoot = Chatwoot(api)

    with pytest.raises(ConnectorError) as caught:
        chatwoot.adapter.write_field(obj, "55", field, value, idempotency_key="w-3")

    assert caught.value.permanent
    assert chatwoot.sent == []


# --- Idempotency --------------------------------------------------------------------------------------------------


def test_chatwoot_does_not_honour_idempotency_so_a_lost_write_is_not_repeated(api):
    chatwoot = Chatwoot(api, httpx.ReadTimeout("lost"))

    with pytest.raises(ConnectorError, match="timed out") as caught:
        chatwoot.adapter.add_comment("55", "We are on it", public=True, idempotency_key="c-2")

    assert ChatwootAdapter.honours_idempotency is False
    assert not caught.value.permanent
    assert len(chatwoot.sent) == 1  # posting again could message the customer twice
    assert "Idempotency-Key" not in chatwoot.sent[0].headers


@pytest.mark.django_db
def test_the_gateways_receipt_makes_a_repeated_escalation_open_one_conversation(api):
    owner = UserFactory()
    connector = Connector.objects.create(
        key="chatwoot", name="Chatwoot", family="helpdesk", adapter="chatwoot", owner=owner, config=CONFIG
    )
    chatwoot = Chatwoot(
        api,
        (200, contacts(contact(7, "ada@example.com", in_inbox="steward-ada"))),
        (200, {"id": 55, "account_id": 1, "inbox_id": INBOX}),
        (200, message(90, "note", private=True)),
        (200, b""),
        (200, {"payload": ["steward", "billing-issue"]}),
        connector=connector,
    )

    def escalate() -> Any:
        return idempotent(
            connector,
            "ticket_create",
            "esc-9",
            lambda: chatwoot.adapter.create_ticket(draft(), idempotency_key="esc-9"),
            remote_dedupes=ChatwootAdapter.honours_idempotency,
        )

    first, again = escalate(), escalate()

    assert first.id == "55"
    assert again["id"] == "55"
    assert len(chatwoot.sent) == 5  # the second call sent nothing


# --- Failure modes ------------------------------------------------------------------------------------------------


def test_a_refused_token_is_an_auth_error(api):
    chatwoot = Chatwoot(api, (401, {"error": "You need to sign in or sign up before continuing."}))

    with pytest.raises(ConnectorError, match="credential refused") as caught:
        chatwoot.adapter.search_tickets(CustomerRef(id="", email="ada@example.com"))

    assert caught.value.auth
    assert len(chatwoot.sent) == 1


@pytest.mark.django_db
def test_a_refused_token_disables_the_connector_and_tells_its_owner(
    api, mailoutbox, django_capture_on_commit_callbacks
):
    owner = UserFactory(email="helpdesk-owner@brewline.example")
    connector = Connector.objects.create(
        key="chatwoot", name="Chatwoot", family="helpdesk", adapter="chatwoot", owner=owner, config=CONFIG
    )
    chatwoot = Chatwoot(api, (401, {"error": "Invalid Access Token"}), connector=connector)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConnectorError):
        call(connector, lambda: chatwoot.adapter.search_tickets(CustomerRef(id="", email="ada@example.com")))

    connector.refresh_from_db()
    assert connector.enabled is False
    assert "credential refused" in connector.disabled_reason
    assert [message.to for message in mailoutbox] == [["helpdesk-owner@brewline.example"]]


def test_a_rate_limit_waits_as_long_as_retry_after_says(api):
    # The contract declares no 429: Chatwoot's rate limiting (rack-attack) answers outside it.
    chatwoot = Chatwoot(
        api,
        OffContract((429, {"error": "Too many requests"}, {"Retry-After": "3"})),
        (200, [{"id": 3, "short_code": "hi", "content": "Hello"}]),
    )

    chatwoot.adapter.list_macros()

    assert chatwoot.sleeps == [3.0]
    assert len(chatwoot.sent) == 2


def test_a_failing_read_is_retried_then_reported(api):
    failing = OffContract((502, {"error": "Bad gateway"}))
    chatwoot = Chatwoot(api, failing, failing, failing)

    with pytest.raises(ConnectorError, match="502 Bad gateway") as caught:
        chatwoot.adapter.read_object("conversation", "55")

    assert not caught.value.permanent
    assert len(chatwoot.sent) == 3
    assert len(chatwoot.sleeps) == 2


def test_a_failing_write_is_not_retried(api):
    chatwoot = Chatwoot(api, OffContract((500, {"error": "Internal Server Error"})))

    with pytest.raises(ConnectorError, match="500"):
        chatwoot.adapter.add_comment("55", "We are on it", public=True, idempotency_key="c-3")

    assert len(chatwoot.sent) == 1


def test_a_refused_write_is_permanent_and_carries_chatwoots_message(api):
    refused = {"description": "Validation failed", "errors": [{"field": "email", "message": "Email is invalid"}]}
    chatwoot = Chatwoot(api, (200, contacts()), (400, refused))

    with pytest.raises(ConnectorError, match="Validation failed") as caught:
        chatwoot.adapter.create_ticket(draft(customer_email="not-an-email"), idempotency_key="esc-5")

    assert caught.value.permanent
    assert caught.value.status == 400


def test_a_missing_record_is_not_found(api):
    chatwoot = Chatwoot(api, (404, {"description": "Resource could not be found", "errors": []}))

    with pytest.raises(NotFound):
        chatwoot.adapter.read_object("contact", "404")


def test_a_malformed_response_is_a_clear_error(api):
    chatwoot = Chatwoot(api, (200, b"<html>Maintenance</html>"), validate=False)

    with pytest.raises(ConnectorError, match="not valid JSON"):
        chatwoot.adapter.list_macros()


def test_schema_drift_is_named_rather_than_crashing(api):
    chatwoot = Chatwoot(api, (200, {"data": [contact(7, "ada@example.com")]}), validate=False)

    with pytest.raises(ConnectorError, match="has no 'payload'"):
        chatwoot.adapter.search_tickets(CustomerRef(id="", email="ada@example.com"))


def test_a_connector_needs_a_token_and_an_account_and_inbox():
    unconfigured = Connector(key="chatwoot", name="Chatwoot", family="helpdesk", adapter="chatwoot", config={})

    with pytest.raises(ConnectorError, match="access token"):
        ChatwootAdapter(unconfigured, credential=None)
    with pytest.raises(ConnectorError, match="account_id.*inbox_id"):
        ChatwootAdapter(unconfigured, credential=TOKEN)


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"account_id": "one", "inbox_id": 4}, "account_id"),
        ({"account_id": 1, "inbox_id": 0}, "inbox_id"),
        ({**CONFIG, "teams": {"billing": "the billing team"}}, "teams"),
        ({**CONFIG, "labels": ["Billing issue"]}, "labels"),
        ([], "JSON object"),
    ],
)
def test_the_admin_is_told_what_is_wrong_with_a_configuration(config, complaint):
    (problem,) = ChatwootAdapter.config_errors(config)
    assert complaint in problem


def test_a_good_configuration_has_no_problems():
    assert ChatwootAdapter.config_errors(CONFIG) == []
    assert ChatwootAdapter.config_errors({"account_id": "1", "inbox_id": "4"}) == []


# --- The harness itself -------------------------------------------------------------------------------------------


def _send(api: Any, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> ContractTransport:
    transport = ContractTransport(api=api, server=SERVER, responder=lambda exchange: (200, {}))
    with httpx.Client(base_url=SERVER, transport=transport) as client:
        client.request(method, path, json=body, headers=headers if headers is not None else {"api_access_token": TOKEN})
    return transport


@pytest.mark.parametrize(
    ("path", "body", "headers", "complaint"),
    [
        (f"{ACCOUNT}/conversations/55/messages", {"content": "x", "message_type": "shout"}, None, "is not one of"),
        (f"{ACCOUNT}/conversations/55/toggle_priority", {"priority": "p1"}, None, "is not one of"),
        (f"{ACCOUNT}/conversations/55/messages", {"content": "x"}, {}, "Security not found"),
    ],
)
def test_the_harness_rejects_requests_outside_chatwoots_contract(api, path, body, headers, complaint):
    with pytest.raises(Exception, match=complaint):
        _send(api, "POST", path, body, headers)


def test_the_harness_rejects_answers_outside_chatwoots_contract(api):
    transport = ContractTransport(api=api, server=SERVER, responder=lambda exchange: (200, {"payload": "not a list"}))

    with pytest.raises(Exception, match="not valid"), httpx.Client(base_url=SERVER, transport=transport) as client:
        client.get(f"{ACCOUNT}/contacts/search", params={"q": "ada"}, headers={"api_access_token": TOKEN})
