"""The Zendesk adapter against Zendesk's own Support OpenAPI document: every request it sends is validated by the
contract harness, and every canned answer is one of the document's own examples (or validated against it)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from connectors.adapters.zendesk import PRIORITIES, ZendeskAdapter, ticket_body
from connectors.base import ConnectorError, CustomerRef, NotFound, TicketDraft, TicketRef
from connectors.gateway import call, idempotent
from connectors.models import Connector, WriteReceipt
from connectors.tests.contracts import CONTRACTS_DIR, ContractTransport, Exchange, contract_or_skip
from governance.models import AuditRecord, EventType
from governance.tests.factories import UserFactory

SPEC = "zendesk/support-oas.customer-service.json"
SERVER = "https://example.zendesk.com"
CONFIG = {
    "email": "agent@brewline.example",
    "custom_fields": {"issue_category": 360001, "confidence": 360002, "related_sources": 360003, "sla_due_at": 360004},
    "groups": {"billing": 2001},
    "tags": ["steward"],
}


# --- The vendor --------------------------------------------------------------------------------------------------


@cache
def _document() -> dict[str, Any]:
    return json.loads((CONTRACTS_DIR / SPEC).read_text())


def example(name: str) -> Any:
    """Return one of the contract's own examples (components/examples)."""
    return copy.deepcopy(_document()["components"]["examples"][name]["value"])


def operation_example(path: str, method: str, status: str) -> Any:
    """Return the default example of an operation's response, where the contract writes it inline."""
    content = _document()["paths"][path][method]["responses"][status]["content"]["application/json"]
    default = content["examples"]["default"]
    if "$ref" in default:  # "#/components/examples/<name>"
        return example(default["$ref"].rsplit("/", 1)[1])
    return copy.deepcopy(default["value"])


def errors_body(code: str, title: str) -> dict[str, Any]:
    """Return an error body in the contract's ``Errors`` shape, validated against it.

    The contract documents no error responses for these operations (no 4xx/5xx, no default), so the harness cannot
    validate error answers; their body is checked against the schema here instead.
    """
    from openapi_schema_validator import OAS30Validator

    body = {"errors": [{"code": code, "title": title}]}
    OAS30Validator({"$ref": "#/components/schemas/Errors", "components": _document()["components"]}).validate(body)
    return body


def ticket_search_answer() -> dict[str, Any]:
    """The contract's search example, its results replaced by the contract's ticket example as a ticket result."""
    answer = example("SearchResponseExample")
    answer.update(
        count=1, next_page=None, results=[{**example("TicketResponseExample")["ticket"], "result_type": "ticket"}]
    )
    return answer


class Zendesk:
    """Plays Zendesk from a script of answers, one per request, in order.

    Success answers are validated against the contract; error answers cannot be (see ``errors_body``), and
    ``validate=False`` is for answers broken on purpose (malformed JSON, schema drift).
    """

    def __init__(self, api: Any, *answers: tuple[Any, ...], validate: bool = True) -> None:
        self.answers = list(answers)
        self.validate = validate
        self.transport = ContractTransport(api=api, server=SERVER, responder=self._answer)

    def _answer(self, exchange: Exchange) -> tuple[Any, ...]:
        answer = self.answers.pop(0)
        self.transport.validate_response = self.validate and answer[0] < 400
        return answer

    @property
    def exchanges(self) -> list[Exchange]:
        return self.transport.exchanges


@pytest.fixture
def api() -> Any:
    return contract_or_skip(SPEC)


def zendesk_adapter(
    vendor: Zendesk, connector: Connector | None = None, sleeps: list[float] | None = None
) -> ZendeskAdapter:
    connector = connector or Connector(
        key="zendesk", name="Zendesk", family="helpdesk", adapter="zendesk", base_url=SERVER, config=CONFIG
    )
    return ZendeskAdapter(
        connector,
        credential="zd-api-token",
        transport=vendor.transport,
        sleep=(sleeps if sleeps is not None else []).append,
    )


@pytest.fixture
def draft() -> TicketDraft:
    return TicketDraft(
        subject="Refund for a double charge",
        customer_id="C-1001",
        customer_email="ada@example.com",
        issue_category="Billing",
        product_area="Subscriptions",
        channel="web chat",
        severity="high",
        sentiment=-0.6,
        attempted_resolution="Confirmed two charges on 3 March; refund needs approval.",
        confidence=0.42,
        escalation_reason="refund above the automatic limit",
        transcript="customer: I was charged twice\nagent: I can see two charges of 24.00 EUR.",
        suggested_next_step="Approve the refund of one charge.",
        related_sources=["kb:refund-policy"],
        fields_read=["plan", "last_invoice"],
        queue="billing",
        priority=2,
        sla_due_at=datetime(2026, 3, 4, 12, 0, tzinfo=UTC),
        conversation_id="7d1f0c1e-0000-4000-8000-000000000001",
    )


