"""Incoming helpdesk webhooks: who sent them (each vendor's documented authentication), what they say (each vendor's
documented payload, checked here by hand: the vendors' OpenAPI contracts are test data, not something the running
product reads), and which deliveries were already taken (a replayed request is refused).

- Zendesk signs every webhook request: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(signing secret,
  ``X-Zendesk-Webhook-Signature-Timestamp`` + raw body)) (Zendesk: "Verifying webhook authenticity",
  https://developer.zendesk.com/documentation/webhooks/verifying/). The signing secret is a governance secret
  (``Connector.webhook_secret``), read like a credential: audited, never shown.
- Chatwoot documents no signature for webhooks, so its webhook URL carries a random token per connector
  (``Connector.webhook_token``), compared in constant time and rotated from the connector admin.

What a delivery says becomes a ``TicketUpdate``; ``agent.ticket_outcomes`` finds the conversation whose ticket it is
and records the analytics events (connectors knows nothing of conversations). The embedded helpdesk needs no webhook:
``embedded_followup_update`` reads the same facts from its own follow-ups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from helpdesk.models import FollowUp

from connectors.adapters.helpdesk_embedded import STATUS_NAMES
from connectors.models import Connector, WebhookDelivery
from connectors.services import connector_may_change
from governance.audit import Actor, audit_record
from governance.changes import config_object_save
from governance.exceptions import GovernanceError, NotPermitted
from governance.models import EventType, SecretReference
from governance.roles import Principal
from governance.secrets import secret_read

MAX_BODY_BYTES = 1024 * 1024
# Zendesk: "a timestamp ... to prevent replay attacks"; a request signed longer ago than this is refused.
SIGNATURE_TOLERANCE = timedelta(minutes=5)
SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"

# Where each outcome comes from (the ``source`` of the analytics events).
EMBEDDED, ZENDESK, CHATWOOT = "embedded", "zendesk", "chatwoot"
# The adapters whose webhooks are received, and how each authenticates.
SIGNED_ADAPTERS = (ZENDESK,)
TOKEN_ADAPTERS = (CHATWOOT,)

SOLVED, OPEN = "solved", "open"
# A helpdesk status → whether the ticket is solved or open. A status in neither (the embedded helpdesk's
# "duplicate") moves nothing. Zendesk: the TicketObject status enum; Chatwoot: the conversation status enum, plus
# "snoozed", which Chatwoot sends although its OpenAPI document leaves it out (a snoozed conversation reopens by
# itself: it is not solved).
TICKET_STATES: dict[str, dict[str, str]] = {
    EMBEDDED: {"open": OPEN, "reopened": OPEN, "resolved": SOLVED, "closed": SOLVED},
    ZENDESK: {"new": OPEN, "open": OPEN, "pending": OPEN, "hold": OPEN, "solved": SOLVED, "closed": SOLVED},
    CHATWOOT: {"open": OPEN, "pending": OPEN, "snoozed": OPEN, "resolved": SOLVED},
}
ZENDESK_STATUS_CHANGED = "zen:event-type:ticket.status_changed"
ZENDESK_COMMENT_ADDED = "zen:event-type:ticket.comment_added"
CHATWOOT_STATUS_CHANGED = "conversation_status_changed"
CHATWOOT_MESSAGE_CREATED = "message_created"
CHATWOOT_MESSAGE_TYPES = ("incoming", "outgoing", "activity", "template")  # Message.message_type, in enum order


class WebhookRefused(Exception):
    """A webhook request is refused; ``status`` is the HTTP answer."""

    status = 400


class PayloadInvalid(WebhookRefused):
    """The body is not JSON, or not in the vendor's documented shape (the message names the field)."""


class NotAuthenticated(WebhookRefused):
    status = 401


class SigningSecretUnavailable(WebhookRefused):
    """The connector's signing secret cannot be read here (our configuration, not the sender's fault: retry later)."""

    status = 503


class DeliveryReplayed(WebhookRefused):
    status = 409


