"""The connector interface: one error type, small typed shapes, one base class with a subclass per family, and a
plain dict registry of adapters (STYLE.md rule 6, healthchecks' transports).

Adapters speak to one outside system and parse its responses at the boundary into the shapes below. They know
nothing of governance: ``connectors.gateway`` applies field mappings, write scopes, audit and connector health
around every call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

if TYPE_CHECKING:
    from connectors.models import Connector


class ConnectorError(Exception):
    """An outside system failed. ``permanent``: retrying will not help (bad credential, 4xx, a refused write);
    ``auth``: the credential was refused (the connector is disabled and its owner told)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        auth: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        rejected: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent or auth
        self.auth = auth
        self.status = status
        self.retry_after = retry_after
        # The remote side refused the request before acting on it (any 4xx, 429 included): a write did not happen,
        # so it may be tried again later. Timeouts and 5xx leave the outcome unknown.
        self.rejected = rejected if rejected is not None else (status is not None and 400 <= status < 500)


class NotFound(ConnectorError):
    """The record does not exist in the outside system (permanent; the connector stays healthy)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True, status=404)


# --- Shapes ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRef:
    id: str
    email: str = ""
    name: str = ""


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    postcode: str
    country: str
    line2: str = ""


@dataclass(frozen=True)
class OrderSummary:
    id: str
    status: str
    placed_at: str = ""
    total: str = ""
    currency: str = ""


@dataclass(frozen=True)
class TicketRef:
    id: str
    url: str = ""
    status: str = ""
    subject: str = ""


@dataclass(frozen=True)
class Macro:
    id: str
    title: str
    body: str = ""


@dataclass
class TicketDraft:
    """The escalation ticket schema: every field a person needs to take over without asking again."""

    subject: str
    customer_id: str
    customer_email: str
    issue_category: str
    product_area: str
    channel: str
    severity: str  # low | normal | high | urgent
    sentiment: float
    attempted_resolution: str
    confidence: float
    escalation_reason: str
    transcript: str
    suggested_next_step: str
    related_sources: list[str] = field(default_factory=list)
    fields_read: list[str] = field(default_factory=list)
    fields_changed: list[str] = field(default_factory=list)
    queue: str = ""
    priority: int = 3  # 1 critical … 5 very low
    sla_due_at: datetime | None = None
    conversation_id: str = ""
    missing: list[str] = field(default_factory=list)  # fields the agent could not fill, named for the person

    def handover_lines(self) -> list[str]:
        """The summary a person reads to take over without asking the customer again (every helpdesk adapter
        writes these lines; each adds its own header and transcript limits)."""
        lines = [
            f"Escalated by Steward: {self.escalation_reason}",
            f"Customer: {self.customer_email or 'unknown email'} (id {self.customer_id or 'unknown'})",
            f"Issue: {self.issue_category} / {self.product_area}",
            f"Channel: {self.channel}" + (f", queue {self.queue}" if self.queue else ""),
            f"Severity: {self.severity}; priority {self.priority} (1 critical … 5 very low)",
            f"Sentiment: {self.sentiment:+.2f}; Steward's confidence: {self.confidence:.0%}",
            f"Tried: {self.attempted_resolution}",
            f"Suggested next step: {self.suggested_next_step}",
        ]
        if self.sla_due_at:
            lines.append(f"SLA due: {self.sla_due_at.isoformat()}")
        for label, values in (
            ("Sources", self.related_sources),
            ("Fields read", self.fields_read),
            ("Fields changed", self.fields_changed),
            ("Not filled in", self.missing),
        ):
            if values:
                lines.append(f"{label}: {', '.join(values)}")
        if self.conversation_id:
            lines.append(f"Steward conversation: {self.conversation_id}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sla_due_at"] = self.sla_due_at.isoformat() if self.sla_due_at else None
        return data


@dataclass(frozen=True)
class RefundResult:
    id: str
    amount: Decimal
    currency: str
    status: str


# --- Adapters -------------------------------------------------------------------------------------------------------


class Adapter:
    """One outside system. Subclasses set ``key`` and ``family`` and implement their family's operations.

    Every write takes an ``idempotency_key``. ``honours_idempotency`` says whether the remote side de-duplicates by
    it (then a timed-out write may be retried); otherwise the gateway keeps a WriteReceipt and never retries.
    """

    key: ClassVar[str] = ""
    family: ClassVar[str] = ""
    honours_idempotency: ClassVar[bool] = False
    objects: ClassVar[tuple[str, ...]] = ()

    def __init__(self, connector: Connector, *, credential: str | None, transport: httpx.BaseTransport | None = None):
        self.connector = connector
        self.credential = credential
        self.transport = transport  # tests pass an httpx.MockTransport that validates against the vendor's contract

    @classmethod
    def config_errors(cls, config: dict[str, Any]) -> list[str]:
        """Return what is wrong with a connector's ``config`` for this adapter (shown on the admin form)."""
        return []

    def read_object(self, obj: str, object_id: str) -> dict[str, Any]:
        """Return the object as flat dotted paths → values (``shipping.status``), for field mappings to filter."""
        raise NotImplementedError

    def write_field(self, obj: str, object_id: str, field_path: str, value: Any, *, idempotency_key: str) -> Any:
        raise NotImplementedError

    def health_check(self) -> None:
        """Raise ConnectorError if the system cannot be reached with this credential."""
        raise NotImplementedError


class CRMAdapter(Adapter):
    family = "crm"

    def find_customers(self, *, email: str = "", external_id: str = "", phone: str = "") -> list[CustomerRef]:
        raise NotImplementedError

    def add_note(self, customer_id: str, text: str, *, idempotency_key: str) -> str:
        raise NotImplementedError

    def add_tag(self, customer_id: str, tag: str, *, idempotency_key: str) -> None:
        raise NotImplementedError

    def create_task(self, customer_id: str, title: str, due: datetime | None, *, idempotency_key: str) -> str:
        raise NotImplementedError


class HelpdeskAdapter(Adapter):
    family = "helpdesk"

    def search_tickets(self, customer: CustomerRef) -> list[TicketRef]:
        raise NotImplementedError

    def create_ticket(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        raise NotImplementedError

    def add_comment(self, ticket_id: str, body: str, *, public: bool, idempotency_key: str) -> None:
        raise NotImplementedError

    def set_priority(self, ticket_id: str, priority: int, *, queue: str = "", idempotency_key: str) -> None:
        raise NotImplementedError

    def list_macros(self) -> list[Macro]:
        raise NotImplementedError


class CommerceAdapter(Adapter):
    family = "commerce"

    def list_orders(self, customer_id: str) -> list[OrderSummary]:
        raise NotImplementedError

    def pause_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        raise NotImplementedError

    def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        raise NotImplementedError

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        raise NotImplementedError

    def change_shipping_address(self, order_id: str, address: Address, *, idempotency_key: str) -> dict[str, Any]:
        raise NotImplementedError

    def refund(self, order_id: str, amount: Decimal | None, *, reason: str, idempotency_key: str) -> RefundResult:
        raise NotImplementedError


# Adapter key → class. Each adapter module adds itself (connectors/apps.py imports them all).
ADAPTERS: dict[str, type[Adapter]] = {}


def register(adapter: type[Adapter]) -> type[Adapter]:
    """Class decorator: add an adapter to the registry under its key."""
    if not adapter.key or adapter.key in ADAPTERS:
        raise ValueError(f"adapter key {adapter.key!r} is empty or taken")
    ADAPTERS[adapter.key] = adapter
    return adapter


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted paths (lists stay values): {"a": {"b": 1}} → {"a.b": 1}."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat
