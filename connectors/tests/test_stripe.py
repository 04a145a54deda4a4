"""The Stripe adapter against Stripe's own OpenAPI document (API 2023-08-16) and its own fixture objects.

Every request the adapter sends is validated by the contract harness (openapi-core); because openapi-core 0.23 cannot
read Stripe's nested form bodies (``shipping[address][city]=…``) and ignores unknown form fields, each POST body is
also decoded the way Stripe decodes it and validated against the operation's requestBody schema with
OAS30Validator (shared/contracts/USAGE.md). Canned answers are Stripe's fixture objects, altered only in values the
schema allows, and the harness validates them as responses.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.adapters.stripe import StripeAdapter, form_encode, from_minor_units, to_minor_units
from connectors.base import Address, ConnectorError, NotFound, OrderSummary, RefundResult
from connectors.gateway import call
from connectors.models import Connector
from connectors.tests.contracts import CONTRACTS_DIR, ContractTransport, Exchange, contract_or_skip
from governance.tests.factories import UserFactory

SPEC = "stripe/spec3.2023-08-16.customer-service.yaml"
SERVER = "https://api.stripe.com"
SECRET = "sk_test_steward_contract_tests"


# --- The vendor: Stripe's contract and fixtures -------------------------------------------------------------------


@pytest.fixture
def api() -> Any:
    contract_or_skip(SPEC)  # skips when the contracts folder is absent
    return _stripe_api()


@cache
def _stripe_api() -> Any:
    """The contract with one more in-memory fix than compat.py makes: openapi-core 0.23 raises on Stripe's deepObject
    *object* query parameters (``created[gte]=…`` on every list endpoint) even when they are absent, as compat.py
    notes for the array ones; they are read as form parameters instead. The adapter never sends them."""
    from openapi_core import OpenAPI

    spec = copy.deepcopy(_raw_spec())
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "query" and parameter.get("style") == "deepObject":
                    parameter.update(style="form", explode=True)
    return OpenAPI.from_dict(spec)


@pytest.fixture
def fx(api: Any) -> dict[str, Any]:
    """Stripe's own example objects for this API version (a fresh copy per test: tests alter them)."""
    return copy.deepcopy(_fixtures())


@cache
def _fixtures() -> dict[str, Any]:
    return json.loads((CONTRACTS_DIR / "stripe" / "fixtures3.2023-08-16.json").read_text())["resources"]


def stripe_list(url: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "data": list(items), "has_more": False, "url": url}


def stripe_error(kind: str, message: str, code: str = "") -> dict[str, Any]:
    """An error body of the contract's ``error`` schema (``{"error": {"type", "message", "code"}}``)."""
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


def replay(*answers: Any) -> Callable[[Exchange], Any]:
    """Answer requests in order; an exception instance is raised instead (a connection lost mid-call)."""
    queue = list(answers)

    def responder(exchange: Exchange) -> Any:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return responder


class Stripe:
    """The adapter wired to a ContractTransport, with what it sent and how long it was told to sleep."""

    def __init__(self, api: Any, *answers: Any, validate_response: bool = True, connector: Connector | None = None):
        self.sleeps: list[float] = []
        self.transport = ContractTransport(
            api=api, server=SERVER, responder=_checking_forms(replay(*answers)), validate_response=validate_response
        )
        self.connector = connector or Connector(key="stripe", name="Stripe", family="commerce", adapter="stripe")
        self.adapter = StripeAdapter(
            self.connector, credential=SECRET, transport=self.transport, sleep=self.sleeps.append
        )

    @property
    def sent(self) -> list[Exchange]:
        return self.transport.exchanges

    def form(self, index: int = -1) -> dict[str, str]:
        return self.sent[index].body


# --- Nested form bodies against the requestBody schema ------------------------------------------------------------


def _checking_forms(responder: Callable[[Exchange], Any]) -> Callable[[Exchange], Any]:
    def checked(exchange: Exchange) -> Any:
        if exchange.method == "POST":
            errors = form_body_errors(exchange.method, exchange.path, exchange.body or {})
            assert not errors, f"{exchange.method} {exchange.path} is outside Stripe's contract: {errors}"
        return responder(exchange)

    return checked


@cache
def _raw_spec() -> dict[str, Any]:
    from compat import load_spec  # on sys.path once contract_or_skip has loaded the contract

    return load_spec(SPEC)


