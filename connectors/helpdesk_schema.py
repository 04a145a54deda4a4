"""The embedded helpdesk's side of Steward: its queues, the custom fields that carry the escalation ticket schema
(connectors.base.TicketDraft), the pre-set replies the agent may recommend, and routing with its SLA table.

``ensure_helpdesk_schema`` is idempotent and writes through django-helpdesk's own models (``Queue.save`` creates the
queue's permission) via the audited configuration service. The adapter that files tickets is
``connectors/adapters/helpdesk_embedded.py``; the tables below are documented in docs/connectors/helpdesk.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone
from helpdesk.models import CustomField, PreSetReply, Queue

from connectors.base import TicketDraft
from connectors.models import Connector, Family
from governance.changes import config_object_save


class HelpdeskSetupError(Exception):
    """The embedded helpdesk cannot be set up as asked (a prerequisite is missing)."""


# --- Queues ---------------------------------------------------------------------------------------------------------

# Slug → title. Nobody submits to them from the public form: tickets come from Steward and from staff.
QUEUES: dict[str, str] = {
    "support": "General support",
    "orders": "Orders & delivery",
    "billing": "Billing & subscriptions",
    "technical": "Machines & technical",
    "vip": "VIP accounts",
    "compliance": "Legal & compliance",
}
DEFAULT_QUEUE = "support"

# --- The ticket schema as custom fields ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str  # helpdesk caps labels at 30 characters
    data_type: str
    staff_only: bool = True
    help_text: str = ""
    max_length: int | None = None  # for decimals: the number of digits
    decimal_places: int | None = None
    list_values: tuple[str, ...] = ()

    @property
    def definition(self) -> dict[str, Any]:
        """The columns our writes depend on (kept right by ``ensure_helpdesk_schema``; the rest is the admin's)."""
        return {
            "data_type": self.data_type,
            "max_length": self.max_length,
            "decimal_places": self.decimal_places,
            "list_values": "\n".join(self.list_values) or None,
            "required": False,
        }


SEVERITIES = ("low", "normal", "high", "urgent")
LIST_SEPARATOR = "\n"  # list-valued draft fields are stored one item per line

# In display order. Only the topic fields are shown to the customer (on helpdesk's public ticket page); Steward's
# assessments (sentiment, confidence, reason, next step) and its bookkeeping are for staff.
TICKET_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("customer_id", "Customer ID", "varchar", max_length=64, help_text="The customer's id in the CRM."),
    FieldSpec("customer_email", "Customer email", "email", help_text="As the customer gave or verified it."),
    FieldSpec("issue_category", "Issue category", "varchar", staff_only=False, max_length=100),
    FieldSpec("product_area", "Product area", "varchar", staff_only=False, max_length=100),
    FieldSpec("channel", "Channel", "varchar", staff_only=False, max_length=32, help_text="Where the customer wrote."),
    FieldSpec("severity", "Severity", "list", list_values=SEVERITIES),
    FieldSpec(
        "sentiment",
        "Sentiment (-1 to 1)",
        "decimal",
        max_length=3,
        decimal_places=2,
        help_text="-1 is very unhappy, 0 neutral, 1 happy.",
    ),
    FieldSpec(
        "confidence",
        "Agent confidence (0 to 1)",
        "decimal",
        max_length=3,
        decimal_places=2,
        help_text="How sure Steward was of its answer.",
    ),
    FieldSpec("escalation_reason", "Escalation reason", "text"),
    FieldSpec("attempted_resolution", "Attempted resolution", "text", help_text="What Steward already tried."),
    FieldSpec("suggested_next_step", "Suggested next step", "text"),
    FieldSpec("related_sources", "Knowledge sources", "text", help_text="One per line."),
    FieldSpec("fields_read", "Fields read", "text", help_text="Account fields Steward read, one per line."),
    FieldSpec("fields_changed", "Fields changed", "text", help_text="Account fields Steward changed, one per line."),
    FieldSpec("missing_fields", "Missing information", "text", help_text="What Steward could not find out."),
    FieldSpec("transcript", "Transcript", "text", help_text="The conversation, also in the ticket's description."),
    FieldSpec("conversation_id", "Steward conversation", "varchar", max_length=64),
    FieldSpec(
        "idempotency_key",
        "Steward request key",
        "varchar",
        max_length=200,
        help_text="Steward files one ticket per key: a repeated request returns this ticket.",
    ),
)
FIELD_NAMES = tuple(spec.name for spec in TICKET_FIELDS)


