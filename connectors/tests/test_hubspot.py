"""The HubSpot adapter against HubSpot's own CRM v3 OpenAPI documents (contacts, companies, tickets): every request it
sends is validated by the contract harness against the document of its object type, and so is every canned answer.

The documents carry almost no examples (``"example": null`` nearly everywhere); canned records are built on the one
they have, SimplePublicObject's, and the harness validates each against the schema.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from functools import cache
from typing import Any

import httpx
import pytest

from connectors.adapters.hubspot import HubSpotAdapter, _property_value
from connectors.base import ConnectorError, CustomerRef, NotFound
from connectors.gateway import call
from connectors.models import Connector
from connectors.tests.contracts import CONTRACTS_DIR, ContractTransport, Exchange, contract_or_skip
from governance.models import AuditRecord, EventType
from governance.tests.factories import UserFactory

SPECS = {
    "contacts": "hubspot/contacts.v3.json",
    "companies": "hubspot/companies.v3.json",
    "tickets": "hubspot/tickets.v3.json",
}
SERVER = "https://api.hubapi.com"
# The contracts list only oauth2 security, which openapi-core does not check (it warns); the bearer header is asserted
# by the tests themselves.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")
TOKEN = "pat-eu1-00000000-0000-0000-0000-000000000000"


# --- The vendor --------------------------------------------------------------------------------------------------


@cache
def _document(name: str = "contacts") -> dict[str, Any]:
    return json.loads((CONTRACTS_DIR / SPECS[name]).read_text())


def hubspot_object(object_id: str = "512", **properties: str) -> dict[str, Any]:
    """Return a CRM record: the contract's SimplePublicObject example with this id and these properties."""
    record = copy.deepcopy(_document()["components"]["schemas"]["SimplePublicObject"]["example"])
    record.update(id=object_id, properties=properties)
    return record


def search_answer(*records: dict[str, Any]) -> dict[str, Any]:
    return {"total": len(records), "results": list(records)}


def error_body() -> dict[str, Any]:
    """Return the contract's own Error example, validated against the Error schema.

    HubSpot's documents declare error responses as ``*/*``, which openapi-core does not decode as JSON, so the
    harness cannot validate error answers; their body is checked against the schema here instead.
    """
    from openapi_schema_validator import OAS30Validator

    schemas = _document()["components"]
    body = copy.deepcopy(schemas["schemas"]["Error"]["example"])
    OAS30Validator({"$ref": "#/components/schemas/Error", "components": schemas}).validate(body)
    return body


class HubSpot(httpx.BaseTransport):
    """Plays HubSpot from a script of answers, one per request, in order; each request is validated against the
    contract of its object type (``/crm/v3/objects/{contacts|companies|tickets}``).

    Success answers are validated too; error answers cannot be (see ``error_body``), and ``validate=False`` is for
    answers broken on purpose (malformed JSON, schema drift).
    """

    def __init__(self, apis: dict[str, Any], *answers: tuple[Any, ...], validate: bool = True) -> None:
        self.answers = list(answers)
        self.validate = validate
        self.exchanges: list[Exchange] = []
        self.transports = {
            name: ContractTransport(api=api, server=SERVER, responder=self._answer, exchanges=self.exchanges)
            for name, api in apis.items()
        }
        self._current: ContractTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")  # ["", "crm", "v3", "objects", <type>, ...]
        if parts[1:4] != ["crm", "v3", "objects"] or parts[4] not in self.transports:
            raise AssertionError(f"{request.method} {request.url.path} is outside every HubSpot contract we hold")
        self._current = self.transports[parts[4]]
        return self._current.handle_request(request)

    def _answer(self, exchange: Exchange) -> tuple[Any, ...]:
        answer = self.answers.pop(0)
        assert self._current is not None
        self._current.validate_response = self.validate and answer[0] < 400
        return answer


@pytest.fixture
def apis() -> dict[str, Any]:
    return {name: contract_or_skip(path) for name, path in SPECS.items()}


def unsaved_connector(**config: Any) -> Connector:
    return Connector(key="hubspot", name="HubSpot", family="crm", adapter="hubspot", config=config)


def hubspot_adapter(
    vendor: HubSpot, connector: Connector | None = None, sleeps: list[float] | None = None
) -> HubSpotAdapter:
    return HubSpotAdapter(
        connector or unsaved_connector(),
        credential=TOKEN,
        transport=vendor,
        sleep=(sleeps if sleeps is not None else []).append,
    )


# --- Lookups -----------------------------------------------------------------------------------------------------