def form_body_errors(method: str, path: str, form: dict[str, str]) -> list[str]:
    """Decode a form body as Stripe does (``a[b][0]=v`` → nested) and validate it against the operation's schema."""
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    spec = _raw_spec()
    operation = next(
        ops[method.lower()]
        for template, ops in spec["paths"].items()
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method.lower() in ops
    )
    schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    registry = Registry().with_resource("", Resource.from_contents(spec, default_specification=DRAFT4))

    def valid(value: Any, branch: dict[str, Any]) -> bool:
        return OAS30Validator(branch, registry=registry).is_valid(value)

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = registry.resolver().lookup(node["$ref"]).contents
        return node

    def coerce(value: Any, node: dict[str, Any]) -> Any:
        """Turn form strings into the types the schema asks for (form encoding carries only strings)."""
        node = resolve(node)
        for branch in node.get("anyOf", []):
            candidate = coerce(value, branch)
            if valid(candidate, branch):
                return candidate
        kind = node.get("type")
        if isinstance(value, dict) and kind == "array":
            return [coerce(value[k], node.get("items", {})) for k in sorted(value, key=int)]
        if isinstance(value, dict):
            extra = node.get("additionalProperties")
            fallback = extra if isinstance(extra, dict) else {}
            return {k: coerce(v, node.get("properties", {}).get(k, fallback)) for k, v in value.items()}
        if kind == "integer" and re.fullmatch(r"-?\d+", value):
            return int(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
        return value

    nested: dict[str, Any] = {}
    for key, value in form.items():
        parts = re.findall(r"[^\[\]]+", key)
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return [error.message for error in OAS30Validator(schema, registry=registry).iter_errors(coerce(nested, schema))]


# --- Reads --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ("customer", "/v1/customers/{id}"),
        ("subscription", "/v1/subscriptions/{id}"),
        ("charge", "/v1/charges/{id}"),
        ("payment_intent", "/v1/payment_intents/{id}"),
        ("refund", "/v1/refunds/{id}"),
    ],
)
def test_it_reads_each_object_from_its_own_endpoint_with_the_pinned_version(api, fx, obj, path):
    stripe = Stripe(api, (200, fx[obj]))

    record = stripe.adapter.read_object(obj, fx[obj]["id"])

    (sent,) = stripe.sent
    assert (sent.method, sent.path) == ("GET", path.format(id=fx[obj]["id"]))
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.headers["Stripe-Version"] == "2023-08-16"
    assert record["id"] == fx[obj]["id"]
    assert record["object"] == obj


def test_a_read_flattens_nested_fields_to_dotted_paths(api, fx):
    fx["customer"]["shipping"] = {
        "address": {"city": "Leeds", "country": "GB", "line1": "1 Kirkgate", "line2": None, "postal_code": "LS1 6BH"},
        "name": "Ada Lovelace",
        "phone": None,
    }
    stripe = Stripe(api, (200, fx["customer"]))

    record = stripe.adapter.read_object("customer", fx["customer"]["id"])

    assert record["shipping.address.city"] == "Leeds"
    assert record["invoice_settings.footer"] is None


def test_a_deleted_customer_reads_as_not_found(api, fx):
    stripe = Stripe(api, (200, fx["deleted_customer"]))

    with pytest.raises(NotFound, match="deleted"):
        stripe.adapter.read_object("customer", fx["deleted_customer"]["id"])


def test_a_missing_object_is_not_found(api):
    stripe = Stripe(api, (404, stripe_error("invalid_request_error", "No such charge: 'ch_nope'", "resource_missing")))

    with pytest.raises(NotFound):
        stripe.adapter.read_object("charge", "ch_nope")


def test_it_refuses_objects_it_does_not_know_before_sending(api):
    stripe = Stripe(api)

    with pytest.raises(ConnectorError, match="not 'invoice'") as caught:
        stripe.adapter.read_object("invoice", "in_1")

    assert caught.value.permanent
    assert stripe.sent == []


