"""Zendesk Support as the helpdesk connector: ticket search, escalation tickets, comments, priority and status.

Contract tested against: Zendesk's Support OpenAPI document trimmed to tickets, users, search, organizations and
requests (shared/contracts/zendesk/support-oas.customer-service.json). Its paths have no ``.json`` suffix; the live
API accepts both forms, so requests go out exactly as the contract spells them. Macros are not in that contract and
are refused; docs/connectors/vendors-hubspot-zendesk.md lists the gaps.

Configuration (``Connector.config``):
- ``email`` (required): the Zendesk agent the API token belongs to.
- ``custom_fields``: TicketDraft field name → Zendesk ticket field id (``{"issue_category": 360001, ...}``).
- ``groups``: queue name → Zendesk group id, for ``TicketDraft.queue`` and ``set_priority(queue=...)``.
- ``tags``: tags put on every escalation ticket (default ``["steward"]``).
``Connector.base_url`` is the account, ``https://{subdomain}.zendesk.com``; the credential is the API token.

Field paths: a ticket or user reads as its own JSON paths (``status``, ``via.channel``, ``user_fields.plan``); a
ticket's custom fields read as ``custom_fields.<field id>``.

Idempotency: Zendesk honours an ``Idempotency-Key`` header on ticket creation only ("Idempotency",
https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency); the header is not in the contract,
and comments and updates have no such key. ``honours_idempotency`` is one flag for the whole adapter, so it stays
False: the gateway keeps a WriteReceipt for every write and never repeats one whose outcome is unknown. The header is
still sent with ticket creation, so a repeat that does reach Zendesk makes no second ticket.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from django.utils.text import slugify

from connectors.base import (
    ConnectorError,
    CustomerRef,
    HelpdeskAdapter,
    Macro,
    TicketDraft,
    TicketRef,
    flatten,
    register,
)
from connectors.http import HttpClient, require
from connectors.models import Connector

# Our priority (1 critical … 5 very low) → Zendesk's four (TicketObject.priority enum in the contract).
PRIORITIES = {1: "urgent", 2: "high", 3: "normal", 4: "low", 5: "low"}
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")  # TicketObject.status enum in the contract
WRITABLE = {"priority": tuple(dict.fromkeys(PRIORITIES.values())), "status": STATUSES}
DRAFT_FIELDS = frozenset(TicketDraft.__dataclass_fields__)
MAX_TRANSCRIPT = 50_000  # characters kept in the ticket; the whole transcript stays with the Steward conversation


@register
class ZendeskAdapter(HelpdeskAdapter):
    key = "zendesk"
    honours_idempotency = False
    objects = ("ticket", "user")

    def __init__(
        self,
        connector: Connector,
        *,
        credential: str | None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(connector, credential=credential, transport=transport)
        self.config: dict[str, Any] = {} if connector.config is None else connector.config
        if not credential or not connector.base_url:
            raise ConnectorError(
                f"The connector {connector.name} needs its base URL (https://{{subdomain}}.zendesk.com) and the API "
                "token as its credential.",
                permanent=True,
            )
        if problems := self.config_errors(self.config):
            raise ConnectorError(f"The connector {connector.name}: {' '.join(problems)}", permanent=True)
        email = self.config["email"]
        self.base_url = connector.base_url.rstrip("/")
        # API token authentication: Basic with "{email}/token:{api_token}" (Zendesk: "API token" authentication).
        token = base64.b64encode(f"{email}/token:{credential}".encode()).decode()
        self.http = HttpClient(
            base_url=self.base_url,
            timeout=connector.timeout_seconds,
            headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
            transport=transport,
            sleep=sleep,
            describe_error=zendesk_error_message,
        )

    @classmethod
    def config_errors(cls, config: Any) -> list[str]:
        """Return what is wrong with ``config`` for this adapter (empty when it is valid); the admin shows these."""
        if not isinstance(config, dict):
            return ["The configuration must be a JSON object."]
        problems = []
        email = config.get("email")
        if not isinstance(email, str) or email.count("@") != 1:
            problems.append("config['email'] must be the email of the Zendesk agent the API token belongs to.")
        custom = config.get("custom_fields", {})
        if not isinstance(custom, dict):
            problems.append("config['custom_fields'] must map ticket draft fields to Zendesk field ids.")
        else:
            if unknown := sorted(set(custom) - DRAFT_FIELDS):
                problems.append(
                    f"config['custom_fields'] names fields a ticket draft does not have: {', '.join(unknown)}."
                )
            if bad := sorted(name for name, field_id in custom.items() if not str(field_id).isdigit()):
                problems.append(
                    f"config['custom_fields'] has ids that are not Zendesk field ids for: {', '.join(bad)}."
                )
        groups = config.get("groups", {})
        if not isinstance(groups, dict) or not all(str(g).isdigit() for g in groups.values()):
            problems.append("config['groups'] must map queue names to Zendesk group ids.")
        tags = config.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t and " " not in t for t in tags):
            problems.append("config['tags'] must be a list of tags without spaces.")
        return problems

    # --- Reads --------------------------------------------------------------------------------------------------

    def search_tickets(self, customer: CustomerRef) -> list[TicketRef]:
        """Return the customer's tickets, most recently updated first."""
        email = _search_email(customer.email)
        what = "Zendesk ticket search"
        params = {"query": f"type:ticket requester:{email}", "sort_by": "updated_at", "sort_order": "desc"}
        data = self.http.request("GET", "/api/v2/search", what=what, retry=True, params=params)
        results = require(data, "results", list, what=what)
        return [
            self._ticket_ref(r, what=what) for r in results if isinstance(r, dict) and r.get("result_type") == "ticket"
        ]

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        if obj not in self.objects:
            raise ConnectorError(f"Zendesk has no {obj!r} here; objects: {', '.join(self.objects)}", permanent=True)
        what = f"Zendesk {obj} read"
        data = self.http.request("GET", f"/api/v2/{obj}s/{_zendesk_id(object_id)}", what=what, retry=True)
        record = dict(require(data, obj, dict, what=what))
        require(record, "id", int, what=what)
        if obj == "ticket":
            # [{"id": 27642, "value": "745"}] → custom_fields.27642: a mapping can name one field.
            fields = record.pop("custom_fields", None) or []
            record["custom_fields"] = {
                str(f["id"]): f.get("value") for f in fields if isinstance(f, dict) and "id" in f
            }
        return flatten(record)

    def list_macros(self) -> list[Macro]:
        # /api/v2/macros is in Zendesk's full spec but not in the trimmed contract the tests validate against.
        raise ConnectorError(
            "Zendesk macros are not supported by the contracts we can test against (/api/v2/macros is not in the "
            "trimmed contract).",
            permanent=True,
        )

    def health_check(self) -> None:
        what = "Zendesk health check"
        data = self.http.request("GET", "/api/v2/users/me", what=what, retry=True)
        # Show Self is "Allowed For: Anonymous users" (the contract's own description): a refused or missing token
        # can still get a 200, for a user without an id. Only a user with an id proves the token works.
        user = require(data, "user", dict, what=what)
        if not isinstance(user.get("id"), int):
            raise ConnectorError(
                f"{what}: Zendesk answered as an anonymous user; the API token was not accepted", auth=True
            )

    # --- Writes -------------------------------------------------------------------------------------------------

    def create_ticket(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        body = {"ticket": self._ticket_fields(draft)}
        what = "Zendesk ticket creation"
        data = self.http.request(
            "POST", "/api/v2/tickets", what=what, retry=False, json=body, headers={"Idempotency-Key": idempotency_key}
        )
        return self._ticket_ref(require(data, "ticket", dict, what=what), what=what)

    def add_comment(self, ticket_id: str, body: str, *, public: bool, idempotency_key: str) -> None:
        if not body.strip():
            raise ConnectorError("A Zendesk comment needs a body.", permanent=True)
        self._update(ticket_id, {"comment": {"body": body, "public": public}}, what="Zendesk comment")

    def set_priority(self, ticket_id: str, priority: int, *, queue: str = "", idempotency_key: str) -> None:
        if priority not in PRIORITIES:
            raise ConnectorError(f"Priority must be 1 (critical) to 5 (very low), not {priority!r}.", permanent=True)
        fields: dict[str, Any] = {"priority": PRIORITIES[priority]}
        if queue:
            group = self._group(queue)
            if group is None:
                raise ConnectorError(
                    f"The queue {queue!r} has no Zendesk group id in config['groups'].", permanent=True
                )
            fields["group_id"] = group
        self._update(ticket_id, fields, what="Zendesk priority change")

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        """Set a ticket's priority or status and return the value Zendesk stored."""
        if obj != "ticket" or field_path not in WRITABLE:
            raise ConnectorError(
                f"Only a ticket's priority and status are writable in Zendesk through Steward, not {obj}.{field_path}.",
                permanent=True,
            )
        if value not in WRITABLE[field_path]:
            raise ConnectorError(
                f"Zendesk ticket {field_path} must be one of {', '.join(WRITABLE[field_path])}; not {value!r}.",
                permanent=True,
            )
        ticket = self._update(object_id, {field_path: value}, what=f"Zendesk ticket {field_path} change")
        return ticket.get(field_path, value)

    # --- Helpers ------------------------------------------------------------------------------------------------

    def _update(self, ticket_id: str, fields: dict[str, Any], *, what: str) -> dict[str, Any]:
        data = self.http.request(
            "PUT", f"/api/v2/tickets/{_zendesk_id(ticket_id)}", what=what, retry=False, json={"ticket": fields}
        )
        ticket = require(data, "ticket", dict, what=what)
        require(ticket, "id", int, what=what)
        return ticket

    def _ticket_ref(self, ticket: dict[str, Any], *, what: str) -> TicketRef:
        ticket_id = require(ticket, "id", int, what=what)
        # A ticket's "url" is its API address; people need the agent interface's.
        return TicketRef(
            id=str(ticket_id),
            url=f"{self.base_url}/agent/tickets/{ticket_id}",
            status=ticket.get("status") or "",
            subject=ticket.get("subject") or "",
        )

    def _ticket_fields(self, draft: TicketDraft) -> dict[str, Any]:
        """Return the TicketObject for an escalation: summary and transcript as an internal note, routing fields."""
        if draft.priority not in PRIORITIES:
            raise ConnectorError(
                f"Priority must be 1 (critical) to 5 (very low), not {draft.priority!r}.", permanent=True
            )
        fields: dict[str, Any] = {
            "subject": draft.subject.strip() or f"Escalation from Steward ({draft.issue_category or 'support'})",
            # Internal (public: false): the summary carries Steward's reasoning (confidence, sentiment, reason), which
            # is for the person taking over, not an email to the customer.
            "comment": {"body": ticket_body(draft), "public": False},
            "priority": PRIORITIES[draft.priority],
            "tags": self._tags(draft),
        }
        if draft.customer_email:
            email = _search_email(draft.customer_email)
            # TicketDraft carries no customer name; Zendesk uses the name only when it has to create the requester.
            fields["requester"] = {"email": email, "name": email}
        if draft.conversation_id:
            fields["external_id"] = draft.conversation_id  # links the ticket back to the Steward conversation
        group = self._group(draft.queue) if draft.queue else None
        if group is not None:
            # An unmapped queue does not refuse the escalation: the ticket lands in the default group instead, with
            # the queue named in its summary.
            fields["group_id"] = group
        custom = _custom_fields(draft, self.config.get("custom_fields", {}))
        if custom:
            fields["custom_fields"] = custom
        return fields

    def _group(self, queue: str) -> int | None:
        """Return the Zendesk group id configured for a queue, or None when the queue is not mapped."""
        group = self.config.get("groups", {}).get(queue)
        return None if group is None else int(group)  # ids checked by config_errors

    def _tags(self, draft: TicketDraft) -> list[str]:
        tags = list(self.config.get("tags", ["steward"]))
        for prefix, value in (("category", draft.issue_category), ("channel", draft.channel)):
            slug = slugify(value).replace("-", "_")
            if slug:
                tags.append(f"{prefix}_{slug}")  # Zendesk tags cannot hold spaces: a space would split the tag
        return list(dict.fromkeys(tags))


def ticket_body(draft: TicketDraft) -> str:
    """Return the escalation ticket's first comment: a readable summary, then the transcript."""
    lines = draft.handover_lines()
    transcript = draft.transcript
    if len(transcript) > MAX_TRANSCRIPT:
        omitted = len(transcript) - MAX_TRANSCRIPT
        transcript = transcript[-MAX_TRANSCRIPT:]
        transcript = f"[{omitted} earlier characters left out; the full transcript is in Steward]\n{transcript}"
    return "\n".join([*lines, "", "--- Transcript ---", transcript])


def _custom_fields(draft: TicketDraft, mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """Return Zendesk custom field values for the mapped TicketDraft fields."""
    values = []
    for name, field_id in mapping.items():  # names and ids checked by ZendeskAdapter.config_errors
        value = getattr(draft, name)
        if value is None:
            continue  # the contract's field value is a string, number, boolean or list of strings: never null
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, list):
            value = [str(v) for v in value]
        values.append({"id": int(field_id), "value": value})
    return values


def _search_email(email: str) -> str:
    """Return an email fit for a requester or a search query; refuse one that is empty or would change the query."""
    email = (email or "").strip()
    if not email:
        raise ConnectorError("Finding a customer's Zendesk tickets needs their email.", permanent=True)
    if email.count("@") != 1 or any(c.isspace() or c in "\"'():<>" for c in email):
        raise ConnectorError(f"Not an email address: {email!r}", permanent=True)
    return email


def _zendesk_id(value: str) -> int:
    value = str(value).strip()
    if not value.isdigit():  # Zendesk ids are integers (TicketId / UserId parameters in the contract)
        raise ConnectorError(f"Not a Zendesk id: {value!r}", permanent=True)
    return int(value)


def zendesk_error_message(response: httpx.Response) -> str:
    """Return Zendesk's own message for an error response: ``{"error", "description"}`` (the contract's search
    description, "Errors JSON Format") or the contract's ``Errors`` schema, ``{"errors": [{"code", "title"}]}``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error, description = body.get("error"), body.get("description")
    if isinstance(error, str) and error:
        return f"{error}: {description}" if isinstance(description, str) and description else error
    errors = body.get("errors")
    if isinstance(errors, list):
        return "; ".join(str(e.get("title") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors)
    return ""