def test_it_finds_a_contact_by_email_with_the_private_app_token(apis):
    ada = hubspot_object("512", email="ada@example.com", firstname="Ada", lastname="Lovelace")
    vendor = HubSpot(apis, (200, search_answer(ada)))

    customers = hubspot_adapter(vendor).find_customers(email=" ada@example.com ")

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("POST", "/crm/v3/objects/contacts/search")
    # The harness cannot check bearer auth (the contracts list only oauth2, which openapi-core skips): check it here.
    assert exchange.headers["Authorization"] == f"Bearer {TOKEN}"
    assert exchange.body == {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]}],
        "properties": ["email", "firstname", "lastname"],
        "limit": 10,
        "after": "0",
        "sorts": [],
    }
    assert customers == [CustomerRef(id="512", email="ada@example.com", name="Ada Lovelace")]


def test_a_lookup_by_several_identifiers_must_match_them_all(apis):
    vendor = HubSpot(apis, (200, search_answer()))
    connector = unsaved_connector(external_id_property="brewline_customer_id")

    assert (
        hubspot_adapter(vendor, connector).find_customers(
            email="ada@example.com", phone="+4930123", external_id="C-1001"
        )
        == []
    )

    [group] = vendor.exchanges[0].body["filterGroups"]  # one group: HubSpot ANDs the filters inside it
    assert group["filters"] == [
        {"propertyName": "email", "operator": "EQ", "value": "ada@example.com"},
        {"propertyName": "phone", "operator": "EQ", "value": "+4930123"},
        {"propertyName": "brewline_customer_id", "operator": "EQ", "value": "C-1001"},
    ]


@pytest.mark.parametrize(
    "lookup",
    [{}, {"email": "   "}, {"email": "not-an-email"}, {"email": "ada @example.com"}, {"external_id": "C-1001"}],
)
def test_it_refuses_a_lookup_with_nothing_usable_to_look_up_before_sending(apis, lookup):
    vendor = HubSpot(apis)

    with pytest.raises(ConnectorError) as caught:
        hubspot_adapter(vendor).find_customers(**lookup)

    assert caught.value.permanent
    assert vendor.exchanges == []


# --- Reads -------------------------------------------------------------------------------------------------------


def test_it_reads_a_contact_as_properties_paths(apis):
    vendor = HubSpot(apis, (200, hubspot_object("512", email="ada@example.com", lifecyclestage="customer")))

    record = hubspot_adapter(vendor).read_object("contact", "512")

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("GET", "/crm/v3/objects/contacts/512")
    assert exchange.query == {"properties": "email,firstname,lastname,phone,company,lifecyclestage"}
    assert record == {
        "id": "512",
        "createdAt": "2019-10-30T03:30:17.883Z",
        "updatedAt": "2019-12-07T16:50:06.678Z",
        "archived": False,
        "properties.email": "ada@example.com",
        "properties.lifecyclestage": "customer",
    }


@pytest.mark.parametrize(("obj", "path"), [("company", "companies"), ("ticket", "tickets")])
def test_it_reads_companies_and_tickets_against_their_own_contracts(apis, obj, path):
    connector = unsaved_connector(properties={obj: ["name", "hs_ticket_priority"]})
    vendor = HubSpot(apis, (200, hubspot_object("9001", hs_ticket_priority="HIGH")))

    record = hubspot_adapter(vendor, connector).read_object(obj, "9001")

    assert vendor.exchanges[0].path == f"/crm/v3/objects/{path}/9001"
    assert vendor.exchanges[0].query == {"properties": "name,hs_ticket_priority"}
    assert record["properties.hs_ticket_priority"] == "HIGH"


@pytest.mark.parametrize(("obj", "object_id"), [("deal", "1"), ("contact", "ada@example.com"), ("contact", "1/../2")])
def test_it_refuses_an_unknown_object_or_a_non_numeric_id_before_sending(apis, obj, object_id):
    vendor = HubSpot(apis)

    with pytest.raises(ConnectorError):
        hubspot_adapter(vendor).read_object(obj, object_id)

    assert vendor.exchanges == []


def test_a_missing_record_is_not_found(apis):
    vendor = HubSpot(apis, (404, error_body()))

    with pytest.raises(NotFound):
        hubspot_adapter(vendor).read_object("contact", "404")


def test_the_health_check_reads_one_contact(apis):
    vendor = HubSpot(apis, (200, {"results": [hubspot_object()]}))

    hubspot_adapter(vendor).health_check()

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path, exchange.query) == ("GET", "/crm/v3/objects/contacts", {"limit": "1"})


# --- Writes ------------------------------------------------------------------------------------------------------