def test_orders_are_the_customers_payment_intents_in_major_units(api, fx):
    pounds = dict(fx["payment_intent"], id="pi_pounds", amount=1250, currency="gbp", status="succeeded")
    pounds.update(customer="cus_Oaxlz8kB0PJWGa", created=1700000000)
    yen = dict(fx["payment_intent"], id="pi_yen", amount=500, currency="jpy", customer="cus_Oaxlz8kB0PJWGa")
    stripe = Stripe(api, (200, stripe_list("/v1/payment_intents", pounds, yen)))

    orders = stripe.adapter.list_orders("cus_Oaxlz8kB0PJWGa")

    (sent,) = stripe.sent
    assert (sent.method, sent.path) == ("GET", "/v1/payment_intents")
    assert sent.query == {"customer": "cus_Oaxlz8kB0PJWGa", "limit": "20"}
    assert orders == [
        OrderSummary(
            id="pi_pounds", status="succeeded", placed_at="2023-11-14T22:13:20+00:00", total="12.50", currency="GBP"
        ),
        OrderSummary(
            id="pi_yen",
            status="requires_payment_method",
            placed_at="2009-02-13T23:31:30+00:00",
            total="500",
            currency="JPY",
        ),
    ]


def test_the_health_check_lists_one_customer(api, fx):
    stripe = Stripe(api, (200, stripe_list("/v1/customers", fx["customer"])))

    stripe.adapter.health_check()

    (sent,) = stripe.sent
    assert (sent.method, sent.path, sent.query) == ("GET", "/v1/customers", {"limit": "1"})


# --- Subscriptions ------------------------------------------------------------------------------------------------


def test_pausing_voids_collection_and_sends_the_idempotency_key(api, fx):
    subscription = dict(fx["subscription"], pause_collection={"behavior": "void", "resumes_at": None})
    stripe = Stripe(api, (200, subscription))

    state = stripe.adapter.pause_subscription(subscription["id"], idempotency_key="approval-41")

    (sent,) = stripe.sent
    assert (sent.method, sent.path) == ("POST", f"/v1/subscriptions/{subscription['id']}")
    assert sent.body == {"pause_collection[behavior]": "void"}
    assert sent.headers["Idempotency-Key"] == "approval-41"
    assert state == {
        "id": subscription["id"],
        "status": "active",
        "collection_paused": True,
        "pause_behavior": "void",
        "cancel_at_period_end": False,
    }


def test_resuming_unsets_pause_collection_with_an_empty_value(api, fx):
    stripe = Stripe(api, (200, dict(fx["subscription"], pause_collection=None)))

    state = stripe.adapter.resume_subscription(fx["subscription"]["id"], idempotency_key="approval-42")

    assert stripe.form() == {"pause_collection": ""}
    assert stripe.sent[0].headers["Idempotency-Key"] == "approval-42"
    assert state["collection_paused"] is False


def test_cancelling_deletes_the_subscription_without_an_idempotency_key(api, fx):
    stripe = Stripe(api, (200, dict(fx["subscription"], status="canceled")))

    state = stripe.adapter.cancel_subscription(fx["subscription"]["id"], idempotency_key="approval-43")

    (sent,) = stripe.sent
    assert (sent.method, sent.path) == ("DELETE", f"/v1/subscriptions/{fx['subscription']['id']}")
    assert "Idempotency-Key" not in sent.headers  # Stripe: DELETE is idempotent by definition; keys have no effect
    assert state["status"] == "canceled"


# --- Refunds ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("12.50"), "gbp", 1250),
        (Decimal("12.5"), "eur", 1250),
        (Decimal("500"), "jpy", 500),
        (Decimal("1.25"), "kwd", 1250),
    ],
)
def test_a_partial_refund_is_sent_in_the_payments_minor_unit(api, fx, amount, currency, minor):
    charge = dict(fx["charge"], currency=currency, amount=minor * 2)
    refund = dict(fx["refund"], amount=minor, currency=currency, charge=charge["id"])
    stripe = Stripe(api, (200, charge), (200, refund))

    result = stripe.adapter.refund(charge["id"], amount, reason="requested_by_customer", idempotency_key="refund-1")

    read, create = stripe.sent
    assert (read.method, read.path) == ("GET", f"/v1/charges/{charge['id']}")
    assert (create.method, create.path) == ("POST", "/v1/refunds")
    assert create.body == {"charge": charge["id"], "amount": str(minor), "reason": "requested_by_customer"}
    assert result == RefundResult(id=refund["id"], amount=amount, currency=currency.upper(), status="succeeded")