@dataclass(frozen=True)
class TicketUpdate:
    """What one delivery (or one embedded follow-up) says about a ticket.

    ``status``: the helpdesk's status, lower-case ("" when the delivery does not say). ``status_changed``: the delivery
    reports the status at ``at`` (a status event), so it may move the ticket between solved and open; a comment
    event's status is not used for that, as deliveries may arrive out of order. ``first_reply``: a person's public
    reply. ``delivery_key``: the key a replay of the same delivery repeats.
    """

    source: str
    ticket_id: str
    status: str
    at: datetime | None
    status_changed: bool
    first_reply: bool
    ticket_created_at: datetime | None = None
    delivery_key: str = ""


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery of an event type outcomes do not use."""

    reason: str


def ticket_state(source: str, status: str) -> str | None:
    """Return SOLVED or OPEN for a helpdesk status of ``source``, or None for a status that is neither."""
    return TICKET_STATES[source].get(status)


# --- Connectors and authentication ---------------------------------------------------------------------------------


def webhook_connector(*, key: str, adapters: tuple[str, ...]) -> Connector | None:
    """Return the enabled connector with ``key`` whose adapter is one of ``adapters``, or None."""
    connectors = Connector.objects.filter(key=key, adapter__in=adapters, enabled=True)
    return connectors.select_related("webhook_secret").first()


def zendesk_authenticate(
    connector: Connector, *, headers: Mapping[str, str], body: bytes, now: datetime | None = None
) -> None:
    """Raise NotAuthenticated unless the request carries Zendesk's signature of ``body`` with the connector's signing
    secret and a timestamp within SIGNATURE_TOLERANCE of ``now``; SigningSecretUnavailable when the secret cannot
    be read. The cheap checks come first, so an unsigned request never reads the secret (each read is audited)."""
    signature, stamp = headers.get(SIGNATURE_HEADER, ""), headers.get(TIMESTAMP_HEADER, "")
    if not signature or not stamp:
        raise NotAuthenticated(f"The request has no {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers.")
    signed_at = _signature_time(stamp)
    if signed_at is None:
        raise NotAuthenticated(f"{TIMESTAMP_HEADER} is not a time: {stamp[:40]!r}.")
    if abs((now or timezone.now()) - signed_at) > SIGNATURE_TOLERANCE:
        raise NotAuthenticated(f"{TIMESTAMP_HEADER} is more than 5 minutes from now: a stale or replayed request.")
    if connector.webhook_secret is None:
        raise NotAuthenticated(f"The connector {connector.key} has no webhook signing secret configured.")
    try:
        secret = secret_read(
            actor=Principal.system(f"{connector.key} webhook"),
            secret_or_name=connector.webhook_secret,
            purpose=f"verify a webhook request from {connector.name}",
        )
    except GovernanceError as exc:
        raise SigningSecretUnavailable(f"The webhook signing secret cannot be read: {exc}") from None
    expected = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature.encode()):
        raise NotAuthenticated(f"{SIGNATURE_HEADER} does not match the body: wrong signing secret or altered body.")


def chatwoot_authenticate(connector: Connector, *, token: str) -> None:
    """Raise NotAuthenticated unless ``token`` is the connector's webhook URL token (compared in constant time)."""
    if not connector.webhook_token or not hmac.compare_digest(connector.webhook_token.encode(), token.encode()):
        raise NotAuthenticated("The webhook URL's token is not this connector's.")


def _signature_time(stamp: str) -> datetime | None:
    """Zendesk's timestamp is ISO 8601 (``2024-05-01T10:00:00Z``); epoch seconds are read too."""
    if stamp.isdigit():
        return datetime.fromtimestamp(int(stamp), tz=UTC)
    try:
        parsed = parse_datetime(stamp)
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


# --- Payloads ------------------------------------------------------------------------------------------------------