def test_it_writes_one_property_and_returns_what_hubspot_stored(apis):
    vendor = HubSpot(apis, (200, hubspot_object("512", lifecyclestage="customer")))

    stored = hubspot_adapter(vendor).write_field(
        "contact", "512", "properties.lifecyclestage", "customer", idempotency_key="w-1"
    )

    [exchange] = vendor.exchanges
    assert (exchange.method, exchange.path) == ("PATCH", "/crm/v3/objects/contacts/512")
    assert exchange.body == {"properties": {"lifecyclestage": "customer"}}
    assert stored == "customer"


@pytest.mark.parametrize(
    ("value", "sent"),
    [(None, ""), (True, "true"), (False, "false"), (3, "3"), (Decimal("12.50"), "12.50"), (["a", "b"], "a;b")],
)
def test_property_values_are_sent_as_the_strings_hubspot_takes(value, sent):
    assert _property_value(value) == sent


@pytest.mark.parametrize("field_path", ["email", "id", "properties.", "properties.address.city"])
def test_it_refuses_a_write_to_anything_but_a_property_before_sending(apis, field_path):
    vendor = HubSpot(apis)

    with pytest.raises(ConnectorError) as caught:
        hubspot_adapter(vendor).write_field("contact", "512", field_path, "x", idempotency_key="w-2")

    assert caught.value.permanent
    assert vendor.exchanges == []


def test_it_tags_a_contact_through_the_configured_checkbox_property(apis):
    connector = unsaved_connector(tag_property="steward_tags")
    vendor = HubSpot(
        apis,
        (200, hubspot_object("512", steward_tags="vip")),
        (200, hubspot_object("512", steward_tags="vip;churn_risk")),
    )

    hubspot_adapter(vendor, connector).add_tag("512", "churn_risk", idempotency_key="t-1")

    read, write = vendor.exchanges
    assert (read.method, read.query) == ("GET", {"properties": "steward_tags"})
    assert (write.method, write.body) == ("PATCH", {"properties": {"steward_tags": "vip;churn_risk"}})


def test_a_tag_already_there_is_not_written_again(apis):
    connector = unsaved_connector(tag_property="steward_tags")
    vendor = HubSpot(apis, (200, hubspot_object("512", steward_tags="vip;churn_risk")))

    hubspot_adapter(vendor, connector).add_tag("512", "vip", idempotency_key="t-2")

    assert [e.method for e in vendor.exchanges] == ["GET"]


def test_tagging_without_a_tag_property_is_a_clear_error(apis):
    vendor = HubSpot(apis)

    with pytest.raises(ConnectorError, match="tag_property"):
        hubspot_adapter(vendor).add_tag("512", "vip", idempotency_key="t-3")

    assert vendor.exchanges == []


def test_notes_and_tasks_are_refused_as_outside_the_contracts(apis):
    vendor = HubSpot(apis)
    adapter = hubspot_adapter(vendor)

    with pytest.raises(ConnectorError, match="not supported by the contracts we can test against"):
        adapter.add_note("512", "Asked about a refund.", idempotency_key="n-1")
    with pytest.raises(ConnectorError, match="not supported by the contracts we can test against"):
        adapter.create_task("512", "Call back", None, idempotency_key="n-2")

    assert vendor.exchanges == []


@pytest.mark.parametrize(
    "config",
    [{"properties": {"deal": ["amount"]}}, {"properties": {"contact": "email"}}, {"tag_property": ["tags"]}, []],
)
def test_a_configuration_hubspot_could_not_use_is_refused(config):
    assert HubSpotAdapter.config_errors(config)

    with pytest.raises(ConnectorError) as caught:
        HubSpotAdapter(Connector(key="hubspot", name="HubSpot", config=config), credential=TOKEN)
    assert caught.value.permanent


def test_the_documented_configuration_is_valid():
    config = {
        "properties": {"contact": ["email", "plan"], "ticket": ["subject"]},
        "external_id_property": "brewline_customer_id",
        "tag_property": "steward_tags",
    }
    assert HubSpotAdapter.config_errors(config) == []


def test_it_refuses_to_start_without_a_token():
    with pytest.raises(ConnectorError, match="private-app token") as caught:
        HubSpotAdapter(unsaved_connector(), credential=None)

    assert caught.value.permanent


# --- The harness itself ------------------------------------------------------------------------------------------


def test_the_harness_rejects_a_search_outside_the_contract(apis):
    from openapi_core.validation.request.exceptions import InvalidRequestBody

    vendor = HubSpot(apis, (200, search_answer()))
    http = hubspot_adapter(vendor).http
    filters = [{"propertyName": "email", "operator": "EQUALS", "value": "ada@example.com"}]
    body = {"filterGroups": [{"filters": filters}], "properties": [], "limit": 1, "after": "0", "sorts": []}

    with pytest.raises(InvalidRequestBody):  # EQUALS is not one of the contract's operators
        http.request("POST", "/crm/v3/objects/contacts/search", what="t", retry=False, json=body)
    with pytest.raises(InvalidRequestBody):  # the contract requires after/limit/properties/sorts
        http.request("POST", "/crm/v3/objects/contacts/search", what="t", retry=False, json={"filterGroups": []})
    assert vendor.exchanges == []