def test_a_full_refund_of_a_payment_intent_sends_no_amount_and_reads_nothing(api, fx):
    refund = dict(fx["refund"], charge=None, payment_intent="pi_1NnlpVGPxmnHQRkJNuz3w9tH", amount=1099)
    stripe = Stripe(api, (200, refund))

    result = stripe.adapter.refund("pi_1NnlpVGPxmnHQRkJNuz3w9tH", None, reason="duplicate", idempotency_key="r-2")

    (sent,) = stripe.sent
    assert sent.body == {"payment_intent": "pi_1NnlpVGPxmnHQRkJNuz3w9tH", "reason": "duplicate"}
    assert result.amount == Decimal("10.99")
    assert result.currency == "USD"


def test_a_free_text_reason_is_sent_as_requested_by_customer_and_kept_in_metadata(api, fx):
    stripe = Stripe(api, (200, dict(fx["refund"], metadata={"steward_reason": "Arrived broken"})))

    stripe.adapter.refund(fx["charge"]["id"], None, reason="Arrived broken", idempotency_key="r-3")

    assert stripe.form() == {
        "charge": fx["charge"]["id"],
        "reason": "requested_by_customer",
        "metadata[steward_reason]": "Arrived broken",
    }


@pytest.mark.parametrize(
    ("amount", "currency", "complaint"),
    [
        (Decimal("12.505"), "gbp", "more decimal places"),
        (Decimal("12.5"), "jpy", "more decimal places"),
        (Decimal("10.50"), "isk", "steps of 100"),
        (Decimal("1.255"), "kwd", "steps of 10"),
        (Decimal("0"), "gbp", "positive"),
        (Decimal("-5"), "gbp", "positive"),
    ],
)
def test_an_amount_stripe_cannot_take_is_refused_and_never_rounded(api, fx, amount, currency, complaint):
    stripe = Stripe(api, (200, dict(fx["charge"], currency=currency)))

    with pytest.raises(ConnectorError, match=complaint) as caught:
        stripe.adapter.refund(fx["charge"]["id"], amount, reason="requested_by_customer", idempotency_key="r-4")

    assert caught.value.permanent
    assert [exchange.method for exchange in stripe.sent] == ["GET"]  # no refund was asked for


def test_minor_units_follow_each_currencys_exponent():
    assert to_minor_units(Decimal("12.50"), "GBP") == 1250
    assert to_minor_units(Decimal("1500"), "JPY") == 1500
    assert to_minor_units(Decimal("3"), "KRW") == 3
    assert to_minor_units(Decimal("40"), "ISK") == 4000
    assert from_minor_units(1250, "gbp") == Decimal("12.50")
    assert from_minor_units(1500, "jpy") == Decimal("1500")
    assert from_minor_units(1250, "kwd") == Decimal("1.250")


# --- Shipping address and field writes ----------------------------------------------------------------------------


def test_a_new_shipping_address_keeps_the_recipient_name_and_phone(api, fx):
    customer = dict(fx["customer"], name="Ada Lovelace")
    customer["shipping"] = {
        "address": {"city": "Leeds", "country": "GB", "line1": "1 Kirkgate", "line2": None, "postal_code": "LS1 6BH"},
        "name": "Ada L.",
        "phone": "+44 113 496 0000",
    }
    moved = copy.deepcopy(customer)
    moved["shipping"]["address"] = {
        "city": "York",
        "country": "GB",
        "line1": "2 Stonegate",
        "line2": "Flat 3",
        "postal_code": "YO1 8AS",
    }
    stripe = Stripe(api, (200, customer), (200, moved))
    address = Address(line1="2 Stonegate", line2="Flat 3", city="York", postcode="YO1 8AS", country="GB")

    result = stripe.adapter.change_shipping_address(customer["id"], address, idempotency_key="addr-1")

    read, update = stripe.sent
    assert (read.method, read.path) == ("GET", f"/v1/customers/{customer['id']}")
    assert (update.method, update.path) == ("POST", f"/v1/customers/{customer['id']}")
    assert update.body == {
        "shipping[name]": "Ada L.",
        "shipping[address][line1]": "2 Stonegate",
        "shipping[address][line2]": "Flat 3",
        "shipping[address][city]": "York",
        "shipping[address][postal_code]": "YO1 8AS",
        "shipping[address][country]": "GB",
        "shipping[phone]": "+44 113 496 0000",
    }
    assert update.headers["Idempotency-Key"] == "addr-1"
    assert result["shipping"]["address.city"] == "York"


