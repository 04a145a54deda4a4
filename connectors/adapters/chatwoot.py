"""Chatwoot as the helpdesk connector, over its application API (``/api/v1/accounts/{account_id}/…``), tested against
Chatwoot's own OpenAPI document (shared/contracts/chatwoot/swagger.json).

Chatwoot has no tickets: a ticket here is a *conversation* of a contact. ``search_tickets`` finds the customer's
contact and lists its conversations; ``create_ticket`` finds or creates the contact, opens a conversation in the
configured inbox and posts the handover note as its first message — a private note, so the summary and transcript
reach the team and never the customer (the create-conversation payload's own ``message`` has no private flag and
would be sent to the customer on channels that deliver outgoing messages, such as email).

Configuration (``Connector.config``):
- ``account_id`` (required): the numeric Chatwoot account.
- ``inbox_id`` (required): the inbox escalations open in — an API-channel inbox is the one meant for integrations
  (Chatwoot: "API channel").
- ``teams``: ``{"<queue>": <team id>}`` — the team a ticket for that queue is assigned to.
- ``labels``: labels added to every escalation (the issue category is added as a label too).
``Connector.base_url`` is the Chatwoot installation (``https://app.chatwoot.com`` for Chatwoot Cloud); the credential
is a user's access token (Profile settings → Access token), sent in the ``api_access_token`` header.

Idempotency: the contract offers no idempotency key (no header, no field) and creating a conversation or a message is
not de-duplicated by Chatwoot, so ``honours_idempotency`` is False: writes are never retried here, and the gateway's
WriteReceipt makes a repeated call return the first result instead of posting twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from connectors.base import (
    ConnectorError,
    CustomerRef,
    HelpdeskAdapter,
    Macro,
    NotFound,
    TicketDraft,
    TicketRef,
    flatten,
    register,
)
from connectors.http import HttpClient, require
from connectors.models import Connector

CHATWOOT_CLOUD = "https://app.chatwoot.com"
# TicketDraft priority (1 critical … 5 very low) → the contract's conversation priority enum.
PRIORITIES = {1: "urgent", 2: "high", 3: "medium", 4: "low", 5: "none"}
STATUSES = ("open", "resolved", "pending", "snoozed")  # the contract's enum for toggle_status
MESSAGE_MAX = 150_000  # Chatwoot's Message model validates content length (app/models/message.rb)
TRUNCATED = "\n\n[… transcript cut to fit Chatwoot's message limit; the full one is in Steward]"


@register
class ChatwootAdapter(HelpdeskAdapter):
    key = "chatwoot"
    honours_idempotency = False
    objects = ("conversation", "contact")

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
                f"The connector {connector.name} needs a Chatwoot access token as its credential.", permanent=True
            )
        config: dict[str, Any] = {} if connector.config is None else connector.config
        if problems := self.config_errors(config):
            raise ConnectorError(f"The connector {connector.name}: {' '.join(problems)}", permanent=True)
        self.base_url = (connector.base_url or CHATWOOT_CLOUD).rstrip("/")
        self.account_id = int(config["account_id"])
        self.inbox_id = int(config["inbox_id"])
        self.teams = {queue: int(team) for queue, team in config.get("teams", {}).items()}
        self.labels: list[str] = config.get("labels", [])
        self.account = f"/api/v1/accounts/{self.account_id}"
        self.http = HttpClient(
            base_url=self.base_url,
            timeout=connector.timeout_seconds,
            headers={"api_access_token": credential, "Accept": "application/json"},
            transport=transport,
            sleep=sleep,
            describe_error=chatwoot_error_message,
        )

    @classmethod
    def config_errors(cls, config: Any) -> list[str]:
        """Return what is wrong with ``config`` for this adapter (empty when it is valid); the admin shows these."""
        if not isinstance(config, dict):
            return ["The configuration must be a JSON object."]
        problems = []
        if not _is_id(config.get("account_id")):
            problems.append("config['account_id'] must be the numeric Chatwoot account id.")
        if not _is_id(config.get("inbox_id")):
            problems.append("config['inbox_id'] must be the numeric id of the inbox escalations open in.")
        teams = config.get("teams", {})
        if not isinstance(teams, dict) or not all(_is_id(team) for team in teams.values()):
            problems.append("config['teams'] must map queue names to Chatwoot team ids.")
        labels = config.get("labels", [])
        if not isinstance(labels, list) or not all(
            isinstance(label, str) and _labels([label]) == [label] for label in labels
        ):
            problems.append("config['labels'] must be a list of Chatwoot labels (lowercase letters, digits, - and _).")
        return problems

    # --- Reads --------------------------------------------------------------------------------------------------

    def search_tickets(self, customer: CustomerRef) -> list[TicketRef]:
        """Return the conversations of the customer's contact(s) as Chatwoot lists them: newest first, at most 20 per
        contact, and only those in inboxes the token's user is a member of (Contacts::ConversationsController)."""
        tickets: list[TicketRef] = []
        for contact in self._matching_contacts(customer):
            what = "Chatwoot contact conversations"
            data = self._get(f"{self.account}/contacts/{contact['id']}/conversations", what=what)
            tickets += [self._ticket(item, what=what) for item in require(data, "payload", list, what=what)]
        return tickets

    def list_macros(self) -> list[Macro]:
        """Return the account's canned responses: the reply templates the contract offers (it has no macros)."""
        what = "Chatwoot canned responses"
        data = self._get(f"{self.account}/canned_responses", what=what)
        if not isinstance(data, list):
            raise ConnectorError(f"{what}: expected a list, got {type(data).__name__} (the API may have changed)")
        return [
            Macro(
                id=str(require(item, "id", int, what=what)),
                title=str(item.get("short_code") or ""),
                body=str(item.get("content") or ""),
            )
            for item in data
        ]

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        if obj == "conversation":
            data = self._get(f"{self.account}/conversations/{_numeric(object_id, obj)}", what="Chatwoot conversation")
            require(data, "id", int, what="Chatwoot conversation")
            return flatten(data)
        if obj == "contact":
            what = "Chatwoot contact"
            data = self._get(f"{self.account}/contacts/{_numeric(object_id, obj)}", what=what)
            return flatten(require(data, "payload", dict, what=what))
        raise ConnectorError(f"Chatwoot objects here are conversation and contact, not {obj!r}", permanent=True)

    def health_check(self) -> None:
        require(self._get(self.account, what="Chatwoot health check"), "id", int, what="Chatwoot health check")

    # --- Writes -------------------------------------------------------------------------------------------------

    def create_ticket(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        """Open a conversation for the customer with the handover note, its priority, team and labels.

        Several calls, none of them undoable here: a failure part-way leaves a conversation to finish by hand, and
        the gateway records the write's outcome as unknown rather than opening a second one.
        """
        priority = _priority(draft.priority)  # checked, like the team, before anything is created
        team_id = self._team_for(draft.queue)
        contact_id, source_id = self._contact_in_inbox(draft)
        body: dict[str, Any] = {
            "source_id": source_id,
            "inbox_id": self.inbox_id,
            "contact_id": contact_id,
            "status": "open",
        }
        if team_id is not None:
            body["team_id"] = team_id
        what = "Chatwoot conversation create"
        created = self._post(f"{self.account}/conversations", body, what=what)
        conversation_id = require(created, "id", int, what=what)
        self._post_message(conversation_id, handover_note(draft), private=True)
        self._set_priority(conversation_id, priority)
        labels = _labels([*self.labels, draft.issue_category])
        if labels:
            what = "Chatwoot conversation labels"
            self._post(f"{self.account}/conversations/{conversation_id}/labels", {"labels": labels}, what=what)
        return TicketRef(id=str(conversation_id), url=self._url(conversation_id), status="open", subject=draft.subject)

    def add_comment(self, ticket_id: str, body: str, *, public: bool, idempotency_key: str) -> None:
        """Post a reply to the customer (``public``) or a private note for the team."""
        self._post_message(_numeric(ticket_id, "conversation"), body, private=not public)

    def set_priority(self, ticket_id: str, priority: int, *, queue: str = "", idempotency_key: str) -> None:
        """Set the conversation's priority and, for a configured queue, assign it to that queue's team."""
        conversation_id = _numeric(ticket_id, "conversation")
        name = _priority(priority)
        team_id = self._team_for(queue)  # checked first: an unknown queue changes nothing
        self._set_priority(conversation_id, name)
        if team_id is not None:
            what = "Chatwoot conversation assignment"
            self._post(f"{self.account}/conversations/{conversation_id}/assignments", {"team_id": team_id}, what=what)

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        """Change a conversation's ``status`` or ``priority`` (the two fields the contract has endpoints for)."""
        if obj != "conversation" or field_path not in ("status", "priority"):
            raise ConnectorError(
                f"Chatwoot {obj}.{field_path} cannot be written here (conversation status and priority can)",
                permanent=True,
            )
        conversation_id = _numeric(object_id, obj)
        path = f"{self.account}/conversations/{conversation_id}"
        if field_path == "priority":
            if value not in PRIORITIES.values():
                raise ConnectorError(f"Chatwoot priorities are {', '.join(PRIORITIES.values())}", permanent=True)
            self._set_priority(conversation_id, value)
            return value
        if value not in STATUSES:
            raise ConnectorError(f"Chatwoot conversation statuses are {', '.join(STATUSES)}", permanent=True)
        what = "Chatwoot status change"
        data = self._post(f"{path}/toggle_status", {"status": value}, what=what)
        payload = data.get("payload") if isinstance(data, dict) else None
        return payload.get("current_status", value) if isinstance(payload, dict) else value

    # --- Contacts -----------------------------------------------------------------------------------------------

    def _matching_contacts(self, customer: CustomerRef) -> list[dict[str, Any]]:
        """Return the contacts that are this customer: same email (any case) or the customer's id as identifier.

        Chatwoot's search matches parts of names, emails, phones and identifiers, so its hits are filtered here.
        """
        query = customer.email or customer.id
        if not query:
            return []
        what = "Chatwoot contact search"
        data = self._get(f"{self.account}/contacts/search", what=what, params={"q": query})
        return [c for c in require(data, "payload", list, what=what) if _same_customer(c, customer, what=what)]

    def _contact_in_inbox(self, draft: TicketDraft) -> tuple[int, str]:
        """Return the customer's contact id and its source id in the inbox, creating either as needed."""
        customer = CustomerRef(id=draft.customer_id, email=draft.customer_email)
        if not (customer.id or customer.email):
            raise ConnectorError("A Chatwoot ticket needs the customer's email or id", permanent=True)
        found = self._matching_contacts(customer)
        contact = found[0] if found else self._create_contact(customer)
        contact_id = require(contact, "id", int, what="Chatwoot contact")
        for contact_inbox in contact.get("contact_inboxes") or []:
            inbox = contact_inbox.get("inbox") or {}
            if inbox.get("id") == self.inbox_id and contact_inbox.get("source_id"):
                return contact_id, contact_inbox["source_id"]
        what = "Chatwoot contact inbox create"
        body = {"inbox_id": self.inbox_id}
        created = self._post(f"{self.account}/contacts/{contact_id}/contact_inboxes", body, what=what)
        return contact_id, require(created, "source_id", str, what=what)

    def _create_contact(self, customer: CustomerRef) -> dict[str, Any]:
        body: dict[str, Any] = {"inbox_id": self.inbox_id}
        if customer.email:
            body["email"] = customer.email
        if customer.id:
            body["identifier"] = customer.id
        what = "Chatwoot contact create"
        return _created_contact(self._post(f"{self.account}/contacts", body, what=what), what=what)

    # --- Helpers ------------------------------------------------------------------------------------------------

    def _post_message(self, conversation_id: int, content: str, *, private: bool) -> None:
        # message_type "outgoing" is a message from the team; with private=true it is an internal note
        # (Chatwoot: "Create New Message" — private: "Flag to identify if it is a private note").
        body = {"content": content, "message_type": "outgoing", "private": private}
        self._post(f"{self.account}/conversations/{conversation_id}/messages", body, what="Chatwoot message")

    def _set_priority(self, conversation_id: int, priority: str) -> None:
        path = f"{self.account}/conversations/{conversation_id}/toggle_priority"
        self._post(path, {"priority": priority}, what="Chatwoot priority change")

    def _team_for(self, queue: str) -> int | None:
        if not queue:
            return None
        if queue not in self.teams:
            raise ConnectorError(f"No Chatwoot team is configured for the queue {queue!r}", permanent=True)
        return self.teams[queue]

    def _ticket(self, conversation: Any, *, what: str) -> TicketRef:
        conversation_id = require(conversation, "id", int, what=what)
        attributes = conversation.get("additional_attributes") or {}
        last = conversation.get("last_non_activity_message") or {}
        subject = attributes.get("mail_subject") or (last.get("content") or "")[:80]
        return TicketRef(
            id=str(conversation_id),
            url=self._url(conversation_id),
            status=str(conversation.get("status") or ""),
            subject=subject,
        )

    def _url(self, conversation_id: int) -> str:
        return f"{self.base_url}/app/accounts/{self.account_id}/conversations/{conversation_id}"

    def _get(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
        return self.http.request("GET", path, what=what, retry=True, params=params)

    def _post(self, path: str, body: dict[str, Any], *, what: str) -> Any:
        return self.http.request("POST", path, what=what, retry=False, json=body)


# --- Parsing ------------------------------------------------------------------------------------------------------


def _is_id(value: Any) -> bool:
    return not isinstance(value, bool) and str(value).isdigit() and int(value) > 0


def _priority(priority: int) -> str:
    if priority not in PRIORITIES:
        raise ConnectorError(f"A priority is 1 (critical) to 5 (very low), not {priority!r}", permanent=True)
    return PRIORITIES[priority]


def _numeric(object_id: str, obj: str) -> int:
    """Chatwoot ids are numbers; anything else cannot name one of its records."""
    if not str(object_id).isdigit():
        raise NotFound(f"Chatwoot: {object_id!r} is not a {obj} id")
    return int(object_id)


def _same_customer(contact: Any, customer: CustomerRef, *, what: str) -> bool:
    require(contact, "id", int, what=what)
    email = (contact.get("email") or "").casefold()
    if customer.email and email == customer.email.casefold():
        return True
    return bool(customer.id) and contact.get("identifier") == customer.id


def _created_contact(data: Any, *, what: str) -> dict[str, Any]:
    """Return the created contact from either shape of the create-contact response.

    Chatwoot sends ``{"payload": {"contact": {…}, "contact_inbox": {"source_id", "inbox"}}}``
    (app/views/api/v1/accounts/contacts/create.json.jbuilder); its OpenAPI document says ``extended_contact``
    (the contact's fields at the top level, ``payload`` a list). Both are read; a contact inbox returned either way is
    kept so no second call is needed.
    """
    payload = data.get("payload") if isinstance(data, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("contact"), dict):
        contact = dict(payload["contact"])
        contact_inbox = payload.get("contact_inbox")
        if isinstance(contact_inbox, dict) and contact_inbox.get("source_id"):
            contact["contact_inboxes"] = [*(contact.get("contact_inboxes") or []), contact_inbox]
        return contact
    if isinstance(data, dict) and "id" in data:
        return data
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        return payload[0]
    raise ConnectorError(f"{what}: the response has no contact (the API may have changed)")


def _labels(names: list[str]) -> list[str]:
    """Chatwoot label titles are lowercase letters, digits, ``-`` and ``_``; ``Billing issue`` → ``billing-issue``."""
    labels = []
    for name in names:
        label = re.sub(r"[^a-z0-9_-]+", "-", str(name).strip().lower()).strip("-")
        if label and label not in labels:
            labels.append(label)
    return labels


def handover_note(draft: TicketDraft) -> str:
    """Return the private note a person reads to take over without asking the customer again."""
    lines = [f"**{draft.subject}**", *draft.handover_lines()]
    head = "\n".join(lines) + "\n\n--- Transcript ---\n"
    transcript = draft.transcript
    if len(head) + len(transcript) > MESSAGE_MAX:
        transcript = transcript[: MESSAGE_MAX - len(head) - len(TRUNCATED)] + TRUNCATED
    return head + transcript


def chatwoot_error_message(response: httpx.Response) -> str:
    """Return Chatwoot's own message for an error response (``{"error": …}``, ``{"message": …}`` or the contract's
    ``{"description", "errors": [{"field", "message"}]}``)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("error", "message", "description"):
        if isinstance(body.get(key), str) and body[key]:
            return body[key]
    errors = body.get("errors")
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    return ""