# --- Failure modes -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refused_token_disables_the_connector_and_tells_its_owner(
    apis, mailoutbox, django_capture_on_commit_callbacks
):
    owner = UserFactory(username="olga_owner")
    connector = Connector.objects.create(key="hubspot", name="HubSpot", family="crm", adapter="hubspot", owner=owner)
    vendor = HubSpot(apis, (401, error_body()))
    adapter = hubspot_adapter(vendor, connector)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConnectorError) as caught:
        call(connector, adapter.health_check)

    assert caught.value.auth
    assert len(vendor.exchanges) == 1  # a refused credential is not retried
    connector.refresh_from_db()
    assert not connector.enabled
    assert "credential refused (401)" in connector.disabled_reason
    assert AuditRecord.objects.filter(event_type=EventType.CONFIG_CHANGED, subject_id=str(connector.pk)).exists()
    assert [m.to for m in mailoutbox] == [[owner.email]]


def test_a_rate_limited_search_waits_as_long_as_hubspot_asks_then_retries(apis):
    sleeps: list[float] = []
    vendor = HubSpot(apis, (429, error_body(), {"Retry-After": "1"}), (200, search_answer(hubspot_object())))

    customers = hubspot_adapter(vendor, sleeps=sleeps).find_customers(email="ada@example.com")

    assert sleeps == [1.0]
    assert [c.id for c in customers] == ["512"]


def test_a_rate_limit_without_retry_after_backs_off_and_retries(apis):
    # HubSpot documents its X-HubSpot-RateLimit-* headers, not a Retry-After on every 429: then the backoff applies.
    sleeps: list[float] = []
    vendor = HubSpot(apis, (429, error_body()), (200, hubspot_object()))

    hubspot_adapter(vendor, sleeps=sleeps).read_object("contact", "512")

    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.25
    assert len(vendor.exchanges) == 2


def test_a_read_that_keeps_failing_ends_in_a_clear_transient_error(apis):
    sleeps: list[float] = []
    vendor = HubSpot(apis, (502, error_body()), (503, error_body()), (500, error_body()))

    with pytest.raises(ConnectorError, match="HubSpot contact read: 500") as caught:
        hubspot_adapter(vendor, sleeps=sleeps).read_object("contact", "512")

    assert not caught.value.permanent
    assert len(vendor.exchanges) == 3
    assert len(sleeps) == 2


def test_a_write_is_not_retried_after_a_server_error(apis):
    vendor = HubSpot(apis, (503, error_body()))

    with pytest.raises(ConnectorError) as caught:
        hubspot_adapter(vendor).write_field("contact", "512", "properties.phone", "+4930123", idempotency_key="w-3")

    assert not caught.value.permanent  # outcome unknown: the gateway's receipt keeps it from being repeated
    assert len(vendor.exchanges) == 1


def test_a_refused_write_is_a_permanent_error(apis):
    vendor = HubSpot(apis, (400, error_body()))

    with pytest.raises(ConnectorError) as caught:
        hubspot_adapter(vendor).write_field("contact", "512", "properties.nosuch", "x", idempotency_key="w-4")

    assert caught.value.permanent
    # HubSpot's own message and category, from the contract's Error example.
    assert str(caught.value) == (
        "HubSpot contact update: refused (400) Invalid input (details will vary based on the error) (VALIDATION_ERROR)"
    )


def test_a_malformed_answer_is_a_clear_error(apis):
    vendor = HubSpot(apis, (200, b'{"results": [{"id": "512",'), validate=False)

    with pytest.raises(ConnectorError, match="not valid JSON"):
        hubspot_adapter(vendor).find_customers(email="ada@example.com")


def test_a_record_without_properties_is_schema_drift(apis):
    drifted = hubspot_object()
    del drifted["properties"]
    vendor = HubSpot(apis, (200, drifted), validate=False)

    with pytest.raises(ConnectorError, match="has no 'properties'"):
        hubspot_adapter(vendor).read_object("contact", "512")


def test_a_search_answer_without_results_is_schema_drift(apis):
    vendor = HubSpot(apis, (200, {"total": 0}), validate=False)

    with pytest.raises(ConnectorError, match="has no 'results'"):
        hubspot_adapter(vendor).find_customers(email="ada@example.com")