def payload_load(body: bytes) -> dict[str, Any]:
    """Return the JSON object in ``body``; raise PayloadInvalid for anything else."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadInvalid(f"The body is not JSON: {exc}") from None
    except RecursionError:
        raise PayloadInvalid("The body is nested too deeply to be a webhook payload.") from None
    if not isinstance(payload, dict):
        raise PayloadInvalid(f"The body must be a JSON object, not {type(payload).__name__}.")
    return payload


def zendesk_update(payload: dict[str, Any]) -> TicketUpdate | Ignored:
    """Read a Zendesk ticket event (event subscription webhook, https://developer.zendesk.com/api-reference/webhooks/
    event-types/ticket-events/): ``status_changed`` moves the ticket, ``comment_added`` by staff in public is a reply.
    Other event types are Ignored. Zendesk writes statuses in capitals (``"SOLVED"``) and ids as strings."""
    kind = _field(payload, "type", str)
    if kind not in (ZENDESK_STATUS_CHANGED, ZENDESK_COMMENT_ADDED):
        return Ignored(f"Zendesk event type {kind[:100]!r} is not used")
    event_id = _field(payload, "id", str)
    if not 0 < len(event_id) <= 200:
        raise PayloadInvalid("The field id must be the event's id (1 to 200 characters).")
    common = {
        "source": ZENDESK,
        "ticket_id": _id(payload, "detail.id"),
        "at": _iso_time(payload, "time"),
        "ticket_created_at": _iso_time(payload, "detail.created_at", required=False),
        "delivery_key": event_id,
    }
    if kind == ZENDESK_STATUS_CHANGED:
        status = _status(payload, "event.current", ZENDESK)
        return TicketUpdate(status=status, status_changed=True, first_reply=False, **common)
    public = _field(payload, "event.comment.is_public", bool)
    staff = _field(payload, "event.comment.author.is_staff", bool)
    status = _status(payload, "detail.status", ZENDESK, required=False)
    return TicketUpdate(status=status, status_changed=False, first_reply=public and staff, **common)


def chatwoot_update(payload: dict[str, Any]) -> TicketUpdate | Ignored:
    """Read a Chatwoot webhook event (https://www.chatwoot.com/docs/product/others/webhook-events):
    ``conversation_status_changed`` (the body is the conversation) moves the ticket; ``message_created`` (the body is
    the message, its conversation inside) is a person's reply when it is outgoing, public and sent by a user (an
    agent, not a bot or the contact). Other events are Ignored.

    A ticket is a Chatwoot conversation, by the id its API and webhooks both show (the display id), which is what
    ``ChatwootAdapter.create_ticket`` returns."""
    event = _field(payload, "event", str)
    if event == CHATWOOT_STATUS_CHANGED:
        ticket_id = _id(payload, "id")
        updated = _field(payload, "updated_at", (int, float))
        status = _status(payload, "status", CHATWOOT)
        return TicketUpdate(
            source=CHATWOOT,
            ticket_id=ticket_id,
            status=status,
            at=_epoch(updated),
            status_changed=True,
            first_reply=False,
            ticket_created_at=_chatwoot_time(payload, "created_at"),
            delivery_key=_digest(event, ticket_id, repr(updated), status),
        )
    if event == CHATWOOT_MESSAGE_CREATED:
        message_id = _id(payload, "id")
        message_type = _field(payload, "message_type", (str, int))
        if isinstance(message_type, int) and 0 <= message_type < len(CHATWOOT_MESSAGE_TYPES):
            message_type = CHATWOOT_MESSAGE_TYPES[message_type]
        if message_type not in CHATWOOT_MESSAGE_TYPES:
            raise PayloadInvalid(f"The field message_type must be one of {', '.join(CHATWOOT_MESSAGE_TYPES)}.")
        private = _field(payload, "private", bool)
        # The webhook's sender object says "user" for an agent; the API's message says sender_type "User".
        sender = _field(payload, "sender.type", str, required=False) or _field(
            payload, "sender_type", str, required=False
        )
        return TicketUpdate(
            source=CHATWOOT,
            ticket_id=_id(payload, "conversation.id"),
            status=_status(payload, "conversation.status", CHATWOOT, required=False),
            at=_chatwoot_time(payload, "created_at"),
            status_changed=False,
            first_reply=message_type == "outgoing" and not private and (sender or "").lower() == "user",
            ticket_created_at=_chatwoot_time(payload, "conversation.created_at"),
            delivery_key=_digest(event, message_id),
        )
    return Ignored(f"Chatwoot event {event[:100]!r} is not used")


def embedded_followup_update(followup: FollowUp) -> TicketUpdate:
    """Read what a follow-up of the embedded helpdesk says: the ticket's status now (helpdesk sets it before saving
    the follow-up, whichever path changed it: the staff update form, a bulk close, an e-mail reopening it), and
    whether it is a person's public reply (written by a staff account, not the submitter nor Steward itself)."""
    ticket = followup.ticket
    reply = bool(
        followup.public
        and (followup.comment or "").strip()
        and followup.user_id is not None
        and not followup.is_from_submitter
    )
    return TicketUpdate(
        source=EMBEDDED,
        ticket_id=str(ticket.pk),
        status=STATUS_NAMES.get(ticket.status, str(ticket.status)),
        at=followup.date,
        status_changed=True,
        first_reply=reply,
        ticket_created_at=ticket.created,
    )


def _field(payload: Any, path: str, kinds: type | tuple[type, ...], *, required: bool = True) -> Any:
    """Return the value at a dotted ``path``; raise PayloadInvalid naming the field when it is missing (and
    ``required``) or not of ``kinds``. An absent or null object on the way reads as missing."""
    value = payload
    walked: list[str] = []
    for name in path.split("."):
        if value is None:
            break
        if not isinstance(value, dict):
            raise PayloadInvalid(f"The field {'.'.join(walked)} must be an object.")
        walked.append(name)
        value = value.get(name)
    if value is None:
        if required:
            raise PayloadInvalid(f"The field {path} is missing.")
        return None
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds)
        raise PayloadInvalid(f"The field {path} must be {names}, not {type(value).__name__}.")
    return value


