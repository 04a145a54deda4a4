"""Escalation: a helpdesk ticket with the full schema (from rollout stage 3), then the conversation waits for a person;
and the traffic share, which gives a new conversation outside the AI's share straight to a person."""

from __future__ import annotations

import logging
from typing import Any

from agent.escalation import sentiment
from agent.identity import principal_for
from agent.models import Conversation, Message, Owner, TurnTrace
from agent.services import OwnershipConflict, conversation_escalate, conversation_route_to_person
from agent.tools import LOOKUPS
from connectors.base import ConnectorError, TicketDraft
from governance.authorization import decision_stage
from governance.executors import ACTION_EXECUTORS, ExecutionContext
from governance.gates import (
    CAPABILITY_STAGE,
    Capability,
    capability_check,
    channel_rollout_now,
    takes_conversation,
    traffic_bucket,
)
from governance.models import ApprovalRequest, ApprovalStatus, AuditRecord, EventType
from governance.roles import Verification

logger = logging.getLogger(__name__)

# Added to a handoff's reason below stage 3: a person takes it from the console's waiting queue, no helpdesk ticket.
NO_TICKET_BELOW_STAGE = f"(no helpdesk ticket below rollout stage {CAPABILITY_STAGE[Capability.HANDOFF]})"

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


def escalate(
    conversation: Conversation, *, reason: str, priority: int = 3, queue: str = "", stage: int | None = None
) -> str:
    """Create the ticket (through governance and the helpdesk connector) and move the conversation to waiting.

    A failed ticket does not stop the handoff: the conversation still waits for a person, with the failure named.
    Neither does a stage without the handoff capability (below stage 3): the person takes it from the console's
    waiting queue, without a helpdesk ticket. ``stage``: the stage the turn decided at (None: read it).
    """
    if conversation.owner != Owner.AGENT:
        return "already handed over"
    ticket_id, reason = handoff_ticket_create(conversation, reason=reason, priority=priority, queue=queue, stage=stage)
    try:
        conversation_escalate(conversation_id=conversation.pk, reason=reason, ticket_id=ticket_id)
    except OwnershipConflict:
        return "already handed over"
    return ticket_id or "no ticket"


def handoff_ticket_create(
    conversation: Conversation, *, reason: str, priority: int = 3, queue: str = "", stage: int | None = None
) -> tuple[str, str]:
    """Create the helpdesk ticket of a handoff when the channel's stage allows handoffs; return the ticket's id (""
    for none) and the reason, with why there is no ticket added to it."""
    stage = decision_stage(conversation.channel) if stage is None else stage
    if not capability_check(stage, Capability.HANDOFF).allowed:
        return "", f"{reason} {NO_TICKET_BELOW_STAGE}"
    executor = ACTION_EXECUTORS.get("ticket_create")
    if executor is None:
        return "", reason
    draft = build_ticket(conversation, reason=reason, priority=priority, queue=queue)
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
    except ConnectorError as exc:
        logger.warning("escalation ticket for %s failed: %s", conversation.pk, exc)
        return "", f"{reason} (the helpdesk ticket could not be created: {exc})"
    ticket = result.get("result", {})
    return (str(ticket.get("id", "")) if isinstance(ticket, dict) else ""), reason


# --- The traffic share: who takes a new conversation ----------------------------------------------------------------


def traffic_subject(conversation: Conversation) -> tuple[str, str]:
    """Return the id a conversation's traffic bucket is drawn from, and what it is ("customer" or "conversation").

    A customer the host site vouched for at the start (a signed token or a linked login: identity verified) keeps
    their bucket across conversations and devices. Anyone else is bucketed by the conversation: the widget keeps its
    conversation for the browser tab's session (sessionStorage), so a reload or another page of the site stays on
    the same side; a new session draws again. The widget sends no visitor id of its own, and one it sent could be
    chosen by the visitor to pick a side.
    """
    if conversation.verification >= Verification.IDENTITY_VERIFIED and conversation.customer_id:
        return conversation.customer_id, "customer"
    return str(conversation.pk), "conversation"


TRAFFIC_KEY = "traffic"  # in Conversation.context: the draw that put a new conversation outside the AI's share


def conversation_traffic_route(conversation: Conversation) -> Conversation:
    """Draw whether the AI takes a new conversation (``ChannelRollout.traffic_percent``), once, at its start.

    Outside the share the draw is noted in the conversation's context, and its first customer message goes to a
    person instead of the AI (``conversation_traffic_hand_over``, called by the turn). The hand-over waits for that
    message: the widget starts a conversation when its panel opens, and most opened panels never say anything, so
    handing over at the start would fill the waiting queue (and, from stage 3, the helpdesk) with empty
    conversations. A regression suite's test conversation is never held back. Return the conversation as it is now.
    """
    if conversation.is_test or conversation.owner != Owner.AGENT:
        return conversation
    _, percent = channel_rollout_now(conversation.channel)
    subject, kind = traffic_subject(conversation)
    bucket = traffic_bucket(conversation.channel, subject)
    if takes_conversation(bucket, percent):
        return conversation
    context = {**(conversation.context or {}), TRAFFIC_KEY: {"bucket": bucket, "by": kind, "traffic_percent": percent}}
    Conversation.objects.filter(pk=conversation.pk, owner=Owner.AGENT).update(context=context)
    conversation.context = context
    return conversation


def held_back(conversation: Conversation) -> bool:
    """Whether the traffic share's draw gave this conversation to a person (``conversation_traffic_route``)."""
    return bool((conversation.context or {}).get(TRAFFIC_KEY))


def conversation_traffic_hand_over(conversation: Conversation) -> Conversation:
    """Give a conversation outside the AI's share to a person at its first customer message, before the AI says
    anything: a helpdesk ticket (with what the customer wrote) when the stage allows handoffs, the console's waiting
    queue always, the audited move, the ``traffic_to_person`` event and a system message telling the customer."""
    held = dict((conversation.context or {}).get(TRAFFIC_KEY) or {})
    stage = decision_stage(conversation.channel)
    # The ticket is an outside write: made before the move's transaction, as an escalation makes it.
    reason = f"outside the AI's traffic share ({held.get('traffic_percent', 0)}%)"
    ticket_id, reason = handoff_ticket_create(conversation, reason=reason, stage=stage)
    # The draw is spent: a person who hands the conversation back to the AI gets it answered.
    context = {key: value for key, value in (conversation.context or {}).items() if key != TRAFFIC_KEY}
    return conversation_route_to_person(
        conversation_id=conversation.pk,
        reason=reason,
        ticket_id=ticket_id,
        data={**held, "stage": stage, "ticket": bool(ticket_id)},
        context=context,
    )
