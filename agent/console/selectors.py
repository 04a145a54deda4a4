"""Reads of the handoff console: the queues, one conversation with its traces and context, and live events."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import CharField, Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast, Coalesce
from django.urls import NoReverseMatch, reverse

from agent import messages
from agent.models import Author, Conversation, Message, Owner, TurnTrace
from governance.approvals import may_decide
from governance.models import ApprovalRequest, ApprovalStatus, AuditRecord, EventType

VIEW_PERMISSION = "agent.view_conversation"
ACT_PERMISSION = "agent.change_conversation"
RECENT_WITH_AI = 50


# --- Who may do what ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Controls:
    """The moves the console offers ``user`` on one conversation (the services enforce them again)."""

    take_over: bool = False
    hand_back: bool = False
    close: bool = False
    send: bool = False

    @property
    def any(self) -> bool:
        return self.take_over or self.hand_back or self.close or self.send


def controls_for(*, owner: str, assignee_id: int | None, user_id: int | None, may_act: bool) -> Controls:
    """Return the controls a console user has, from the conversation's state alone (pure: no database)."""
    if not may_act or owner == Owner.CLOSED:
        return Controls()
    mine = owner == Owner.HUMAN and assignee_id is not None and assignee_id == user_id
    return Controls(take_over=owner in (Owner.AGENT, Owner.WAITING), hand_back=mine, close=True, send=mine)


def may_use_console(user: AbstractBaseUser, *, act: bool = False) -> bool:
    """Whether ``user`` may see the console (``act``: and move conversations or write in them)."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.has_perm(ACT_PERMISSION if act else VIEW_PERMISSION)


# --- The queues ----------------------------------------------------------------------------------------------------


def _waiting_since() -> Subquery:
    # The latest move to "waiting" in the audit log: updated_at moves with every message, so it cannot say how long
    # the customer has waited. Served by the audit_conversation_seq index (conversation_id, seq).
    return Subquery(
        AuditRecord.objects.filter(
            conversation_id=Cast(OuterRef("pk"), output_field=CharField()),
            event_type=EventType.CONVERSATION,
            decision=f"owner:{Owner.WAITING}",
        )
        .order_by("-seq")
        .values("created_at")[:1]
    )


def _last_customer_text() -> Subquery:
    return Subquery(
        Message.objects.filter(conversation=OuterRef("pk"), author=Author.CUSTOMER).order_by("-seq").values("text")[:1]
    )


def _pending_approvals() -> Subquery:
    # Served by the approval_conversation index (conversation_id, status).
    return Subquery(
        ApprovalRequest.objects.filter(
            conversation_id=Cast(OuterRef("pk"), output_field=CharField()), status=ApprovalStatus.PENDING
        )
        .order_by()
        .values("conversation_id")
        .annotate(count=Count("pk"))
        .values("count")[:1]
    )


def _annotated(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return queryset.select_related("assignee").annotate(
        last_customer_text=_last_customer_text(), pending_approvals=_pending_approvals()
    )


@dataclass
class Queues:
    waiting: list[Conversation]
    with_person: list[Conversation]
    with_ai: list[Conversation]


def console_queues() -> Queues:
    """Return the console's three lists (a fixed number of queries, however many conversations)."""
    waiting = (
        _annotated(Conversation.objects.filter(owner=Owner.WAITING, is_test=False))
        .annotate(waiting_since=Coalesce(_waiting_since(), F("updated_at")))
        .order_by("waiting_since", "created_at")
    )
    with_person = _annotated(Conversation.objects.filter(owner=Owner.HUMAN, is_test=False)).order_by("-updated_at")
    live_ai = Conversation.objects.filter(owner=Owner.AGENT, is_test=False)
    with_ai = _annotated(live_ai).order_by("-updated_at")[:RECENT_WITH_AI]
    return Queues(waiting=list(waiting), with_person=list(with_person), with_ai=list(with_ai))


# --- One conversation ----------------------------------------------------------------------------------------------


def ticket_url(ticket_id: str) -> str:
    """Return the embedded helpdesk's page of a ticket, or "" when the id is not one of its tickets."""
    if not ticket_id.isdigit():
        return ""
    try:
        return reverse("helpdesk:view", args=[int(ticket_id)])
    except NoReverseMatch:
        return ""


def _safe_url(url: Any) -> str:
    # Citations and origin URLs come from outside; only web links become links (never javascript: or data:).
    url = str(url or "")
    return url if url.startswith(("https://", "http://")) else ""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@dataclass
class Entry:
    """One message of the transcript, with the turn trace of the reply it is (agent messages)."""

    message: dict[str, Any]
    created_at: datetime
    citations: list[dict[str, str]]
    trace: TurnTrace | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    timings: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class PendingDecision:
    request: ApprovalRequest
    arguments: str
    may_decide: bool
    why_not: str = ""


