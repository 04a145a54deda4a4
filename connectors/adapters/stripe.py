"""Stripe as the commerce connector: customers, subscriptions, charges, payment intents and refunds over Stripe's REST
API, pinned to API version 2023-08-16 (the version of the contract the tests validate against,
shared/contracts/stripe/spec3.2023-08-16.customer-service.yaml).

Stripe has no orders. An "order" here is a PaymentIntent, one per purchase (Stripe: "The Payment Intents API" — the
object that tracks a payment from creation to completion, including retried charges); ``list_orders`` lists a
customer's most recent payment intents and ``refund`` accepts a payment intent id (``pi_…``) or, for payments made
with the older Charges API, a charge id (``ch_…``/``py_…``). Shipping addresses live on the customer
(``change_shipping_address`` takes a customer id), which is where Stripe invoices and receipts read them.

Amounts cross the boundary as ``Decimal`` in major units; Stripe takes and returns integers in the currency's minor
unit (see ``to_minor_units``).

Idempotency: every POST carries an ``Idempotency-Key`` header (Stripe: "Idempotent requests"), so a write whose
response was lost is retried with the same key and Stripe returns the saved result instead of acting twice:
``honours_idempotency`` is True and the gateway keeps no WriteReceipt. DELETE is idempotent by definition and takes no
key (same doc).

Configuration: the credential is a secret or restricted API key (``sk_…``/``rk_…``), sent as a bearer token.
``Connector.base_url`` is left empty (``https://api.stripe.com``) except for a test double.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.base import (
    Address,
    CommerceAdapter,
    ConnectorError,
    NotFound,
    OrderSummary,
    RefundResult,
    flatten,
    register,
)
from connectors.http import HttpClient, require
from connectors.models import Connector

STRIPE_API = "https://api.stripe.com"
STRIPE_VERSION = "2023-08-16"
OBJECT_PATHS = {
    "customer": "/v1/customers",
    "subscription": "/v1/subscriptions",
    "charge": "/v1/charges",
    "payment_intent": "/v1/payment_intents",
    "refund": "/v1/refunds",
}
ORDERS_LISTED = 20  # the customer's most recent payment intents; older ones are not what a support turn is about
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")  # the contract's enum for POST /v1/refunds
IDEMPOTENCY_KEY_MAX = 255  # Stripe: "Idempotency keys are up to 255 characters long"
METADATA_VALUE_MAX = 500  # Stripe: metadata "values can be up to 500 characters long"

# Stripe: "Supported currencies" — amounts are integers in the currency's minor unit. Zero-decimal currencies take the
# amount as is; three-decimal currencies take mils but the last digit must be 0; ISK is still two-decimal in the API
# but only whole krónur are accepted (multiples of 100) since April 2023. Every other currency is two-decimal.
ZERO_DECIMAL = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
MINOR_UNIT_STEP = {"ISK": 100, **dict.fromkeys(THREE_DECIMAL, 10)}


@register
class StripeAdapter(CommerceAdapter):
    key = "stripe"
    honours_idempotency = True
    objects = tuple(OBJECT_PATHS)

    def __init__(
        self,
        connector: Connector,
        *,
        credential: str | None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(connector, credential=credential, transport=transport)
        if not credential:
            raise ConnectorError(
                f"The connector {connector.name} needs a Stripe secret or restricted key as its credential.",
                permanent=True,
            )
        self.http = HttpClient(
            base_url=(connector.base_url or STRIPE_API).rstrip("/"),
            timeout=connector.timeout_seconds,
            headers={
                "Authorization": f"Bearer {credential}",
                # Pinned: the account's default version may be newer, and 2025-03-31.basil moved subscription
                # periods onto items (shared/contracts/stripe/SOURCE.md); the shapes parsed here are 2023-08-16's.
                "Stripe-Version": STRIPE_VERSION,
            },
            transport=transport,
            sleep=sleep,
            describe_error=stripe_error_message,
        )

    # --- Reads --------------------------------------------------------------------------------------------------

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        """Return the object flattened to dotted paths; amounts stay in minor units, as Stripe sends them."""
        if obj not in OBJECT_PATHS:
            raise ConnectorError(f"Stripe objects here are {', '.join(OBJECT_PATHS)}, not {obj!r}", permanent=True)
        return flatten(self._get_object(obj, object_id))

    def list_orders(self, customer_id: str) -> list[OrderSummary]:
        """Return the customer's most recent payment intents, newest first (Stripe lists newest first)."""
        what = f"Stripe payment intents of {customer_id}"
        data = self.http.request(
            "GET",
            "/v1/payment_intents",
            what=what,
            retry=True,
            params={"customer": customer_id, "limit": ORDERS_LISTED},
        )
        return [_order(intent, what=what) for intent in require(data, "data", list, what=what)]

    def health_check(self) -> None:
        what = "Stripe health check"
        data = self.http.request("GET", "/v1/customers", what=what, retry=True, params={"limit": 1})
        require(data, "data", list, what=what)

    # --- Writes -------------------------------------------------------------------------------------------------

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        """Update one field (``email``, ``metadata.tier``, …) with Stripe's update endpoint; return the stored value."""
        if obj not in OBJECT_PATHS:
            raise ConnectorError(f"Stripe objects here are {', '.join(OBJECT_PATHS)}, not {obj!r}", permanent=True)
        params: dict[str, Any] = {}
        node = params
        *parents, leaf = field_path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        data = self._post(
            f"{OBJECT_PATHS[obj]}/{object_id}", params, what=f"Stripe {obj} update", idempotency_key=idempotency_key
        )
        return flatten(data).get(field_path)

    def pause_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Pause payment collection, voiding the invoices raised meanwhile (the customer is not billed for the gap).

        Stripe: "Pause payment collection" — ``pause_collection[behavior]=void``. The subscription stays ``active``;
        ``pause_collection`` on it is what shows the pause.
        """
        data = self._post(
            f"/v1/subscriptions/{subscription_id}",
            {"pause_collection": {"behavior": "void"}},
            what="Stripe subscription pause",
            idempotency_key=idempotency_key,
        )
        return _subscription_state(data, what="Stripe subscription pause")

    def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Resume payment collection paused by ``pause_subscription`` (an empty ``pause_collection`` unsets it).

        Not POST /v1/subscriptions/{id}/resume: that one resumes a subscription in status ``paused`` (a trial that
        ended without a payment method) and charges for the new period at once.
        """
        data = self._post(
            f"/v1/subscriptions/{subscription_id}",
            {"pause_collection": ""},
            what="Stripe subscription resume",
            idempotency_key=idempotency_key,
        )
        return _subscription_state(data, what="Stripe subscription resume")

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Cancel the subscription now (DELETE; Stripe ignores idempotency keys on DELETE, which is idempotent)."""
        what = "Stripe subscription cancel"
        data = self.http.request("DELETE", f"/v1/subscriptions/{subscription_id}", what=what, retry=True)
        return _subscription_state(data, what=what)

    def refund(self, order_id: str, amount: Decimal | None, *, reason: str, idempotency_key: str) -> RefundResult:
        """Refund a payment intent (``pi_…``) or charge, in full when ``amount`` is None.

        ``reason`` is Stripe's enum when it is one; free text is sent as ``requested_by_customer`` and kept in the
        refund's metadata, so the words a person gave are on the refund in Stripe too.
        """
        obj = "payment_intent" if order_id.startswith("pi_") else "charge"
        params: dict[str, Any] = {obj: order_id}
        if amount is not None:
            # The currency is the payment's own: refunds cannot change it, and it decides the minor unit.
            currency = require(self._get_object(obj, order_id), "currency", str, what=f"Stripe {obj} read")
            params["amount"] = to_minor_units(amount, currency)
        if reason in REFUND_REASONS:
            params["reason"] = reason
        else:
            params["reason"] = "requested_by_customer"
            if reason.strip():
                params["metadata"] = {"steward_reason": reason.strip()[:METADATA_VALUE_MAX]}
        what = f"Stripe refund of {order_id}"
        data = self._post("/v1/refunds", params, what=what, idempotency_key=idempotency_key)
        currency = require(data, "currency", str, what=what)
        return RefundResult(
            id=require(data, "id", str, what=what),
            amount=from_minor_units(require(data, "amount", int, what=what), currency),
            currency=currency.upper(),
            status=data.get("status") or "pending",  # nullable in the contract; a new refund without one is pending
        )

    def change_shipping_address(self, order_id: str, address: Address, *, idempotency_key: str) -> dict[str, Any]:
        """Replace the customer's shipping address (``order_id`` is the customer id, ``cus_…``).

        Stripe requires a recipient name with every shipping address; the current one (or the customer's name) is
        kept, as is the phone. Stripe replaces the shipping hash whole, so a ``state`` it held is cleared: Address
        has no state to send.
        """
        if not order_id.startswith("cus_"):
            raise ConnectorError(
                f"Stripe keeps shipping addresses on the customer: expected a customer id (cus_…), got {order_id!r}",
                permanent=True,
            )
        customer = self._get_object("customer", order_id)
        current = customer.get("shipping") or {}
        name = current.get("name") or customer.get("name")
        if not name:
            raise ConnectorError(
                f"Stripe needs a recipient name for a shipping address and customer {order_id} has none",
                permanent=True,
            )
        shipping: dict[str, Any] = {
            "name": name,
            "address": {
                "line1": address.line1,
                "line2": address.line2,
                "city": address.city,
                "postal_code": address.postcode,
                "country": address.country,
            },
        }
        if current.get("phone"):
            shipping["phone"] = current["phone"]
        what = f"Stripe shipping address of {order_id}"
        data = self._post(
            f"/v1/customers/{order_id}", {"shipping": shipping}, what=what, idempotency_key=idempotency_key
        )
        stored = require(data, "shipping", dict, what=what)
        return {"customer": order_id, "shipping": flatten(stored)}

    # --- HTTP ---------------------------------------------------------------------------------------------------

    def _get_object(self, obj: str, object_id: str) -> dict[str, Any]:
        what = f"Stripe {obj} read"
        data = self.http.request("GET", f"{OBJECT_PATHS[obj]}/{object_id}", what=what, retry=True)
        if require(data, "object", str, what=what) != obj:
            raise ConnectorError(f"{what}: Stripe returned a {data['object']!r} (the API may have changed)")
        if data.get("deleted"):  # a deleted customer still answers 200, as {"id", "object", "deleted": true}
            raise NotFound(f"{what}: {object_id} was deleted")
        return data

    def _post(self, path: str, params: dict[str, Any], *, what: str, idempotency_key: str) -> Any:
        """POST form-encoded params with the idempotency key; transient failures are retried with the same key."""
        return self.http.request(
            "POST",
            path,
            what=what,
            retry=True,
            content=form_encode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Idempotency-Key": stripe_idempotency_key(idempotency_key),
            },
        )


# --- Parsing ------------------------------------------------------------------------------------------------------


def _order(intent: Any, *, what: str) -> OrderSummary:
    currency = require(intent, "currency", str, what=what)
    return OrderSummary(
        id=require(intent, "id", str, what=what),
        status=require(intent, "status", str, what=what),
        placed_at=datetime.fromtimestamp(require(intent, "created", int, what=what), tz=UTC).isoformat(),
        total=str(from_minor_units(require(intent, "amount", int, what=what), currency)),
        currency=currency.upper(),
    )


def _subscription_state(data: Any, *, what: str) -> dict[str, Any]:
    """The few facts a person or the agent needs after a subscription change."""
    paused = data.get("pause_collection") if isinstance(data, dict) else None
    return {
        "id": require(data, "id", str, what=what),
        "status": require(data, "status", str, what=what),
        "collection_paused": bool(paused),
        "pause_behavior": paused.get("behavior", "") if isinstance(paused, dict) else "",
        "cancel_at_period_end": bool(data.get("cancel_at_period_end")),
    }


def stripe_error_message(response: httpx.Response) -> str:
    """Return Stripe's own message for an error response, with its type and code: ``Your card was declined.
    (card_error/card_declined)``. Stripe: "Errors" — the body is ``{"error": {"type", "code", "message", …}}``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        return ""
    if not isinstance(error, dict):
        return ""
    kind = "/".join(str(error[k]) for k in ("type", "code", "decline_code") if error.get(k))
    message = str(error.get("message") or "")
    return f"{message} ({kind})" if message and kind else message or kind


# --- Money and wire format ----------------------------------------------------------------------------------------


def _exponent(currency: str) -> int:
    code = currency.upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Return ``amount`` in the currency's minor unit (12.50 GBP → 1250, 500 JPY → 500); refuse what Stripe would.

    Never rounds: a refund of 12.505 GBP is a mistake to report, not a penny to guess.
    """
    code = currency.upper()
    if not amount.is_finite() or amount <= 0:
        raise ConnectorError(f"A refund amount must be positive, not {amount}", permanent=True)
    minor = amount.scaleb(_exponent(code))
    if minor != minor.to_integral_value():
        raise ConnectorError(f"{amount} {code} has more decimal places than {code} allows", permanent=True)
    step = MINOR_UNIT_STEP.get(code, 1)
    if minor % step:
        raise ConnectorError(f"Stripe accepts {code} amounts only in steps of {step} minor units", permanent=True)
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """Return a Stripe amount in major units (1250 GBP → 12.50, 500 JPY → 500)."""
    return Decimal(minor).scaleb(-_exponent(currency))


def form_encode(params: dict[str, Any]) -> str:
    """Encode params as Stripe reads them: nested objects as ``shipping[address][city]=…``, lists as ``a[0]=…``,
    booleans as ``true``/``false``, and "" to unset a field (Stripe: "Updating objects")."""
    pairs: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                add(f"{key}[{name}]" if key else str(name), item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                add(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, "" if value is None else str(value)))

    add("", params)
    return urlencode(pairs)


def stripe_idempotency_key(key: str) -> str:
    """Return the key as sent: unchanged, or its SHA-256 when longer than Stripe accepts (stable either way)."""
    if not key:
        raise ConnectorError("A Stripe write needs an idempotency key", permanent=True)
    return key if len(key) <= IDEMPOTENCY_KEY_MAX else hashlib.sha256(key.encode()).hexdigest()