def test_a_shipping_address_needs_a_customer_id(api):
    stripe = Stripe(api)
    address = Address(line1="2 Stonegate", city="York", postcode="YO1 8AS", country="GB")

    with pytest.raises(ConnectorError, match="customer id") as caught:
        stripe.adapter.change_shipping_address("pi_123", address, idempotency_key="addr-2")

    assert caught.value.permanent
    assert stripe.sent == []


def test_a_shipping_address_needs_a_recipient_name(api, fx):
    stripe = Stripe(api, (200, fx["customer"]))  # Stripe's fixture customer has neither name nor shipping
    address = Address(line1="2 Stonegate", city="York", postcode="YO1 8AS", country="GB")

    with pytest.raises(ConnectorError, match="recipient name"):
        stripe.adapter.change_shipping_address(fx["customer"]["id"], address, idempotency_key="addr-3")

    assert [exchange.method for exchange in stripe.sent] == ["GET"]


def test_a_field_write_posts_the_nested_field_and_returns_what_stripe_stored(api, fx):
    stripe = Stripe(api, (200, dict(fx["customer"], metadata={"tier": "gold"})))

    stored = stripe.adapter.write_field(
        "customer", fx["customer"]["id"], "metadata.tier", "gold", idempotency_key="w-1"
    )

    assert stripe.form() == {"metadata[tier]": "gold"}
    assert stripe.sent[0].headers["Idempotency-Key"] == "w-1"
    assert stored == "gold"


# --- Idempotency --------------------------------------------------------------------------------------------------


def test_a_write_whose_response_was_lost_is_retried_with_the_same_key(api, fx):
    stripe = Stripe(api, httpx.ReadTimeout("lost"), (200, fx["refund"]))

    result = stripe.adapter.refund(fx["charge"]["id"], None, reason="duplicate", idempotency_key="refund-77")

    first, retry = stripe.sent
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"] == "refund-77"
    assert first.body == retry.body
    assert len(stripe.sleeps) == 1
    assert result.id == fx["refund"]["id"]


def test_the_same_operation_repeated_sends_the_same_key_and_another_operation_another(api, fx):
    stripe = Stripe(api, (200, fx["refund"]), (200, fx["refund"]), (200, fx["refund"]))

    for key in ("approval-9", "approval-9", "approval-10"):
        stripe.adapter.refund(fx["charge"]["id"], None, reason="duplicate", idempotency_key=key)

    assert [exchange.headers["Idempotency-Key"] for exchange in stripe.sent] == [
        "approval-9",
        "approval-9",
        "approval-10",
    ]


def test_a_key_longer_than_stripe_accepts_is_hashed_the_same_way_each_time(api, fx):
    stripe = Stripe(api, (200, fx["refund"]), (200, fx["refund"]))
    key = "k" * 300

    for _ in range(2):
        stripe.adapter.refund(fx["charge"]["id"], None, reason="duplicate", idempotency_key=key)

    sent_keys = {exchange.headers["Idempotency-Key"] for exchange in stripe.sent}
    assert len(sent_keys) == 1
    assert len(sent_keys.pop()) == 64


# --- Failure modes ------------------------------------------------------------------------------------------------


def test_a_refused_key_is_an_auth_error(api):
    stripe = Stripe(api, (401, stripe_error("invalid_request_error", "Invalid API Key provided: sk_test_****ests")))

    with pytest.raises(ConnectorError) as caught:
        stripe.adapter.health_check()

    assert caught.value.auth
    assert caught.value.permanent
    assert len(stripe.sent) == 1  # never retried


@pytest.mark.django_db
def test_a_refused_key_disables_the_connector_and_tells_its_owner(api, mailoutbox, django_capture_on_commit_callbacks):
    owner = UserFactory(email="payments-owner@brewline.example")
    connector = Connector.objects.create(key="stripe", name="Stripe", family="commerce", adapter="stripe", owner=owner)
    stripe = Stripe(api, (401, stripe_error("invalid_request_error", "Invalid API Key provided")), connector=connector)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConnectorError):
        call(connector, stripe.adapter.health_check)

    connector.refresh_from_db()
    assert connector.enabled is False
    assert "credential refused" in connector.disabled_reason
    assert [message.to for message in mailoutbox] == [["payments-owner@brewline.example"]]