# --- Authentication and health -----------------------------------------------------------------------------------


def test_it_authenticates_with_the_agents_email_and_api_token(api):
    vendor = Zendesk(api, (200, operation_example("/api/v2/users/me", "get", "200")))

    zendesk_adapter(vendor).health_check()

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("GET", "/api/v2/users/me")
    expected = base64.b64encode(b"agent@brewline.example/token:zd-api-token").decode()
    assert exchange.headers["Authorization"] == f"Basic {expected}"


def test_a_health_check_answered_for_a_user_without_id_is_a_refused_token(api):
    # Show Self is allowed for anonymous callers (the contract says so): a 200 alone proves nothing.
    vendor = Zendesk(api, (200, {"user": {"name": "Anonymous user", "role": "end-user"}}))

    with pytest.raises(ConnectorError) as caught:
        zendesk_adapter(vendor).health_check()

    assert caught.value.auth


@pytest.mark.parametrize(("base_url", "credential"), [("", "zd-api-token"), (SERVER, None), (SERVER, "")])
def test_it_refuses_to_start_without_a_token_or_account_url(base_url, credential):
    connector = Connector(key="zendesk", name="Zendesk", base_url=base_url, config=CONFIG)

    with pytest.raises(ConnectorError, match="base URL") as caught:
        ZendeskAdapter(connector, credential=credential)

    assert caught.value.permanent


# --- Reads -------------------------------------------------------------------------------------------------------


def test_it_finds_a_customers_tickets_by_requester_email(api):
    vendor = Zendesk(api, (200, ticket_search_answer()))

    tickets = zendesk_adapter(vendor).search_tickets(CustomerRef(id="C-1001", email="ada@example.com"))

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("GET", "/api/v2/search")
    assert exchange.query == {
        "query": "type:ticket requester:ada@example.com",
        "sort_by": "updated_at",
        "sort_order": "desc",
    }
    assert tickets == [
        TicketRef(
            id="35436", url=f"{SERVER}/agent/tickets/35436", status="open", subject="Help, my printer is on fire!"
        )
    ]


@pytest.mark.parametrize("email", ["", "   ", "not-an-email", "ada@example.com status:closed", 'a"@example.com'])
def test_it_refuses_a_ticket_search_without_a_usable_email_before_sending(api, email):
    vendor = Zendesk(api)

    with pytest.raises(ConnectorError) as caught:
        zendesk_adapter(vendor).search_tickets(CustomerRef(id="C-1001", email=email))

    assert caught.value.permanent
    assert vendor.exchanges == []


def test_it_reads_a_ticket_as_flat_fields_with_custom_fields_by_id(api):
    vendor = Zendesk(api, (200, example("TicketResponseExample")))

    record = zendesk_adapter(vendor).read_object("ticket", "35436")

    assert vendor.exchanges[0].path == "/api/v2/tickets/35436"
    assert record["id"] == 35436
    assert record["status"] == "open"
    assert record["priority"] == "high"
    assert record["via.channel"] == "web"
    assert record["custom_fields.27642"] == "745"
    assert record["custom_fields.27648"] == "yes"


def test_it_reads_a_user(api):
    vendor = Zendesk(api, (200, operation_example("/api/v2/users/{user_id}", "get", "200")))

    record = zendesk_adapter(vendor).read_object("user", "35436")

    assert vendor.exchanges[0].path == "/api/v2/users/35436"
    assert record == {"id": 35436, "name": "Johnny Agent"}


@pytest.mark.parametrize(("obj", "object_id"), [("organization", "1"), ("ticket", "35436/comments"), ("user", "me")])
def test_it_refuses_an_unknown_object_or_a_non_numeric_id_before_sending(api, obj, object_id):
    vendor = Zendesk(api)

    with pytest.raises(ConnectorError):
        zendesk_adapter(vendor).read_object(obj, object_id)

    assert vendor.exchanges == []


def test_a_missing_ticket_is_not_found(api):
    vendor = Zendesk(api, (404, errors_body("RecordNotFound", "Not found")))

    with pytest.raises(NotFound):
        zendesk_adapter(vendor).read_object("ticket", "404")