def ticket_field_values(draft: TicketDraft, *, idempotency_key: str) -> dict[str, Any]:
    """Return the custom field values of a draft, by field name, as helpdesk's ticket form takes them."""
    return {
        "customer_id": draft.customer_id,
        "customer_email": draft.customer_email,
        "issue_category": draft.issue_category,
        "product_area": draft.product_area,
        "channel": draft.channel,
        "severity": (draft.severity or "").strip().lower(),
        "sentiment": _score(draft.sentiment, low=-1.0),
        "confidence": _score(draft.confidence, low=0.0),
        "escalation_reason": draft.escalation_reason,
        "attempted_resolution": draft.attempted_resolution,
        "suggested_next_step": draft.suggested_next_step,
        "related_sources": LIST_SEPARATOR.join(draft.related_sources),
        "fields_read": LIST_SEPARATOR.join(draft.fields_read),
        "fields_changed": LIST_SEPARATOR.join(draft.fields_changed),
        "missing_fields": LIST_SEPARATOR.join(draft.missing),
        "transcript": draft.transcript,
        "conversation_id": draft.conversation_id,
        "idempotency_key": idempotency_key,
    }


def _score(value: float | None, *, low: float, high: float = 1.0) -> Decimal | None:
    """A model's score, clamped to its documented range and rounded to the field's two places (NaN is left empty)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return Decimal(str(round(min(max(float(value), low), high), 2))).quantize(Decimal("0.01"))


# --- Pre-set replies ------------------------------------------------------------------------------------------------

# Plain text on purpose: helpdesk renders a pre-set reply as a template when staff pick it, but the agent recommends
# and quotes the body as it stands, so it must read well without a context.
MACROS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "Where is my order – delay apology",
        ("orders", "support", "vip"),
        "Hello,\n\nI'm sorry your order is taking longer than we promised. I have checked it with the carrier: the "
        "tracking link in your shipping e-mail shows where it is now. If it has not arrived five working days after "
        "the estimated delivery date, reply to this message and we will send a replacement or refund it, whichever "
        "you prefer.\n\nThank you for your patience,\nBrewline Coffee support",
    ),
    (
        "Refund approved",
        ("billing", "orders", "vip"),
        "Hello,\n\nYour refund has been approved and sent back to the card or account you paid with. Banks usually "
        "take three to five working days to show it. You do not need to return anything unless we asked you to.\n\n"
        "Best wishes,\nBrewline Coffee support",
    ),
    (
        "Subscription paused",
        ("billing", "support", "vip"),
        "Hello,\n\nYour coffee subscription is paused: there will be no deliveries and no charges until you resume "
        "it. You can resume at any time from your account page, or reply here and we will do it for you.\n\n"
        "Best wishes,\nBrewline Coffee support",
    ),
    (
        "Descaling steps",
        ("technical", "support", "vip"),
        "Hello,\n\nHere is how to descale your machine:\n\n1. Empty the drip tray and the capsule or grounds "
        "container.\n2. Fill the water tank with 0.5 l of water and one sachet of Brewline descaler.\n3. Put a "
        "1 l container under the spout and start the descaling programme (hold the two cup buttons for five "
        "seconds).\n4. When the tank is empty, rinse it, fill it with fresh water and run the programme again to "
        "rinse.\n\nIf the descaling light stays on afterwards, reply here with your machine's model and we will "
        "help.\n\nBrewline Coffee support",
    ),
    (
        "Warranty claim next steps",
        ("technical", "support", "vip"),
        "Hello,\n\nI'm sorry your machine is not working as it should. To start a warranty claim, please reply with:"
        "\n\n- your order number,\n- the serial number (on the label under the drip tray),\n- a short video or photo "
        "of the problem.\n\nOnce we have them we will confirm within two working days whether we repair or replace "
        "it, and send a prepaid label if it needs to come back to us.\n\nBrewline Coffee support",
    ),
)

# --- Routing and SLA ------------------------------------------------------------------------------------------------

# Severity → helpdesk priority (1 critical … 5 very low). An unknown severity is normal.
SEVERITY_PRIORITY: dict[str, int] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
# Priority → hours to the first response, for standard and plus accounts. VIP accounts get half.
SLA_HOURS: dict[int, float] = {1: 1, 2: 4, 3: 24, 4: 72, 5: 120}
VIP_TIER = "vip"
# Below this topic confidence Steward may have the topic wrong, so the ticket goes to general support for triage
# instead of a specialist queue (compliance and VIP routing do not depend on the topic and still apply).
TOPIC_CONFIDENCE_FLOOR = 0.5
# Words (or word sequences) in a product area or issue category → specialist queue. Topics are matched word-wise
# after normalising ("GDPR request" → gdpr_request, which holds gdpr).
COMPLIANCE_TOPICS = ("compliance", "legal", "lawyer", "privacy", "gdpr", "data_protection", "chargeback", "ombudsman")
AREA_QUEUES: dict[str, str] = {
    **dict.fromkeys(("order", "orders", "shipping", "delivery", "returns", "tracking"), "orders"),
    **dict.fromkeys(
        ("billing", "payment", "payments", "refund", "refunds", "invoice", "subscription", "subscriptions"), "billing"
    ),
    **dict.fromkeys(
        ("technical", "machine", "machines", "grinder", "grinders", "equipment", "descaling", "warranty"),
        "technical",
    ),
}


class Route(NamedTuple):
    queue: str
    priority: int
    sla_due_at: datetime


def _topic(text: str) -> str:
    return "_" + re.sub(r"[^a-z0-9]+", "_", (text or "").lower()).strip("_") + "_"


def _mentions(topic: str, keyword: str) -> bool:
    return f"_{keyword}_" in topic


def sla_hours(priority: int, *, account_tier: str = "standard") -> float:
    """Return the hours to the first response for a priority and account tier (VIP: half)."""
    hours = SLA_HOURS.get(priority, SLA_HOURS[3])
    return hours / 2 if account_tier == VIP_TIER else hours


def sla_due_at(priority: int, *, account_tier: str = "standard", now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(hours=sla_hours(priority, account_tier=account_tier))


def route_ticket(
    draft: TicketDraft,
    *,
    account_tier: str = "standard",
    topic_confidence: float | None = None,
    now: datetime | None = None,
) -> Route:
    """Pick the queue, priority and SLA due time for an escalation from its signals (not from ``draft.queue``).

    Queue: a legal or compliance topic → compliance; else a VIP account → vip; else, when Steward is sure enough of
    the topic (``topic_confidence``, by default the draft's confidence), the product area's (or else the issue
    category's) queue; else support. Priority: from severity; VIP one step more urgent; compliance at least high.
    """
    topics = (_topic(draft.product_area), _topic(draft.issue_category))
    confidence = draft.confidence if topic_confidence is None else topic_confidence
    priority = SEVERITY_PRIORITY.get((draft.severity or "").strip().lower(), 3)
    if account_tier == VIP_TIER:
        priority = max(1, priority - 1)
    if any(_mentions(topic, keyword) for topic in topics for keyword in COMPLIANCE_TOPICS):
        queue, priority = "compliance", min(priority, 2)
    elif account_tier == VIP_TIER:
        queue = "vip"
    elif confidence is not None and confidence >= TOPIC_CONFIDENCE_FLOOR:
        matches = (area_queue for topic in topics for word, area_queue in AREA_QUEUES.items() if _mentions(topic, word))
        queue = next(matches, DEFAULT_QUEUE)
    else:
        queue = DEFAULT_QUEUE
    return Route(queue, priority, sla_due_at(priority, account_tier=account_tier, now=now))


# --- Setup ----------------------------------------------------------------------------------------------------------


@transaction.atomic
def ensure_helpdesk_schema() -> dict[str, int]:
    """Create what is missing of the queues, custom fields and pre-set replies; return how many rows changed.

    Rows that exist are left as an admin may have edited them, except a custom field's type, size and choices,
    which Steward's writes depend on: those are put back (audited).
    """
    counts = {"queues": 0, "custom fields": 0, "custom fields repaired": 0, "pre-set replies": 0}
    for slug, title in QUEUES.items():
        if not Queue.objects.filter(slug=slug).exists():
            _save(Queue(slug=slug, title=title, allow_public_submission=False, allow_email_submission=False))
            counts["queues"] += 1
    existing = {field.name: field for field in CustomField.objects.filter(name__in=FIELD_NAMES)}
    for ordering, spec in enumerate(TICKET_FIELDS, start=1):
        field = existing.get(spec.name)
        if field is None:
            field = CustomField(
                name=spec.name,
                label=spec.label,
                help_text=spec.help_text,
                staff_only=spec.staff_only,
                ordering=ordering * 10,
                **spec.definition,
            )
            _save(field)
            counts["custom fields"] += 1
        elif any(getattr(field, column) != value for column, value in spec.definition.items()):
            for column, value in spec.definition.items():
                setattr(field, column, value)
            _save(field, reason="Steward's ticket schema: type, size and choices put back")
            counts["custom fields repaired"] += 1
    for name, queue_slugs, body in MACROS:
        if not PreSetReply.objects.filter(name=name).exists():
            reply = _save(PreSetReply(name=name, body=body))
            reply.queues.set(Queue.objects.filter(slug__in=queue_slugs))
            counts["pre-set replies"] += 1
    return counts


def _save(instance: models.Model, *, reason: str = "embedded helpdesk schema") -> Any:
    return config_object_save(actor=None, instance=instance, reason=reason)


HELPDESK_CONNECTOR_KEY = "helpdesk"  # field mappings of the helpdesk name it as their system
CONNECTOR_OWNER = "maya.ops"
CONNECTOR_FALLBACK_OWNER = "omar.lead"


@transaction.atomic
def seed_helpdesk_connector() -> dict[str, int]:
    """Create the connector row for the embedded helpdesk unless it exists; return how many rows were created.

    It is the primary helpdesk connector unless another one already is (then it is added beside it, not primary).
    Needs the demo owners made by governance.demo.seed_governance.
    """
    if Connector.objects.filter(key=HELPDESK_CONNECTOR_KEY).exists():
        return {"connectors": 0}
    users = get_user_model()._default_manager
    owner = users.filter(username=CONNECTOR_OWNER).first()
    if owner is None:
        raise HelpdeskSetupError(
            f"The embedded helpdesk connector is owned by {CONNECTOR_OWNER!r}, who does not exist: "
            "run governance.demo.seed_governance() first."
        )
    connector = Connector(
        key=HELPDESK_CONNECTOR_KEY,
        name="Embedded helpdesk",
        family=Family.HELPDESK,
        adapter="helpdesk_embedded",
        is_primary=not Connector.objects.filter(family=Family.HELPDESK, is_primary=True).exists(),
        owner=owner,
        fallback_owner=users.filter(username=CONNECTOR_FALLBACK_OWNER).first(),
    )
    config_object_save(actor=None, instance=connector, reason="demo company seed: the embedded helpdesk")
    return {"connectors": 1}
