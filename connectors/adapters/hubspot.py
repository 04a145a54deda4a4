"""HubSpot CRM v3 as the CRM connector: contacts, companies and tickets through the CRM object APIs.

Contracts tested against: HubSpot's own OpenAPI documents for ``/crm/v3/objects/{contacts,companies,tickets}``
(shared/contracts/hubspot). What they do not cover — notes, tasks, associations — is refused with a clear error
rather than written blind; docs/connectors/vendors-hubspot-zendesk.md lists the gaps.

Field paths: a HubSpot record reads as ``id``, ``createdAt``, ``updatedAt``, ``archived`` and one
``properties.<internal name>`` per property (``properties.email``, ``properties.lifecyclestage``) — the record's own
JSON paths, so a FieldMapping names exactly what HubSpot returns and a custom property can never collide with a
top-level key. Values stay the strings HubSpot sends (numbers, dates and checkboxes included).

Configuration (``Connector.config``, all optional):
- ``properties``: ``{"contact": [...], "company": [...], "ticket": [...]}`` — the properties a read asks for (HubSpot
  returns only a small default set otherwise); replaces the defaults below for that object.
- ``external_id_property``: the contact property holding the customer's id in the company's own systems, for
  ``find_customers(external_id=...)``.
- ``tag_property``: a multiple-checkbox contact property that ``add_tag`` adds options to.

Idempotency: none of the operations in the contracts takes an idempotency key (no such header or field in the
documents), and HubSpot documents none for the CRM object APIs, so ``honours_idempotency`` is False and the gateway
keeps a WriteReceipt for every write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from connectors.base import ConnectorError, CRMAdapter, CustomerRef, flatten, register
from connectors.http import HttpClient, require
from connectors.models import Connector

HUBSPOT_API = "https://api.hubapi.com"
OBJECT_TYPES = {"contact": "contacts", "company": "companies", "ticket": "tickets"}
# HubSpot's standard property internal names for each object.
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contact": ("email", "firstname", "lastname", "phone", "company", "lifecyclestage"),
    "company": ("name", "domain", "phone", "city", "country", "industry"),
    "ticket": ("subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category"),
}
SEARCH_LIMIT = 10
NOT_IN_CONTRACTS = "not supported by the contracts we can test against"


@register
class HubSpotAdapter(CRMAdapter):
    key = "hubspot"
    honours_idempotency = False
    objects = tuple(OBJECT_TYPES)

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
                f"The connector {connector.name} needs a HubSpot private-app token as its credential.", permanent=True
            )
        self.config: dict[str, Any] = {} if connector.config is None else connector.config
        if problems := self.config_errors(self.config):
            raise ConnectorError(f"The connector {connector.name}: {' '.join(problems)}", permanent=True)
        self.http = HttpClient(
            base_url=(connector.base_url or HUBSPOT_API).rstrip("/"),
            timeout=connector.timeout_seconds,
            # Private-app access tokens are sent as a bearer token (HubSpot: "Authentication methods", private apps).
            headers={"Authorization": f"Bearer {credential}", "Accept": "application/json"},
            transport=transport,
            sleep=sleep,
            describe_error=hubspot_error_message,
        )

    @classmethod
    def config_errors(cls, config: Any) -> list[str]:
        """Return what is wrong with ``config`` for this adapter (empty when it is valid); the admin shows these."""
        if not isinstance(config, dict):
            return ["The configuration must be a JSON object."]
        problems = []
        properties = config.get("properties", {})
        if not isinstance(properties, dict) or not all(
            obj in OBJECT_TYPES and isinstance(names, list) and all(isinstance(n, str) and n for n in names)
            for obj, names in properties.items()
        ):
            problems.append(
                f"config['properties'] must map {', '.join(OBJECT_TYPES)} to lists of HubSpot property names."
            )
        for key in ("external_id_property", "tag_property"):
            if not isinstance(config.get(key, ""), str):
                problems.append(f"config[{key!r}] must be a HubSpot contact property name.")
        return problems

    # --- Reads --------------------------------------------------------------------------------------------------

    def find_customers(self, *, email: str = "", external_id: str = "", phone: str = "") -> list[CustomerRef]:
        """Return the contacts matching every identifier given (one filter group: HubSpot ANDs its filters)."""
        filters = _identity_filters(email=email, phone=phone, external_id=external_id, config=self.config)
        body = {
            "filterGroups": [{"filters": filters}],
            "properties": ["email", "firstname", "lastname"],
            "limit": SEARCH_LIMIT,
            # The contract marks after/limit/properties/sorts as required (the live API accepts them missing):
            # "0" is the first page, no sorts is HubSpot's default order.
            "after": "0",
            "sorts": [],
        }
        what = "HubSpot contact search"
        data = self.http.request("POST", "/crm/v3/objects/contacts/search", what=what, retry=True, json=body)
        return [_customer(result, what=what) for result in require(data, "results", list, what=what)]

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        path = _object_path(obj, object_id)
        properties = self.config.get("properties", {}).get(obj) or DEFAULT_PROPERTIES[obj]
        # Sent comma-separated, as the contract's parameter description says ("a comma separated list").
        params = {"properties": ",".join(properties)}
        data = self.http.request("GET", path, what=f"HubSpot {obj} read", retry=True, params=params)
        return _record(data, what=f"HubSpot {obj} read")

    def health_check(self) -> None:
        what = "HubSpot health check"
        data = self.http.request("GET", "/crm/v3/objects/contacts", what=what, retry=True, params={"limit": 1})
        require(data, "results", list, what=what)

    # --- Writes -------------------------------------------------------------------------------------------------

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        """Set one property and return the value HubSpot stored."""
        path = _object_path(obj, object_id)
        name = _property_name(field_path)
        what = f"HubSpot {obj} update"
        data = self.http.request(
            "PATCH", path, what=what, retry=False, json={"properties": {name: _property_value(value)}}
        )
        return require(data, "properties", dict, what=what).get(name)

    def add_tag(self, customer_id: str, tag: str, *, idempotency_key: str) -> None:
        """Add ``tag`` as an option of the configured multiple-checkbox contact property.

        HubSpot contacts have no tags of their own; a multiple-checkbox property is the nearest thing its contacts
        contract offers. The read-then-write can lose a tag added by someone else in between (no conditional update
        in the contract); adding a tag already there sends nothing.
        """
        prop = self.config.get("tag_property", "")
        if not prop:
            raise ConnectorError(
                "HubSpot contacts have no tags: set config['tag_property'] to a multiple-checkbox contact property "
                "to tag through it.",
                permanent=True,
            )
        tag = tag.strip()
        if not tag or ";" in tag:
            raise ConnectorError(f"Not a usable HubSpot checkbox option: {tag!r}", permanent=True)
        what = "HubSpot contact tag"
        data = self.http.request(
            "GET", _object_path("contact", customer_id), what=what, retry=True, params={"properties": prop}
        )
        # Multiple-checkbox values are one string, options separated by ";" (the contract's own example:
        # "property_multiple_checkboxes": "chocolate;strawberry").
        current = [t for t in (require(data, "properties", dict, what=what).get(prop) or "").split(";") if t]
        if tag in current:
            return
        self.write_field(
            "contact", customer_id, f"properties.{prop}", ";".join([*current, tag]), idempotency_key=idempotency_key
        )

    def add_note(self, customer_id: str, text: str, *, idempotency_key: str) -> str:
        # Notes are HubSpot's ``/crm/v3/objects/notes`` (an engagement associated with the contact), which is not in
        # the shipped contracts. A ticket is not a stand-in: it is a work item in a support pipeline, so every note
        # would open work in someone's queue and misfile the customer's history.
        raise ConnectorError(
            f"HubSpot notes are {NOT_IN_CONTRACTS} (/crm/v3/objects/notes is not among the contracts).", permanent=True
        )

    def create_task(self, customer_id: str, title: str, due: datetime | None, *, idempotency_key: str) -> str:
        raise ConnectorError(
            f"HubSpot tasks are {NOT_IN_CONTRACTS} (/crm/v3/objects/tasks is not among the contracts).", permanent=True
        )


# --- Requests ----------------------------------------------------------------------------------------------------


def _identity_filters(*, email: str, phone: str, external_id: str, config: dict[str, Any]) -> list[dict[str, str]]:
    """Build the EQ filters of a contact lookup; refuse an empty or malformed lookup before it is sent."""
    email, phone, external_id = email.strip(), phone.strip(), external_id.strip()
    if not (email or phone or external_id):
        raise ConnectorError(
            "A HubSpot contact lookup needs an email, a phone number or an external id.", permanent=True
        )
    filters = []
    if email:
        if "@" not in email or any(c.isspace() for c in email):
            raise ConnectorError(f"Not an email address: {email!r}", permanent=True)
        filters.append({"propertyName": "email", "operator": "EQ", "value": email})
    if phone:
        # EQ compares the stored value exactly: store and search phone numbers in one format (E.164).
        filters.append({"propertyName": "phone", "operator": "EQ", "value": phone})
    if external_id:
        prop = config.get("external_id_property", "")
        if not prop:
            raise ConnectorError(
                "Set config['external_id_property'] to the HubSpot contact property that holds external ids.",
                permanent=True,
            )
        filters.append({"propertyName": prop, "operator": "EQ", "value": external_id})
    return filters


def _object_path(obj: str, object_id: str) -> str:
    if obj not in OBJECT_TYPES:
        raise ConnectorError(f"HubSpot has no {obj!r} here; objects: {', '.join(OBJECT_TYPES)}", permanent=True)
    object_id = str(object_id).strip()
    if not object_id.isdigit():  # HubSpot record ids are numeric; anything else would change the URL path
        raise ConnectorError(f"Not a HubSpot record id: {object_id!r}", permanent=True)
    return f"/crm/v3/objects/{OBJECT_TYPES[obj]}/{object_id}"


def _property_name(field_path: str) -> str:
    prefix, _, name = field_path.partition(".")
    if prefix != "properties" or not name or "." in name:
        raise ConnectorError(
            f"Only HubSpot properties are writable, named properties.<internal name>; not {field_path!r}",
            permanent=True,
        )
    return name


def _property_value(value: Any) -> str:
    """Return a property value as the string HubSpot takes (every property value in the contract is a string)."""
    if value is None:
        return ""  # "Properties values can be cleared by passing an empty string" (the contract's PATCH description)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ";".join(value)  # a multiple-checkbox value
    raise ConnectorError(f"Cannot send a {type(value).__name__} as a HubSpot property value.", permanent=True)


# --- Responses ---------------------------------------------------------------------------------------------------


def _customer(result: Any, *, what: str) -> CustomerRef:
    properties = require(result, "properties", dict, what=what)
    # An unset property comes back as null on the live API although the contract types values as strings.
    name = " ".join(p for p in (properties.get("firstname"), properties.get("lastname")) if p)
    return CustomerRef(id=require(result, "id", str, what=what), email=properties.get("email") or "", name=name)


def _record(data: Any, *, what: str) -> dict[str, Any]:
    record = {
        "id": require(data, "id", str, what=what),
        "properties": require(data, "properties", dict, what=what),
    }
    for key in ("createdAt", "updatedAt", "archived", "archivedAt"):
        if key in data:
            record[key] = data[key]
    flat = flatten(record)
    flat.pop("properties", None)  # a record with no properties flattens to an empty "properties" value
    return flat


def hubspot_error_message(response: httpx.Response) -> str:
    """Return HubSpot's own message for an error response, with its category: ``Property values were not valid
    (VALIDATION_ERROR)``. The contracts' Error schema: ``{"message", "category", "correlationId", …}``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return ""
    category = body.get("category")
    return f"{body['message']} ({category})" if isinstance(category, str) and category else body["message"]