def test_macros_are_a_clear_gap_of_the_contract(api):
    vendor = Zendesk(api)

    with pytest.raises(ConnectorError, match="not supported by the contracts we can test against"):
        zendesk_adapter(vendor).list_macros()

    assert vendor.exchanges == []


# --- Escalation tickets ------------------------------------------------------------------------------------------


def test_it_creates_an_escalation_ticket_from_the_draft(api, draft):
    vendor = Zendesk(api, (201, operation_example("/api/v2/tickets", "post", "201")))

    ticket = zendesk_adapter(vendor).create_ticket(draft, idempotency_key="esc-7d1f0c1e")

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("POST", "/api/v2/tickets")
    assert exchange.headers["Idempotency-Key"] == "esc-7d1f0c1e"
    sent = exchange.body["ticket"]
    assert sent["subject"] == "Refund for a double charge"
    assert sent["comment"] == {"body": ticket_body(draft), "public": False}
    assert sent["requester"] == {"email": "ada@example.com", "name": "ada@example.com"}
    assert sent["priority"] == "high"
    assert sent["tags"] == ["steward", "category_billing", "channel_web_chat"]
    assert sent["group_id"] == 2001
    assert sent["external_id"] == "7d1f0c1e-0000-4000-8000-000000000001"
    assert sent["custom_fields"] == [
        {"id": 360001, "value": "Billing"},
        {"id": 360002, "value": 0.42},
        {"id": 360003, "value": ["kb:refund-policy"]},
        {"id": 360004, "value": "2026-03-04T12:00:00+00:00"},
    ]
    assert ticket == TicketRef(
        id="35436", url=f"{SERVER}/agent/tickets/35436", status="open", subject="Help, my printer is on fire!"
    )


def test_the_ticket_body_is_a_readable_summary_then_the_transcript(draft):
    body = ticket_body(draft)

    summary, transcript = body.split("\n\n--- Transcript ---\n")
    assert summary.startswith("Escalated by Steward: refund above the automatic limit")
    assert "Customer: ada@example.com (id C-1001)" in summary
    assert "Steward's confidence: 42%" in summary
    assert "Suggested next step: Approve the refund of one charge." in summary
    assert "SLA due: 2026-03-04T12:00:00+00:00" in summary
    assert transcript == draft.transcript


@pytest.mark.parametrize(("ours", "theirs"), [(1, "urgent"), (2, "high"), (3, "normal"), (4, "low"), (5, "low")])
def test_our_priorities_map_onto_zendesks_four(ours, theirs):
    assert PRIORITIES[ours] == theirs


def test_a_ticket_for_an_anonymous_visitor_has_no_requester_and_an_unmapped_queue_no_group(api, draft):
    draft.customer_email = ""
    draft.queue = "nobody-maps-this"
    vendor = Zendesk(api, (201, example("TicketResponseExample")))

    zendesk_adapter(vendor).create_ticket(draft, idempotency_key="esc-2")

    sent = vendor.exchanges[0].body["ticket"]
    assert "requester" not in sent
    assert "group_id" not in sent


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({**CONFIG, "email": ""}, "config['email']"),
        ({**CONFIG, "custom_fields": {"mood": 1}}, "a ticket draft does not have: mood"),
        ({**CONFIG, "custom_fields": {"severity": "Severity"}}, "not Zendesk field ids for: severity"),
        ({**CONFIG, "groups": {"billing": "Billing team"}}, "config['groups']"),
        ({**CONFIG, "tags": ["needs review"]}, "config['tags']"),
    ],
)
def test_a_configuration_zendesk_could_not_use_is_refused_with_the_reason(config, problem):
    [reason] = ZendeskAdapter.config_errors(config)
    assert problem in reason

    with pytest.raises(ConnectorError, match=problem.replace("[", "\\[").replace("]", "\\]")) as caught:
        ZendeskAdapter(Connector(key="zendesk", name="Zendesk", base_url=SERVER, config=config), credential="t")
    assert caught.value.permanent


def test_the_documented_configuration_is_valid():
    assert ZendeskAdapter.config_errors(CONFIG) == []


# --- Updates -----------------------------------------------------------------------------------------------------