def test_a_rate_limit_waits_as_long_as_retry_after_says(api, fx):
    limited = (429, stripe_error("invalid_request_error", "Too many requests", "rate_limit"), {"Retry-After": "2"})
    stripe = Stripe(api, limited, (200, fx["customer"]))

    stripe.adapter.read_object("customer", fx["customer"]["id"])

    assert stripe.sleeps == [2.0]
    assert len(stripe.sent) == 2


def test_a_failing_read_is_retried_then_reported_with_stripes_message(api):
    failing = (500, stripe_error("api_error", "Something went wrong on Stripe's end."))
    stripe = Stripe(api, failing, failing, failing)

    with pytest.raises(ConnectorError, match="Something went wrong on Stripe's end") as caught:
        stripe.adapter.read_object("charge", "ch_1")

    assert not caught.value.permanent
    assert caught.value.status == 500
    assert len(stripe.sent) == 3
    assert len(stripe.sleeps) == 2


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (402, stripe_error("card_error", "Your card was declined.", "card_declined"), "Your card was declined"),
        (
            400,
            stripe_error("invalid_request_error", "Charge ch_1 has already been refunded.", "charge_already_refunded"),
            "Charge ch_1 has already been refunded.",
        ),
    ],
)
def test_a_refused_write_is_permanent_and_carries_stripes_message(api, status, error, message):
    stripe = Stripe(api, (status, error))

    with pytest.raises(ConnectorError, match=re.escape(message)) as caught:
        stripe.adapter.refund("ch_1", None, reason="duplicate", idempotency_key="r-5")

    assert caught.value.permanent
    assert not caught.value.auth
    assert caught.value.status == status
    assert error["error"]["type"] in str(caught.value)
    assert len(stripe.sent) == 1


def test_a_malformed_response_is_a_clear_error(api):
    stripe = Stripe(api, (200, b'{"object": "customer", "id": '), validate_response=False)

    with pytest.raises(ConnectorError, match="not valid JSON"):
        stripe.adapter.read_object("customer", "cus_1")


def test_schema_drift_is_named_rather_than_crashing(api, fx):
    drifted = {"object": "list", "results": [fx["payment_intent"]], "has_more": False, "url": "/v1/payment_intents"}
    stripe = Stripe(api, (200, drifted), validate_response=False)

    with pytest.raises(ConnectorError, match="has no 'data'"):
        stripe.adapter.list_orders("cus_1")


def test_an_object_of_another_type_is_drift(api, fx):
    stripe = Stripe(api, (200, fx["charge"]), validate_response=False)

    with pytest.raises(ConnectorError, match="returned a 'charge'"):
        stripe.adapter.read_object("refund", "re_1")


def test_a_connector_without_a_key_is_refused_at_once():
    connector = Connector(key="stripe", name="Stripe", family="commerce", adapter="stripe")

    with pytest.raises(ConnectorError, match="needs a Stripe secret"):
        StripeAdapter(connector, credential=None)


# --- The harness itself -------------------------------------------------------------------------------------------


def test_the_harness_rejects_a_refund_reason_outside_stripes_enum(api, fx):
    transport = ContractTransport(api=api, server=SERVER, responder=replay((200, fx["refund"])))

    with pytest.raises(Exception, match="is not one of"), httpx.Client(base_url=SERVER, transport=transport) as client:
        client.post(
            "/v1/refunds",
            headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/x-www-form-urlencoded"},
            content="charge=ch_1&reason=because",
        )
    assert transport.exchanges == []


def test_the_form_check_rejects_nested_values_and_fields_openapi_core_lets_through(api):
    assert form_body_errors("POST", "/v1/subscriptions/sub_1", {"pause_collection[behavior]": "sometimes"})
    assert form_body_errors("POST", "/v1/subscriptions/sub_1", {"bogus": "1"})
    assert form_body_errors("POST", "/v1/refunds", {"charge": "ch_1", "amount": "12.50"})
    assert not form_body_errors("POST", "/v1/subscriptions/sub_1", {"pause_collection[behavior]": "void"})
    assert not form_body_errors("POST", "/v1/subscriptions/sub_1", {"pause_collection": ""})


def test_form_encoding_nests_with_brackets_as_stripe_reads_it():
    encoded = form_encode({"shipping": {"address": {"city": "York"}}, "items": [{"price": "p_1"}], "flag": True})
    assert dict(parse_qsl(encoded)) == {"shipping[address][city]": "York", "items[0][price]": "p_1", "flag": "true"}
