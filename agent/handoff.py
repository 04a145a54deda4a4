"""Escalation: a helpdesk ticket with the full schema, then the conversation waits for a person."""

from __future__ import annotations

import logging
from typing import Any

from agent.escalation import sentiment
from agent.identity import principal_for
from agent.models import Conversation, Message, Owner, TurnTrace
from agent.services import OwnershipConflict, conversation_escalate
from agent.tools import LOOKUPS
from connectors.base import ConnectorError, TicketDraft
from governance.executors import ACTION_EXECUTORS, ExecutionContext
from governance.models import ApprovalRequest, ApprovalStatus, AuditRecord, EventType

logger = logging.getLogger(__name__)

SEVERITY = {1: "urgent", 2: "high", 3: "normal", 4: "low", 5: "low"}
NEXT_STEP = {
    "where_is_my_order": "Check the carrier's tracking; if delayed, use the macro 'Where is my order – delay apology'.",
    "refund_request": "Review the refund against the refund approval SOP; macro 'Refund approved' when done.",
    "pause_subscription": "Pause the subscription in the order system; macro 'Subscription paused'.",
    "cancel_subscription": "Offer a pause or plan change first, then cancel if the customer still wants to.",
}


def build_ticket(conversation: Conversation, *, reason: str, priority: int, queue: str) -> TicketDraft:
    """Fill the escalation ticket schema from the conversation, its traces and its audit evidence."""
    transcript_rows = list(Message.objects.filter(conversation=conversation).order_by("seq"))
    customer_texts = [m.text for m in transcript_rows if m.author == "customer"]
    traces = list(TurnTrace.objects.filter(conversation=conversation).order_by("created_at"))
    last = traces[-1] if traces else None
    intent = next((t.intent for t in reversed(traces) if t.intent), "")
    sources = sorted(
        {hit.get("document_title", "") for t in traces for hit in t.retrieved if hit.get("document_title")}
    )
    attempted = [f"{call.get('action')}: {call.get('decision')}" for t in traces for call in t.tool_calls]
    evidence = AuditRecord.objects.filter(conversation_id=str(conversation.pk))
    read = sorted(
        {f for r in evidence.filter(event_type=EventType.FIELD_READ) for f in r.fields} | _fields_read(traces)
    )
    changed = sorted(
        {f for r in evidence.filter(event_type=EventType.FIELD_WRITE) for f in r.fields} | _changes(conversation)
    )
    missing = [
        name
        for name, value in (("customer_id", conversation.customer_id), ("customer_email", conversation.customer_email))
        if not value
    ]
    return TicketDraft(
        subject=f"Chat escalation: {(customer_texts[-1] if customer_texts else reason)[:80]}",
        customer_id=conversation.customer_id,
        customer_email=conversation.customer_email,
        issue_category=intent or "unknown",
        product_area=_product_area(intent),
        channel=conversation.channel,
        severity=SEVERITY.get(priority, "normal"),
        sentiment=round(sentiment(" ".join(customer_texts[-3:])), 3) if customer_texts else 0.0,
        attempted_resolution="; ".join(attempted)
        or (last.intent if last and last.intent else "answered from help articles"),
        confidence=float(last.confidence) if last and last.confidence is not None else 0.0,
        escalation_reason=reason,
        transcript="\n".join(f"[{m.created_at:%H:%M}] {m.author}: {m.text}" for m in transcript_rows),
        suggested_next_step=NEXT_STEP.get(intent, "Read the transcript and reply to the customer in this chat."),
        related_sources=sources,
        fields_read=read,
        fields_changed=changed,
        queue=queue,
        priority=priority,
        conversation_id=str(conversation.pk),
        missing=missing,
    )


def _fields_read(traces: list[TurnTrace]) -> set[str]:
    """The fields the agent's lookups were given (governance already removed what it may not read): ``order.status``."""
    read: set[str] = set()
    for trace in traces:
        for call in trace.tool_calls:
            lookup = LOOKUPS.get(str(call.get("action", "")))
            result = call.get("result") or {}
            if lookup and call.get("decision") == "allow" and isinstance(result.get("fields"), dict):
                read |= {f"{lookup[1]}.{name}" for name in result["fields"]}
    return read


def _changes(conversation: Conversation) -> set[str]:
    """What the agent's actions changed in this conversation, done directly or after an approval."""
    done = {
        f"{request.action.action}({_arguments(request.arguments)})"
        for request in ApprovalRequest.objects.filter(
            conversation_id=str(conversation.pk), status=ApprovalStatus.EXECUTED
        ).select_related("action")
    }
    for trace in TurnTrace.objects.filter(conversation=conversation):
        for call in trace.tool_calls:
            action = str(call.get("action", ""))
            if call.get("decision") == "allow" and action not in LOOKUPS and (call.get("result") or {}).get("result"):
                done.add(f"{action}({_arguments(call.get('arguments') or {})})")
    return done


def _arguments(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(arguments.items()))


def _product_area(intent: str) -> str:
    for word, area in (
        ("order", "orders"),
        ("refund", "billing"),
        ("subscription", "subscriptions"),
        ("billing", "billing"),
        ("address", "orders"),
        ("troubleshoot", "technical"),
    ):
        if word in intent:
            return area
    return "general"


def escalate(conversation: Conversation, *, reason: str, priority: int = 3, queue: str = "") -> str:
    """Create the ticket (through governance and the helpdesk connector) and move the conversation to waiting.

    A failed ticket does not stop the handoff: the conversation still waits for a person, with the failure named.
    """
    if conversation.owner != Owner.AGENT:
        return "already handed over"
    draft = build_ticket(conversation, reason=reason, priority=priority, queue=queue)
    ticket_id = ""
    executor = ACTION_EXECUTORS.get("ticket_create")
    if executor is not None:
        try:
            result: dict[str, Any] = executor(
                ExecutionContext(
                    action="ticket_create",
                    arguments={"ticket": draft.as_dict() | {"sla_due_at": None}},
                    principal=principal_for(conversation),
                    idempotency_key=f"{conversation.pk}:escalation",
                    conversation_id=str(conversation.pk),
                )
            )
            ticket = result.get("result", {})
            ticket_id = str(ticket.get("id", "")) if isinstance(ticket, dict) else ""
        except ConnectorError as exc:
            logger.warning("escalation ticket for %s failed: %s", conversation.pk, exc)
            reason = f"{reason} (the helpdesk ticket could not be created: {exc})"
    try:
        conversation_escalate(conversation_id=conversation.pk, reason=reason, ticket_id=ticket_id)
    except OwnershipConflict:
        return "already handed over"
    return ticket_id or "no ticket"
