"""Conversation services. Ownership is one audited state machine — agent → waiting → human → agent | closed — moved
only by conditional updates, so there is never a moment when both the AI and a person answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agent import messages
from agent.models import Author, Conversation, Message, Owner
from analytics.events import event_record
from analytics.models import EventKind
from governance.audit import audit_record
from governance.models import EventType


class OwnershipConflict(Exception):
    """The conversation is not in a state that allows this move (someone else moved it first)."""


# Allowed moves: from-states per target.
_MOVES: dict[str, set[str]] = {
    Owner.WAITING: {Owner.AGENT},
    Owner.HUMAN: {Owner.AGENT, Owner.WAITING},
    Owner.AGENT: {Owner.HUMAN, Owner.WAITING},
    Owner.CLOSED: {Owner.AGENT, Owner.WAITING, Owner.HUMAN},
}


def _move(*, conversation_id: Any, to: str, actor: Any, reason: str, **fields: Any) -> Conversation:
    allowed = _MOVES[to]
    moved = Conversation.objects.filter(pk=conversation_id, owner__in=allowed).update(
        owner=to, updated_at=timezone.now(), **fields
    )
    conversation = Conversation.objects.get(pk=conversation_id)
    if moved != 1:
        raise OwnershipConflict(
            f"The conversation is {conversation.get_owner_display().lower()}; it cannot move to "
            f"{Owner(to).label.lower()}."
        )
    audit_record(
        actor=actor,
        event_type=EventType.CONVERSATION,
        subject=conversation,
        conversation_id=str(conversation.pk),
        decision=f"owner:{to}",
        reason=reason,
    )
    messages.push(
        conversation.pk,
        {
            "type": "state",
            "owner": to,
            "assignee": conversation.assignee.get_short_name() if conversation.assignee else "",
        },
    )
    return conversation


@transaction.atomic
def conversation_escalate(*, conversation_id: Any, reason: str, ticket_id: str = "", actor: Any = None) -> Conversation:
    """Hand the conversation from the AI to the waiting queue (the ticket holds the context)."""
    conversation = _move(
        conversation_id=conversation_id,
        to=Owner.WAITING,
        actor=actor,
        reason=reason,
        escalation_reason=reason,
        ticket_id=ticket_id,
    )
    _event(conversation, EventKind.ESCALATED, reason=reason, ticket=bool(ticket_id))
    return conversation


@transaction.atomic
def conversation_take_over(*, conversation_id: Any, user: AbstractBaseUser) -> Conversation:
    """A person takes the conversation; the AI stays silent from now on."""
    conversation = _move(
        conversation_id=conversation_id,
        to=Owner.HUMAN,
        actor=user,
        reason=f"taken over by {user.get_username()}",
        assignee=user,
    )
    _event(conversation, EventKind.HUMAN_TOOK_OVER, user=user.pk)
    _system_note(conversation.pk, f"{user.get_short_name() or user.get_username()} joined the conversation.")
    return conversation


@transaction.atomic
def conversation_hand_back(*, conversation_id: Any, user: AbstractBaseUser) -> Conversation:
    conversation = _move(
        conversation_id=conversation_id,
        to=Owner.AGENT,
        actor=user,
        reason=f"handed back by {user.get_username()}",
        assignee=None,
        unresolved_turns=0,
    )
    _event(conversation, EventKind.HANDED_BACK, user=user.pk)
    _system_note(conversation.pk, "The assistant is back with you.")
    return conversation


@transaction.atomic
def conversation_close(*, conversation_id: Any, actor: Any, reason: str = "closed") -> Conversation:
    conversation = _move(
        conversation_id=conversation_id, to=Owner.CLOSED, actor=actor, reason=reason, closed_at=timezone.now()
    )
    _event(conversation, EventKind.CLOSED, reason=reason)
    messages.push(conversation.pk, {"type": "csat_request"})
    return conversation


def conversations_close_idle(*, now: Any = None, idle_minutes: int | None = None) -> int:
    """Close every conversation the AI owns whose last message is older than ``idle_minutes``; return how many.

    Each close is its own audited move (a conversation that got a message or changed owner meanwhile is skipped:
    the move is a conditional update, and the idle test is repeated under the row lock).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=idle_minutes or settings.STEWARD_IDLE_CLOSE_MINUTES)
    idle = Conversation.objects.filter(owner=Owner.AGENT, last_seq__gt=0, is_test=False).annotate(
        last_message_at=Max("messages__created_at")
    )
    closed = 0
    for conversation_id in idle.filter(last_message_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().filter(pk=conversation_id, owner=Owner.AGENT).first()
            latest = Message.objects.filter(conversation_id=conversation_id).aggregate(at=Max("created_at"))["at"]
            if locked is None or latest is None or latest >= cutoff:
                continue
            try:
                conversation_close(conversation_id=conversation_id, actor=None, reason="inactive")
            except OwnershipConflict:
                continue
            closed += 1
    return closed


@transaction.atomic
def conversation_request_human(*, conversation_id: Any) -> None:
    """The customer pressed "talk to a person": the next turn escalates with that reason."""
    conversation = Conversation.objects.get(pk=conversation_id)
    if conversation.owner != Owner.AGENT:
        return  # already waiting for or with a person
    message = messages.message_store_reply(
        conversation_id=conversation_id, author=Author.SYSTEM, text="You asked to talk to a person."
    )
    messages.push(conversation_id, messages.serialize(message))
    from agent.tasks import escalate_conversation

    transaction.on_commit(lambda: escalate_conversation.delay(str(conversation_id), "customer asked for a person"))


@transaction.atomic
def conversation_rate(*, conversation_id: Any, score: int, comment: str = "") -> None:
    """Record the customer's satisfaction (1-5)."""
    rated = Conversation.objects.filter(pk=conversation_id).update(csat_score=score, csat_comment=comment[:2000])
    if rated:
        _event(Conversation.objects.only("channel", "is_test").get(pk=conversation_id), EventKind.CSAT, score=score)
    audit_record(
        actor=None,
        event_type=EventType.CONVERSATION,
        subject_type="agent.conversation",
        subject_id=str(conversation_id),
        conversation_id=str(conversation_id),
        decision="csat",
        data={"score": score},
    )


@transaction.atomic
def human_message_send(*, conversation_id: Any, user: AbstractBaseUser, text: str) -> Any:
    """A person writes to the customer; only the conversation's assignee may, and only while it is theirs."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.owner != Owner.HUMAN or conversation.assignee_id != user.pk:
        raise OwnershipConflict("Take the conversation over before writing to the customer.")
    message = messages.message_store_reply(
        conversation_id=conversation_id, author=Author.HUMAN, text=text, author_user=user
    )
    messages.push(conversation_id, messages.serialize(message))
    return message


def _event(conversation: Conversation, kind: str, **data: Any) -> None:
    """Record the analytics event of a move, in the move's transaction (none for a test conversation: those never
    count in analytics)."""
    if conversation.is_test:
        return
    event_record(kind=kind, conversation_id=str(conversation.pk), channel=conversation.channel, data=data)


def _system_note(conversation_id: Any, text: str) -> None:
    message = messages.message_store_reply(conversation_id=conversation_id, author=Author.SYSTEM, text=text)
    messages.push(conversation_id, messages.serialize(message))