_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "true or false", dict: "an object"}


def _id(payload: Any, path: str) -> str:
    """A vendor's numeric id, sent as a number or a string of digits."""
    value = _field(payload, path, (int, str))
    text = str(value)
    if not text.isdigit() or len(text) > 30:
        raise PayloadInvalid(f"The field {path} must be a numeric id, not {text[:40]!r}.")
    return str(int(text))


def _status(payload: Any, path: str, source: str, *, required: bool = True) -> str:
    value = _field(payload, path, str, required=required)
    if value is None:
        return ""
    status = value.lower()
    if status not in TICKET_STATES[source]:
        raise PayloadInvalid(f"The field {path} must be one of {', '.join(TICKET_STATES[source])}, not {value[:40]!r}.")
    return status


def _iso_time(payload: Any, path: str, *, required: bool = True) -> datetime | None:
    value = _field(payload, path, str, required=required)
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)  # reads Zendesk's nine fractional digits too
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadInvalid(f"The field {path} must be an ISO-8601 time with its offset, not {value[:40]!r}.")
    return parsed


def _chatwoot_time(payload: Any, path: str) -> datetime | None:
    """Chatwoot sends conversation times as epoch seconds and a message's ``created_at`` as a Rails time
    (``2020-03-03T13:05:57.000Z``; its docs show ``2020-03-03 13:05:57 UTC``). Optional: None when absent."""
    value = _field(payload, path, (int, float, str), required=False)
    if value is None or isinstance(value, int | float):
        return None if value is None else _epoch(value)
    text = value[:-4] + "+00:00" if value.endswith(" UTC") else value
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadInvalid(f"The field {path} must be a time, not {value[:40]!r}.")
    return parsed


def _epoch(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadInvalid(f"{value!r} is not a time in epoch seconds.") from None


def _digest(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()


# --- Deliveries ----------------------------------------------------------------------------------------------------


def webhook_delivery_claim(*, connector: Connector, key: str) -> None:
    """Record a delivery's key in the caller's transaction; raise DeliveryReplayed when it was taken already.

    The same delivery arriving twice at once: the second INSERT waits on the unique key until the first commits
    (then it is refused) or rolls back (then it is taken here)."""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(connector=connector, key=key)
    except IntegrityError:
        raise DeliveryReplayed("This delivery was received already.") from None


def webhook_deliveries_prune(*, older_than: timedelta) -> int:
    """Delete delivery keys received more than ``older_than`` ago; return how many. Zendesk refuses its own requests
    after 5 minutes (the signature's timestamp), so its keys may go after a day; Chatwoot's carry no time, and a
    replay after pruning only repeats facts already recorded (the outcomes record only changes)."""
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=timezone.now() - older_than).delete()
    return deleted


# --- Configuration ---------------------------------------------------------------------------------------------------


def _require_change(actor: Actor, connector: Connector) -> None:
    if isinstance(actor, AbstractBaseUser) and not connector_may_change(actor, connector):
        raise NotPermitted(f"You may not change the connector {connector.name}: it is not yours.")


@transaction.atomic
def connector_webhook_token_rotate(*, actor: Actor, connector: Connector) -> str:
    """Give the connector a new webhook URL token and return it; the old URL stops working at once. Audited without
    the token."""
    locked = Connector.objects.select_for_update().get(pk=connector.pk)
    _require_change(actor, locked)
    token = secrets.token_urlsafe(32)
    had_one = bool(locked.webhook_token)
    Connector.objects.filter(pk=locked.pk).update(webhook_token=token)
    audit_record(
        actor=actor,
        event_type=EventType.SECRET_ROTATED,
        subject=locked,
        fields=["webhook_token"],
        decision="webhook_token_rotated" if had_one else "webhook_token_created",
        reason="New webhook URL token; the old URL no longer works." if had_one else "Webhook URL token created.",
        data={"value_changed": True},
    )
    connector.webhook_token = token
    return token


@transaction.atomic
def connector_webhook_secret_set(*, actor: Actor, connector: Connector, secret: SecretReference | None) -> Connector:
    """Point the connector at the secret holding its webhook signing secret (None: none); audited by reference."""
    locked = Connector.objects.select_for_update().get(pk=connector.pk)
    _require_change(actor, locked)
    if locked.webhook_secret_id != (secret.pk if secret else None):
        locked.webhook_secret = secret
        config_object_save(actor=actor, instance=locked)
    return locked
