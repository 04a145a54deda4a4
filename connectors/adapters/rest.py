"""The generic REST adapter: any company's in-house JSON API, configured entirely by ``Connector.config``.

Two registered adapters share the machinery: ``rest_crm`` (CRMAdapter) and ``rest_commerce`` (CommerceAdapter). The
connector gives the base URL (``base_url``), the credential (``credential``) and the per-call timeout; the config says
everything else::

    {
      "auth": {"header": "Authorization", "scheme": "Token"},   # optional; sends "<scheme> <credential>"
                                                                #   (scheme "" sends the credential alone)
      "honours_idempotency": true,                              # optional, default false: does the system
                                                                #   de-duplicate writes by the key below?
      "idempotency_header": "Idempotency-Key",                  # optional, this default; "" sends no key
      "health_check": {"method": "GET", "path": "/health"},     # required
      "objects": {                                              # what governed reads and field writes reach
        "<object>": {
          "read":  {"path": "/customers/{id}",
                    "fields": {"<Steward field path>": "<JSON path in the answer>", ...}},
          "write": {"method": "PATCH", "path": "/customers/{id}",
                    "fields": {"<Steward field path>": "<JSON path in the request body>", ...}}
        }
      },
      "operations": {                                           # the family's operations this system supports
        "<operation>": {"method": "POST", "path": "/orders/{order_id}/address",
                        "query": {"<query parameter>": "<argument>"},
                        "body": {"<JSON path in the request body>": "<argument>"},
                        "list": "<JSON path of the list in the answer>",   # list operations only
                        "fields": {"<result name>": "<JSON path in the answer (or in each list item)>"}}
      }
    }

- Paths are relative to the base URL; ``{name}`` placeholders take the operation's arguments, URL-encoded (an id
  cannot climb out of its path segment).
- JSON paths are dotted, with list indexes: ``shipping.status``, ``items[0].sku`` (or ``items.0.sku``); ``""`` is the
  whole answer. A path missing from an answer is schema drift and fails the call with a ConnectorError naming the
  path, unless it ends in ``?`` (``support_history[0].summary?``): then a missing value reads as null. A value that is
  present and null is never drift.
- Read ``fields`` keys are the field paths governance's FieldMappings use (``shipping.status``); only configured paths
  are read, and governance then decides which of them this principal sees.
- ``method`` defaults to GET for reads and health checks, POST for operations that write and PATCH for field writes.

Operations, their arguments and the result names they need (``fields``):

==========================  ==========  =================================================  ======================
operation                   family      arguments                                          result fields
==========================  ==========  =================================================  ======================
find_customers (list)       crm         email, phone, external_id                          id; email, name
add_note                    crm         customer_id, text                                  id
add_tag                     crm         customer_id, tag                                   (none)
create_task                 crm         customer_id, title, due (ISO 8601 or absent)       id
list_orders (list)          commerce    customer_id                                        id, status; placed_at,
                                                                                           total, currency
pause_subscription,         commerce    subscription_id                                    any (returned as a
resume_subscription,                                                                       dict)
cancel_subscription
change_shipping_address     commerce    order_id, address.line1, address.line2,            any (returned as a
                                        address.city, address.postcode, address.country    dict)
refund                      commerce    order_id, amount (absent: the whole remainder),    id, amount, currency,
                                        reason                                             status
==========================  ==========  =================================================  ======================

Object paths take ``{id}``. Arguments that are empty are left out of the query and the body.

Reads are retried on transient failures; writes only when ``honours_idempotency`` is true (each write sends its
idempotency key), otherwise the gateway's WriteReceipt guarantees at most one attempt (connectors/gateway.py).
The config is validated by connectors/adapters/rest_config.py; docs/connectors/rest-and-demo-system.md has the demo
company's config as a worked example.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from connectors.adapters.rest_config import (
    OPERATIONS,
    PLACEHOLDER,
    ConfigInvalid,
    Endpoint,
    lookup,
    parse_config,
)
from connectors.base import (
    Address,
    CommerceAdapter,
    ConnectorError,
    CRMAdapter,
    CustomerRef,
    OrderSummary,
    RefundResult,
    register,
)
from connectors.http import HttpClient

# --- Reading answers and building requests ----------------------------------------------------------------------------


def resolve(data: Any, path: str, *, what: str) -> Any:
    """Return the value at ``path``; a missing path is schema drift (unless the path ends in "?": then None)."""
    found, value = lookup(data, path)
    if not found and not path.endswith("?"):
        raise ConnectorError(
            f"{what}: the answer has no {path!r} (the system's API may have changed, or the connector's config "
            "names a wrong path)"
        )
    return value


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = body
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- The adapters ----------------------------------------------------------------------------------------------------


class RestAdapterMixin:
    """The config and HTTP machinery both REST adapters share: reads, field writes and the health check."""

    family: ClassVar[str]
    connector: Any
    credential: str | None
    transport: httpx.BaseTransport | None

    def _configure(self) -> None:
        try:
            self.config = parse_config(self.connector.config, family=self.family)
        except ConfigInvalid as exc:
            raise ConnectorError(
                f"{self.connector.name}: its REST configuration is invalid: {exc}", permanent=True
            ) from None
        # Per connector, not per class: the same adapter speaks to systems that do and do not de-duplicate.
        self.honours_idempotency = self.config.honours_idempotency

    @classmethod
    def config_errors(cls, config: Any) -> list[str]:
        """Return what is wrong with ``config`` for this adapter (empty when it is valid)."""
        try:
            parse_config(config, family=cls.family)
        except ConfigInvalid as exc:
            return exc.problems
        return []

    # --- HTTP ----------------------------------------------------------------------------------------------------

    def _what(self, operation: str) -> str:
        return f"{self.connector.name} ({self.connector.key}) {operation}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.auth_header:
            if not self.credential:
                raise ConnectorError(f"{self.connector.name} has no credential to authenticate with", permanent=True)
            scheme = self.config.auth_scheme
            headers[self.config.auth_header] = f"{scheme} {self.credential}" if scheme else self.credential
        return headers

    def _send(
        self,
        operation: str,
        endpoint: Endpoint,
        arguments: dict[str, Any],
        *,
        writes: bool,
        idempotency_key: str = "",
        body: dict[str, Any] | None = None,
    ) -> Any:
        if not self.connector.base_url:
            raise ConnectorError(f"{self.connector.name} has no base URL", permanent=True)
        headers = self._headers()
        if writes and idempotency_key and self.config.idempotency_header:
            headers[self.config.idempotency_header] = idempotency_key
        if body is None:
            body = {}
            for body_path, argument in endpoint.body.items():
                if arguments.get(argument) not in (None, ""):
                    _set(body, body_path, _jsonable(arguments[argument]))
        query = {
            parameter: str(_jsonable(arguments[argument]))
            for parameter, argument in endpoint.query.items()
            if arguments.get(argument) not in (None, "")
        }
        client = HttpClient(
            base_url=self.connector.base_url,
            timeout=self.connector.timeout_seconds,
            headers=headers,
            transport=self.transport,
        )
        try:
            return client.request(
                endpoint.method,
                _render_path(endpoint.path, arguments),
                what=self._what(operation),
                retry=not writes or self.honours_idempotency,
                params=query or None,
                json=body if endpoint.method != "GET" else None,
            )
        finally:
            client.close()

    def _endpoint(self, operation: str) -> Endpoint:
        endpoint = self.config.operations.get(operation)
        if endpoint is None:
            raise ConnectorError(
                f"{self.connector.name} cannot {operation.replace('_', ' ')}: its REST config has no "
                f"operations.{operation}",
                permanent=True,
            )
        return endpoint

    def _result(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str = "") -> dict[str, Any]:
        endpoint = self._endpoint(operation)
        writes = OPERATIONS[operation].writes
        data = self._send(operation, endpoint, arguments, writes=writes, idempotency_key=idempotency_key)
        what = self._what(operation)
        return {name: resolve(data, path, what=what) for name, path in endpoint.fields.items()}

    def _rows(self, operation: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        endpoint = self._endpoint(operation)
        data = self._send(operation, endpoint, arguments, writes=False)
        what = self._what(operation)
        rows = resolve(data, endpoint.list_path or "", what=what)
        if not isinstance(rows, list):
            raise ConnectorError(f"{what}: {endpoint.list_path or 'the answer'!r} is {type(rows).__name__}, not a list")
        return [{name: resolve(row, path, what=what) for name, path in endpoint.fields.items()} for row in rows]

    # --- Every family ----------------------------------------------------------------------------------------------

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        spec = self.config.objects.get(obj)
        if spec is None or spec.read is None:
            raise ConnectorError(
                f"{self.connector.name} cannot read {obj}: its REST config has no objects.{obj}.read", permanent=True
            )
        what = self._what(f"read {obj}")
        data = self._send(f"read {obj}", spec.read, {"id": object_id}, writes=False)
        return {field_path: resolve(data, path, what=what) for field_path, path in spec.read.fields.items()}

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        """Write one field; return the new value as the system reports it when its answer carries the field."""
        spec = self.config.objects.get(obj)
        if spec is None or spec.write is None or field_path not in spec.write.fields:
            raise ConnectorError(
                f"{self.connector.name} cannot write {obj}.{field_path}: its REST config has no "
                f"objects.{obj}.write.fields.{field_path}",
                permanent=True,
            )
        body: dict[str, Any] = {}
        _set(body, spec.write.fields[field_path], _jsonable(value))
        data = self._send(
            f"write {obj}.{field_path}",
            spec.write,
            {"id": object_id},
            writes=True,
            idempotency_key=idempotency_key,
            body=body,
        )
        read_path = spec.read.fields.get(field_path) if spec.read else None
        if read_path:
            found, reported = lookup(data, read_path)
            if found:
                return reported
        return value

    def health_check(self) -> None:
        self._send("health check", self.config.health_check, {}, writes=False)


def _render_path(template: str, arguments: dict[str, Any]) -> str:
    # quote(safe=""): an id like "../admin" or "a/b" stays inside its own path segment.
    return PLACEHOLDER.sub(lambda match: quote(str(arguments.get(match.group(1), "")), safe=""), template)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _required_text(row: dict[str, Any], name: str, what: str) -> str:
    value = row.get(name)
    if value in (None, ""):
        raise ConnectorError(f"{what}: the answer's {name} is empty")
    return str(value)


@register
class RestCRMAdapter(RestAdapterMixin, CRMAdapter):
    key = "rest_crm"

    def __init__(self, connector: Any, *, credential: str | None, transport: httpx.BaseTransport | None = None):
        super().__init__(connector, credential=credential, transport=transport)
        self._configure()

    def find_customers(self, *, email: str = "", external_id: str = "", phone: str = "") -> list[CustomerRef]:
        if not (email or external_id or phone):
            raise ConnectorError("Finding a customer needs an email, a phone number or an external id", permanent=True)
        what = self._what("find_customers")
        rows = self._rows("find_customers", {"email": email, "phone": phone, "external_id": external_id})
        return [
            CustomerRef(id=_required_text(row, "id", what), email=_text(row.get("email")), name=_text(row.get("name")))
            for row in rows
        ]

    def add_note(self, customer_id: str, text: str, *, idempotency_key: str) -> str:
        result = self._result("add_note", {"customer_id": customer_id, "text": text}, idempotency_key=idempotency_key)
        return _required_text(result, "id", self._what("add_note"))

    def add_tag(self, customer_id: str, tag: str, *, idempotency_key: str) -> None:
        self._result("add_tag", {"customer_id": customer_id, "tag": tag}, idempotency_key=idempotency_key)

    def create_task(self, customer_id: str, title: str, due: datetime | None, *, idempotency_key: str) -> str:
        arguments = {"customer_id": customer_id, "title": title, "due": due}
        result = self._result("create_task", arguments, idempotency_key=idempotency_key)
        return _required_text(result, "id", self._what("create_task"))


@register
class RestCommerceAdapter(RestAdapterMixin, CommerceAdapter):
    key = "rest_commerce"

    def __init__(self, connector: Any, *, credential: str | None, transport: httpx.BaseTransport | None = None):
        super().__init__(connector, credential=credential, transport=transport)
        self._configure()

    def list_orders(self, customer_id: str) -> list[OrderSummary]:
        what = self._what("list_orders")
        return [
            OrderSummary(
                id=_required_text(row, "id", what),
                status=_text(row.get("status")),
                placed_at=_text(row.get("placed_at")),
                total=_text(row.get("total")),
                currency=_text(row.get("currency")),
            )
            for row in self._rows("list_orders", {"customer_id": customer_id})
        ]

    def pause_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._result("pause_subscription", {"subscription_id": subscription_id}, idempotency_key=idempotency_key)

    def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._result(
            "resume_subscription", {"subscription_id": subscription_id}, idempotency_key=idempotency_key
        )

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._result(
            "cancel_subscription", {"subscription_id": subscription_id}, idempotency_key=idempotency_key
        )

    def change_shipping_address(self, order_id: str, address: Address, *, idempotency_key: str) -> dict[str, Any]:
        arguments = {
            "order_id": order_id,
            "address.line1": address.line1,
            "address.line2": address.line2,
            "address.city": address.city,
            "address.postcode": address.postcode,
            "address.country": address.country,
        }
        return self._result("change_shipping_address", arguments, idempotency_key=idempotency_key)

    def refund(self, order_id: str, amount: Decimal | None, *, reason: str, idempotency_key: str) -> RefundResult:
        what = self._what("refund")
        arguments = {"order_id": order_id, "amount": amount, "reason": reason}
        result = self._result("refund", arguments, idempotency_key=idempotency_key)
        try:
            refunded = Decimal(str(result["amount"]))
        except (InvalidOperation, ValueError):
            raise ConnectorError(f"{what}: the answer's amount {result['amount']!r} is not a number") from None
        return RefundResult(
            id=_required_text(result, "id", what),
            amount=refunded,
            currency=_text(result.get("currency")),
            status=_text(result.get("status")),
        )