def test_it_adds_a_private_comment(api):
    vendor = Zendesk(api, (200, example("TicketUpdateResponseExample")))

    zendesk_adapter(vendor).add_comment("35436", "Customer confirmed the address.", public=False, idempotency_key="c-1")

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("PUT", "/api/v2/tickets/35436")
    assert exchange.body == {"ticket": {"comment": {"body": "Customer confirmed the address.", "public": False}}}


def test_it_sets_priority_and_moves_the_ticket_to_the_queues_group(api):
    vendor = Zendesk(api, (200, example("TicketUpdateResponseExample")))

    zendesk_adapter(vendor).set_priority("35436", 1, queue="billing", idempotency_key="p-1")

    assert vendor.exchanges[0].body == {"ticket": {"priority": "urgent", "group_id": 2001}}


@pytest.mark.parametrize(("priority", "queue"), [(0, ""), (6, ""), (2, "nobody-maps-this")])
def test_it_refuses_a_priority_off_our_scale_or_an_unmapped_queue_before_sending(api, priority, queue):
    vendor = Zendesk(api)

    with pytest.raises(ConnectorError):
        zendesk_adapter(vendor).set_priority("35436", priority, queue=queue, idempotency_key="p-2")

    assert vendor.exchanges == []


def test_it_writes_a_ticket_status_and_returns_what_zendesk_stored(api):
    answer = example("TicketUpdateResponseExample")
    answer["ticket"]["status"] = "pending"
    vendor = Zendesk(api, (200, answer))

    stored = zendesk_adapter(vendor).write_field("ticket", "35436", "status", "pending", idempotency_key="w-1")

    assert vendor.exchanges[0].body == {"ticket": {"status": "pending"}}
    assert stored == "pending"


@pytest.mark.parametrize(
    ("obj", "field_path", "value"),
    [
        ("ticket", "status", "escalated"),
        ("ticket", "priority", "critical"),
        ("ticket", "subject", "x"),
        ("user", "name", "x"),
    ],
)
def test_it_refuses_a_write_outside_ticket_priority_and_status_before_sending(api, obj, field_path, value):
    vendor = Zendesk(api)

    with pytest.raises(ConnectorError) as caught:
        zendesk_adapter(vendor).write_field(obj, "35436", field_path, value, idempotency_key="w-2")

    assert caught.value.permanent
    assert vendor.exchanges == []


# --- The harness itself ------------------------------------------------------------------------------------------


def test_the_harness_rejects_a_request_outside_the_contract(api):
    from openapi_core.templating.paths.exceptions import PathNotFound
    from openapi_core.validation.request.exceptions import InvalidRequestBody

    vendor = Zendesk(api, (200, example("TicketUpdateResponseExample")))
    http = zendesk_adapter(vendor).http

    with pytest.raises(InvalidRequestBody):
        http.request("PUT", "/api/v2/tickets/35436", what="t", retry=False, json={"ticket": {"status": "escalated"}})
    with pytest.raises(PathNotFound):  # the contract spells paths without Zendesk's optional .json suffix
        http.request("GET", "/api/v2/search.json", what="t", retry=True, params={"query": "type:ticket"})
    assert vendor.exchanges == []


# --- Failure modes -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refused_token_disables_the_connector_and_tells_its_owner(
    api, mailoutbox, django_capture_on_commit_callbacks
):
    owner = UserFactory(username="olga_owner")
    connector = Connector.objects.create(
        key="zendesk", name="Zendesk", family="helpdesk", adapter="zendesk", base_url=SERVER, config=CONFIG, owner=owner
    )
    vendor = Zendesk(api, (401, errors_body("Unauthorized", "Couldn't authenticate you")))
    adapter = zendesk_adapter(vendor, connector)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConnectorError) as caught:
        call(connector, adapter.health_check)

    assert caught.value.auth
    assert len(vendor.exchanges) == 1  # a refused credential is not retried
    connector.refresh_from_db()
    assert not connector.enabled
    assert "credential refused (401)" in connector.disabled_reason
    assert AuditRecord.objects.filter(event_type=EventType.CONFIG_CHANGED, subject_id=str(connector.pk)).exists()
    assert [m.to for m in mailoutbox] == [[owner.email]]


def test_a_rate_limited_read_waits_as_long_as_zendesk_asks_then_retries(api):
    sleeps: list[float] = []
    vendor = Zendesk(
        api,
        (429, errors_body("TooManyRequests", "Rate limit exceeded"), {"Retry-After": "3"}),
        (200, ticket_search_answer()),
    )

    tickets = zendesk_adapter(vendor, sleeps=sleeps).search_tickets(CustomerRef(id="C-1001", email="ada@example.com"))

    assert sleeps == [3.0]
    assert len(vendor.exchanges) == 2
    assert [t.id for t in tickets] == ["35436"]


