"""Ticket outcomes flowing back from the helpdesk: an escalated conversation's ticket solved, reopened, or first
answered by a person, recorded as analytics events (``ticket_solved``, ``ticket_reopened``, ``ticket_first_reply``;
docs/connectors/webhooks.md) on the conversation whose ticket it is.

Two ways in: vendor webhooks (``agent.webhooks``, which authenticate and parse through ``connectors.webhooks``, then
call ``ticket_update_receive``), and the embedded helpdesk's own follow-ups (``helpdesk_followup_saved``, connected to
django-helpdesk's ``FollowUp`` saves in ``AgentConfig.ready``), so a person working a ticket in /helpdesk/ records the
events in the same transaction as the change.

An event is recorded only on a change, worked out from the conversation's own earlier ticket events under its row
lock: two deliveries for one ticket at once cannot both record the solve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime
from helpdesk.models import FollowUp

from agent.models import Conversation
from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind
from connectors.adapters.helpdesk_embedded import EmbeddedHelpdeskAdapter
from connectors.models import Connector, WriteReceipt
from connectors.webhooks import (
    EMBEDDED,
    OPEN,
    SOLVED,
    TicketUpdate,
    embedded_followup_update,
    ticket_state,
    webhook_delivery_claim,
)

TICKET_KINDS = (EventKind.TICKET_SOLVED, EventKind.TICKET_REOPENED, EventKind.TICKET_FIRST_REPLY)
_STATUS_KINDS = (EventKind.TICKET_SOLVED, EventKind.TICKET_REOPENED)
# Conversations sharing one ticket id (two helpdesks numbering from 1) are told apart by their escalation's write
# receipt, whose key agent.handoff.handoff_ticket_create sets; at most this many are looked at.
_CANDIDATES = 20


@dataclass(frozen=True)
class TicketOutcome:
    """What one update did: the conversation whose ticket it is (None: no conversation has it) and the event kinds
    recorded (empty: nothing changed, or a test conversation)."""

    conversation_id: str | None
    recorded: list[str] = field(default_factory=list)


@transaction.atomic
def ticket_outcome_record(
    *,
    source: str,
    connector: Connector | None,
    ticket_id: str,
    status: str,
    at: datetime | None,
    first_reply: bool = False,
    status_changed: bool = True,
    ticket_created_at: datetime | None = None,
) -> TicketOutcome:
    """Record what a helpdesk says happened to a ticket, on the conversation whose ticket it is.

    ``source``: embedded, zendesk or chatwoot; ``connector``: the vendor's connector (None for the embedded
    helpdesk); ``status``: the helpdesk's status, lower-case; ``at``: when it happened, as the helpdesk says (None:
    unknown); ``first_reply``: a person replied in public; ``status_changed``: the update reports the status at
    ``at`` (see connectors.webhooks.TicketUpdate). Records ``ticket_first_reply`` once per ticket, ``ticket_solved``
    when the ticket goes from not solved to solved, ``ticket_reopened`` from solved back to open; nothing for a test
    conversation, and nothing for a status update older than the last one recorded (deliveries arrive out of order).
    """
    conversation = _linked_conversation(ticket_id=ticket_id, source=source, connector=connector)
    if conversation is None:
        return TicketOutcome(conversation_id=None)
    if conversation.is_test:
        return TicketOutcome(conversation_id=str(conversation.pk))
    earlier = list(
        AnalyticsEvent.objects.filter(
            conversation_id=str(conversation.pk), kind__in=TICKET_KINDS, data__ticket=ticket_id
        )
        .order_by("-pk")
        .values_list("kind", "data")
    )
    kinds: list[str] = []
    if first_reply and not any(kind == EventKind.TICKET_FIRST_REPLY for kind, _ in earlier):
        kinds.append(EventKind.TICKET_FIRST_REPLY)
    if status_changed and (change := ticket_status_change(state=ticket_state(source, status), at=at, earlier=earlier)):
        kinds.append(change)
    data = {
        "ticket": ticket_id,
        "source": source,
        "connector": connector.key if connector is not None else "",
        "status": status,
        "at": at.isoformat() if at is not None else None,
        "seconds_since_ticket": _seconds(ticket_created_at, at),
    }
    for kind in kinds:
        event_record(kind=kind, conversation_id=str(conversation.pk), channel=conversation.channel, data=data)
    return TicketOutcome(conversation_id=str(conversation.pk), recorded=kinds)


def ticket_status_change(
    *, state: str | None, at: datetime | None, earlier: Sequence[tuple[str, dict[str, Any]]]
) -> str | None:
    """Return the event kind a ticket's new ``state`` (SOLVED, OPEN or None) stands for, given the ticket's earlier
    events (newest first): TICKET_SOLVED from not solved, TICKET_REOPENED from solved, else None. A status older
    than the last one recorded is stale and changes nothing. Pure."""
    last = next(((kind, data) for kind, data in earlier if kind in _STATUS_KINDS), None)
    if last is not None and at is not None:
        last_at = _parsed(last[1].get("at"))
        if last_at is not None and at < last_at:
            return None
    solved = last is not None and last[0] == EventKind.TICKET_SOLVED
    if state == SOLVED and not solved:
        return EventKind.TICKET_SOLVED
    if state == OPEN and solved:
        return EventKind.TICKET_REOPENED
    return None


@transaction.atomic
def ticket_update_receive(*, connector: Connector, update: TicketUpdate) -> TicketOutcome:
    """Take one webhook delivery: refuse a replay (connectors.webhooks.DeliveryReplayed), then record its outcome;
    the delivery's key and its events commit together."""
    webhook_delivery_claim(connector=connector, key=update.delivery_key)
    return _update_record(update, source=update.source, connector=connector)


