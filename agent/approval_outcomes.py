"""Telling the customer what became of an action that waited for approval.

``approval_outcome_listener`` is registered in ``governance.approvals.APPROVAL_OUTCOME_LISTENERS`` (by
``AgentConfig.ready``). Governance calls it after commit when a request reaches an outcome — executed, failed, rejected
or expired — and it posts one plain message in the request's conversation. A failed or expired request also goes to
a person (the message promises that someone follows up).

Exactly once per request: the message and an audit record ``approval_told`` (subject: the request) are written in one
transaction under the conversation's row lock, and the record is checked for first, so a listener called twice (a
redelivered task, two processes) posts once.

The listener also records the analytics event ``approval_decided`` (action, tier, outcome, seconds from request to
decision), once per request, under the request's row lock. Governance may not import analytics, and it calls its
listeners after its own commit, so this event is written in a transaction of its own just after the decision's: a
process that dies in between loses the event (never invents one). The event is recorded before the customer is told,
so a failure telling them does not lose it.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from agent import messages
from agent.models import Author, Conversation, Message, Owner
from agent.tools import TALK_TO_PERSON
from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind
from governance.audit import audit_record
from governance.models import ApprovalRequest, ApprovalStatus, AuditRecord, EventType

logger = logging.getLogger(__name__)

TOLD = "approval_told"
OUTCOMES = {ApprovalStatus.EXECUTED, ApprovalStatus.FAILED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED}
CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def approval_outcome_listener(request: ApprovalRequest) -> None:
    """The registered listener: tell the customer, and never let a failure here undo how the request was decided.

    Governance calls listeners after its commit, inside the caller (a console POST, the execution task): an exception
    would turn a recorded decision into an error page or a task retry, so it is logged with its traceback instead.
    """
    try:
        approval_decided_record(request)
    except Exception:  # noqa: BLE001 - boundary between governance and the agent; recorded, not swallowed silently
        logger.exception("could not record the analytics event of approval request %s", request.pk)
    try:
        approval_outcome_tell_customer(request)
    except Exception:  # noqa: BLE001 - boundary between governance and the agent; recorded, not swallowed silently
        logger.exception("could not tell the customer the outcome of approval request %s", request.pk)


@transaction.atomic
def approval_decided_record(request: ApprovalRequest) -> bool:
    """Record ``approval_decided`` for a request that reached its outcome, once; return whether it was recorded.

    An approved request is recorded when its execution ends (outcome ``executed`` or ``failed``), with
    ``decision: approved``; a rejected or expired one at once. None for a regression suite's test conversation.
    """
    if request.status not in OUTCOMES:
        return False
    # The row lock serialises two listeners of the same request; the second finds the first one's event.
    locked = ApprovalRequest.objects.select_for_update().select_related("action").get(pk=request.pk)
    if locked.status not in OUTCOMES:
        return False
    conversation = (
        Conversation.objects.filter(pk=_uuid_or_none(locked.conversation_id)).only("channel", "is_test").first()
        if locked.conversation_id
        else None
    )
    if conversation is not None and conversation.is_test:
        return False
    recorded = AnalyticsEvent.objects.filter(
        conversation_id=locked.conversation_id, kind=EventKind.APPROVAL_DECIDED, data__request=locked.pk
    )
    if recorded.exists():
        return False
    decided_at = locked.decided_at or timezone.now()
    finished_at = locked.executed_at or decided_at
    event_record(
        kind=EventKind.APPROVAL_DECIDED,
        conversation_id=locked.conversation_id,
        channel=conversation.channel if conversation is not None else "",
        data={
            "request": locked.pk,
            "action": locked.action.action,
            "tier": locked.action.tier,
            "outcome": locked.status,
            "decision": _DECISIONS[locked.status],
            "approver": locked.approver_id,
            "seconds_to_decision": _seconds(decided_at, locked.created_at),
            "seconds_to_outcome": _seconds(finished_at, locked.created_at),
        },
    )
    return True


# The decision behind each outcome: executed and failed requests were approved first.
_DECISIONS = {
    ApprovalStatus.EXECUTED: "approved",
    ApprovalStatus.FAILED: "approved",
    ApprovalStatus.REJECTED: "rejected",
    ApprovalStatus.EXPIRED: "expired",
}


def _seconds(later: Any, earlier: Any) -> float:
    return round(max((later - earlier).total_seconds(), 0.0), 1)


def approval_outcome_tell_customer(request: ApprovalRequest) -> Message | None:
    """Post the outcome of ``request`` in its conversation once; return the message (None: nothing to tell)."""
    if request.status not in OUTCOMES or not request.conversation_id:
        return None
    conversation = Conversation.objects.filter(pk=_uuid_or_none(request.conversation_id)).first()
    if conversation is None:
        logger.warning("approval request %s names an unknown conversation %r", request.pk, request.conversation_id)
        return None
    message = _store_once(request, conversation)
    if message is not None and request.status in (ApprovalStatus.FAILED, ApprovalStatus.EXPIRED):
        _hand_to_a_person(request, conversation)
    return message


@transaction.atomic
def _store_once(request: ApprovalRequest, conversation: Conversation) -> Message | None:
    # The row lock serialises two listeners of the same request; the second finds the first one's record.
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    already = AuditRecord.objects.filter(
        conversation_id=str(locked.pk),
        event_type=EventType.CONVERSATION,
        decision=TOLD,
        subject_type="governance.approvalrequest",
        subject_id=str(request.pk),
    ).exists()
    if already:
        return None
    rejected = request.status == ApprovalStatus.REJECTED
    message = messages.message_store_reply(
        conversation_id=locked.pk,
        author=Author.AGENT,
        text=outcome_text(request),
        choices=[TALK_TO_PERSON] if rejected and locked.owner == Owner.AGENT else [],
    )
    audit_record(
        actor=None,
        event_type=EventType.CONVERSATION,
        subject=request,
        conversation_id=str(locked.pk),
        decision=TOLD,
        reason=f"told the customer: {request.status}",
        data={"action": request.action.action, "status": request.status, "message_seq": message.seq},
    )
    messages.push(locked.pk, messages.serialize(message))
    return message


def _hand_to_a_person(request: ApprovalRequest, conversation: Conversation) -> None:
    """Queue the conversation for a person (a ticket is created) when the AI still has it."""
    if conversation.owner != Owner.AGENT:
        return  # a person has it already, or it is closed: the console shows the outcome
    from agent.tasks import escalate_conversation

    reason = f"{request.action.label} (approval #{request.pk}) {request.get_status_display().lower()}"
    if request.error:
        reason = f"{reason}: {request.error}"
    transaction.on_commit(lambda: escalate_conversation.delay(str(conversation.pk), reason[:500]))


# --- Wording ---------------------------------------------------------------------------------------------------------


def outcome_text(request: ApprovalRequest) -> str:
    """Return what the customer reads about the request's outcome, in plain words."""
    what = _describe(request)
    status = request.status
    if status == ApprovalStatus.EXECUTED:
        done = "issued" if request.action.action == "refund" else "done"
        text = f"Good news — {what} has been approved and {done}."
        if request.action.action == "refund":
            text += " It usually reaches your card or account in 3–5 business days."
        return text
    if status == ApprovalStatus.REJECTED:
        note = request.decision_note.strip().rstrip(".")
        if note:
            return f"Sorry — {what} was not approved: {note}."
        return f"Sorry — {what} was not approved. If you have questions, a person from our team can help."
    if status == ApprovalStatus.FAILED:
        return f"Sorry — {what} was approved but could not be completed. A person from our team will follow up here."
    return f"Sorry — {what} could not be reviewed in time. A person from our team will follow up here."


def _describe(request: ApprovalRequest) -> str:
    arguments: dict[str, Any] = request.arguments or {}
    action = request.action.action
    order_id, subscription_id = arguments.get("order_id"), arguments.get("subscription_id")
    if action == "refund":
        result = (request.result or {}).get("result") or {}
        currency = arguments.get("currency") or (result.get("currency") if isinstance(result, dict) else "") or ""
        amount = _money(arguments.get("amount"), str(currency))
        return "your refund" + (f" of {amount}" if amount else "") + (f" for order {order_id}" if order_id else "")
    phrases = {
        "subscription_cancel": "the cancellation of your subscription",
        "subscription_pause": "pausing your subscription",
        "subscription_resume": "resuming your subscription",
        "address_change": "the new delivery address for your order",
    }
    if action in phrases:
        subject = subscription_id or order_id
        return phrases[action] + (f" {subject}" if subject else "")
    return f"your request ({request.action.label.lower()})"


def _money(amount: Any, currency: str) -> str:
    if amount in (None, ""):
        return ""
    try:
        value = f"{Decimal(str(amount)):.2f}"
    except InvalidOperation:
        return str(amount)
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    if symbol:
        return f"{symbol}{value}"
    return f"{value} {currency.upper()}".strip()


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None