def test_a_rate_limit_longer_than_a_turn_fails_at_once_as_transient(api):
    sleeps: list[float] = []
    vendor = Zendesk(api, (429, errors_body("TooManyRequests", "Rate limit exceeded"), {"Retry-After": "93"}))

    with pytest.raises(ConnectorError) as caught:
        zendesk_adapter(vendor, sleeps=sleeps).read_object("ticket", "35436")

    assert (caught.value.status, caught.value.retry_after, caught.value.permanent) == (429, 93.0, False)
    assert sleeps == []
    assert len(vendor.exchanges) == 1


def test_a_read_is_retried_through_server_errors(api):
    sleeps: list[float] = []
    unavailable = (503, errors_body("ServiceUnavailable", "Try again"))
    vendor = Zendesk(api, unavailable, unavailable, (200, example("TicketResponseExample")))

    record = zendesk_adapter(vendor, sleeps=sleeps).read_object("ticket", "35436")

    assert record["id"] == 35436
    assert len(vendor.exchanges) == 3
    assert len(sleeps) == 2  # backoff with jitter between attempts


def test_a_read_that_keeps_failing_ends_in_a_clear_transient_error(api):
    failure = (500, errors_body("InternalError", "Something went wrong"))
    vendor = Zendesk(api, failure, failure, failure)

    with pytest.raises(ConnectorError, match="Zendesk ticket read: 500 Something went wrong") as caught:
        zendesk_adapter(vendor).read_object("ticket", "35436")

    assert not caught.value.permanent
    assert len(vendor.exchanges) == 3


@pytest.mark.django_db
def test_a_ticket_creation_that_failed_midway_is_never_repeated(api, draft):
    connector = Connector.objects.create(
        key="zendesk", name="Zendesk", family="helpdesk", adapter="zendesk", base_url=SERVER, config=CONFIG,
        owner=UserFactory(username="olga_owner"),
    )  # fmt: skip
    vendor = Zendesk(api, (500, errors_body("InternalError", "Something went wrong")))
    adapter = zendesk_adapter(vendor, connector)

    def create() -> TicketRef:
        return adapter.create_ticket(draft, idempotency_key="esc-9")

    for _ in range(2):
        with pytest.raises(ConnectorError):
            idempotent(connector, "ticket_create", "esc-9", create, remote_dedupes=adapter.honours_idempotency)

    assert len(vendor.exchanges) == 1  # not retried by the client, and refused by the receipt the second time
    assert WriteReceipt.objects.get(idempotency_key="esc-9").state == WriteReceipt.State.UNKNOWN


def test_a_refused_ticket_is_a_permanent_error_with_zendesks_reason(api, draft):
    # {"error", "description"}: the error format the contract describes (ListSearchResults, "Errors JSON Format").
    vendor = Zendesk(api, (422, {"error": "RecordInvalid", "description": "Record validation errors"}))

    with pytest.raises(ConnectorError) as caught:
        zendesk_adapter(vendor).create_ticket(draft, idempotency_key="esc-5")

    assert caught.value.permanent
    assert str(caught.value) == "Zendesk ticket creation: refused (422) RecordInvalid: Record validation errors"


def test_a_malformed_answer_is_a_clear_error(api):
    vendor = Zendesk(api, (200, b"<html>Zendesk is down for maintenance</html>"), validate=False)

    with pytest.raises(ConnectorError, match="not valid JSON"):
        zendesk_adapter(vendor).read_object("ticket", "35436")


def test_a_created_ticket_without_an_id_is_schema_drift(api, draft):
    # The contract marks no ticket field as required, so this answer is valid for it: the adapter must catch it.
    answer = example("TicketResponseExample")
    del answer["ticket"]["id"]
    vendor = Zendesk(api, (201, answer))

    with pytest.raises(ConnectorError, match="has no 'id'"):
        zendesk_adapter(vendor).create_ticket(draft, idempotency_key="esc-4")


def test_search_results_of_the_wrong_type_are_schema_drift(api):
    vendor = Zendesk(api, (200, {"results": {"ticket": 35436}, "count": 1}), validate=False)

    with pytest.raises(ConnectorError, match="'results' is dict"):
        zendesk_adapter(vendor).search_tickets(CustomerRef(id="C-1001", email="ada@example.com"))