def _update_record(update: TicketUpdate, *, source: str, connector: Connector | None) -> TicketOutcome:
    return ticket_outcome_record(
        source=source,
        connector=connector,
        ticket_id=update.ticket_id,
        status=update.status,
        at=update.at,
        first_reply=update.first_reply,
        status_changed=update.status_changed,
        ticket_created_at=update.ticket_created_at,
    )


def helpdesk_followup_saved(sender: Any, instance: FollowUp, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """Record the outcome a new follow-up in the embedded helpdesk stands for, in the follow-up's transaction.

    A receiver, against STYLE.md's "no business logic in signals", because django-helpdesk is not our code: its
    staff views, bulk actions and e-mail intake all save a ``FollowUp`` after setting the ticket's status, and that
    save is the one seam they share. The receiver only reads the follow-up and calls the service. helpdesk saves a
    follow-up twice in one update (``update_ticket``); the first save (``created``) already carries everything.
    """
    if raw or not created:
        return
    _update_record(embedded_followup_update(instance), source=EMBEDDED, connector=None)


def _linked_conversation(*, ticket_id: str, source: str, connector: Connector | None) -> Conversation | None:
    """Return, locked, the conversation whose ticket this is, or None.

    Ticket ids are only unique within one helpdesk: a conversation whose escalation was filed through another
    connector (its write receipt says which) is not this ticket's. One without a receipt is taken as it is.
    """
    # Conversation.ticket_id has no index of its own yet: this reads the conversations table.
    candidates = list(
        Conversation.objects.filter(ticket_id=ticket_id)
        .order_by("-created_at")
        .values_list("pk", flat=True)[:_CANDIDATES]
    )
    if not candidates:
        return None
    keys = {f"{pk}:escalation": pk for pk in candidates}
    filed_by = {
        keys[key]: (connector_id, adapter)
        for key, connector_id, adapter in WriteReceipt.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", "connector_id", "connector__adapter"
        )
    }
    for pk in candidates:
        receipt = filed_by.get(pk)
        if receipt is None or _same_helpdesk(receipt, source=source, connector=connector):
            return (
                Conversation.objects.select_for_update()
                .only("pk", "channel", "is_test", "ticket_id")
                .filter(pk=pk, ticket_id=ticket_id)
                .first()
            )
    return None


def _same_helpdesk(receipt: tuple[int, str], *, source: str, connector: Connector | None) -> bool:
    connector_id, adapter = receipt
    if source == EMBEDDED:
        return adapter == EmbeddedHelpdeskAdapter.key
    return connector is not None and connector_id == connector.pk


def _parsed(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 1)