def transcript(conversation: Conversation) -> list[Entry]:
    """Return every message, oldest first, each agent reply with its turn trace (two queries)."""
    traces = {
        trace.reply_id: trace for trace in TurnTrace.objects.filter(conversation=conversation, reply__isnull=False)
    }
    entries = []
    for message in Message.objects.filter(conversation=conversation).select_related("author_user").order_by("seq"):
        trace = traces.get(message.pk)
        entries.append(
            Entry(
                message=messages.serialize(message),
                created_at=message.created_at,
                citations=[
                    {
                        "title": str(c.get("title") or c.get("source") or "source"),
                        "section": str(c.get("section") or ""),
                        "url": _safe_url(c.get("url")),
                    }
                    for c in message.citations
                    if isinstance(c, dict)
                ],
                trace=trace,
                tool_calls=[
                    {
                        **call,
                        "arguments_json": _pretty(call.get("arguments", {})),
                        "result_json": _pretty(call.get("result", {})),
                    }
                    for call in (trace.tool_calls if trace else [])
                    if isinstance(call, dict)
                ],
                timings=[(name.removesuffix("_ms"), ms) for name, ms in (trace.timings if trace else {}).items()],
            )
        )
    return entries


def pending_decisions(conversation: Conversation, user: AbstractBaseUser) -> list[PendingDecision]:
    """Return the conversation's approval requests waiting for a decision, and whether ``user`` may decide each."""
    requests = ApprovalRequest.objects.filter(
        conversation_id=str(conversation.pk), status=ApprovalStatus.PENDING
    ).select_related("action")
    decisions = []
    for request in requests.order_by("created_at"):
        why_not = ""
        if request.requested_by_id is not None and request.requested_by_id == user.pk:
            why_not = "You requested this action; someone else must decide it."
        elif not may_decide(user, request.action):
            why_not = f"Approvers: {', '.join(request.action.approver_roles) or 'nobody'}."
        decisions.append(
            PendingDecision(
                request=request, arguments=_pretty(request.arguments), may_decide=not why_not, why_not=why_not
            )
        )
    return decisions


def decided_requests(conversation: Conversation) -> list[ApprovalRequest]:
    """Return the conversation's requests that were decided (newest first), for the record."""
    return list(
        ApprovalRequest.objects.filter(conversation_id=str(conversation.pk))
        .exclude(status=ApprovalStatus.PENDING)
        .select_related("action", "approver")
        .order_by("-created_at")[:20]
    )


def customer_context(conversation: Conversation) -> dict[str, Any]:
    """Return what the agent knows of the customer: identity, verification, tier, slots, what it is waiting on."""
    state = conversation.context if isinstance(conversation.context, dict) else {}
    fields_read = sorted(
        {
            name
            for names in AuditRecord.objects.filter(
                conversation_id=str(conversation.pk), event_type=EventType.FIELD_READ
            ).values_list("fields", flat=True)
            for name in (names or [])
        }
    )
    pending = state.get("pending") if isinstance(state.get("pending"), dict) else {}
    pending_action = state.get("pending_action") if isinstance(state.get("pending_action"), dict) else {}
    return {
        "account_tier": str(state.get("account_tier") or ""),
        "known_slots": sorted((str(k), _plain(v)) for k, v in (state.get("known_slots") or {}).items()),
        "waiting_on": pending.get("slot", ""),
        "waiting_on_intent": pending.get("intent", ""),
        "pending_action": pending_action.get("action", ""),
        "pending_action_arguments": _pretty(pending_action.get("arguments", {})) if pending_action else "",
        "fields_read": fields_read,
        "origin_url": _safe_url(conversation.origin_url),
    }


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# --- Live updates --------------------------------------------------------------------------------------------------


def assignee_name(conversation: Conversation) -> str:
    user = conversation.assignee
    return (user.get_short_name() or user.get_username()) if user is not None else ""


def conversation_events(conversation: Conversation, user: AbstractBaseUser, *, after: int) -> dict[str, Any]:
    """Return the state, the messages after ``after`` and the pending approvals: what console.js polls for."""
    return {
        "owner": conversation.owner,
        "assignee": assignee_name(conversation),
        "assignee_is_you": conversation.assignee_id is not None and conversation.assignee_id == user.pk,
        "last_seq": conversation.last_seq,
        "messages": messages.messages_after(conversation.pk, after),
        "approvals": [
            {
                "id": d.request.pk,
                "action": d.request.action.action,
                "label": d.request.action.label,
                "arguments": d.request.arguments,
                "reason": d.request.reason,
                "requested_by": d.request.requester_label,
                "expires_at": d.request.expires_at.isoformat(),
                "may_decide": d.may_decide,
            }
            for d in pending_decisions(conversation, user)
        ],
    }


def conversation_or_none(conversation_id: Any) -> Conversation | None:
    """Return the conversation with this id (a UUID or its text), or None."""
    try:
        key = uuid.UUID(str(conversation_id))
    except ValueError:
        return None
    return Conversation.objects.select_related("assignee").filter(pk=key, is_test=False).first()
