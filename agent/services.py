"""Conversation services. Ownership is one audited state machine — agent → waiting → human → agent | closed — moved
only by conditional updates, so there is never a moment when both the AI and a person answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agent import messages
from agent.models import Author, Conversation, Message, Owner, TurnTrace
from agent.returns import conversation_returns_record
from analytics.events import event_record
from analytics.models import AnalyticsEvent, EventKind
from governance.audit import audit_record
from governance.models import AuditRecord, EventType


class OwnershipConflict(Exception):
    """The conversation is not in a state that allows this move (someone else moved it first)."""


class ReplyNotRateable(Exception):
    """The customer's feedback names no agent reply of the conversation, or has changed too often (``code`` says)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# A customer may change their mind about a reply; beyond this many ratings of one reply, more are refused.
MAX_RATINGS_PER_REPLY = 5


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


TRAFFIC_TO_PERSON_TEXT = "Thanks for getting in touch. A person from our team will answer you here."


@transaction.atomic
def conversation_route_to_person(
    *,
    conversation_id: Any,
    reason: str,
    ticket_id: str = "",
    data: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> Conversation:
    """Give a new conversation to a person before the AI says anything (outside the channel's traffic share:
    agent.handoff.conversation_traffic_hand_over): waiting, audited, the ``traffic_to_person`` event, and the
    customer told; ``context``: the agent's context as it should be from now on. Not an escalation: the AI never had
    it, so it counts in none of the AI's rates."""
    conversation = _move(
        conversation_id=conversation_id,
        to=Owner.WAITING,
        actor=None,
        reason=reason,
        escalation_reason=reason,
        ticket_id=ticket_id,
        **({"context": context} if context is not None else {}),
    )
    _event(conversation, EventKind.TRAFFIC_TO_PERSON, reason=reason, **(data or {}))
    _system_note(conversation.pk, TRAFFIC_TO_PERSON_TEXT)
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
    if not conversation.is_test:
        moves = _latest_moves(conversation.pk, 2)
        came_from = _owner_of(moves[1:])
        waited = _seconds(timezone.now(), moves[1].at) if came_from == Owner.WAITING else None
        _event(conversation, EventKind.HUMAN_TOOK_OVER, user=user.pk, **{"from": came_from}, seconds_waiting=waited)
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
    """Close the conversation; record ``closed`` and, when the customer came back in it about an earlier
    conversation's intent, ``returned_on_topic`` on that one (agent.returns), in the close's transaction."""
    conversation = _move(
        conversation_id=conversation_id, to=Owner.CLOSED, actor=actor, reason=reason, closed_at=timezone.now()
    )
    if not conversation.is_test:
        _event(conversation, EventKind.CLOSED, reason=reason, **_close_times(conversation, actor))
        conversation_returns_record(conversation=conversation)
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
    if not conversation.is_test:
        _event(
            conversation, EventKind.HUMAN_REPLIED, user=user.pk, seq=message.seq, **_reply_times(conversation, message)
        )
    messages.push(conversation_id, messages.serialize(message))
    return message


@transaction.atomic
def reply_feedback_record(*, conversation_id: Any, seq: int, helpful: bool) -> bool:
    """Record the customer's thumbs up or down on the agent's reply ``seq``; return whether an event was recorded.

    A rating may change (the last one stands, as with csat); the same rating again records nothing. Raise
    ReplyNotRateable when ``seq`` is no agent reply of this conversation, or the reply was rated too often.
    """
    # The row lock serialises two connections rating the same reply, so the "same as last time" test holds.
    conversation = Conversation.objects.select_for_update().only("channel", "is_test").get(pk=conversation_id)
    message = Message.objects.filter(conversation_id=conversation.pk, seq=seq).only("pk", "author").first()
    if message is None:
        raise ReplyNotRateable("unknown_seq", f"This conversation has no message {seq}.")
    if message.author != Author.AGENT:
        raise ReplyNotRateable("not_agent_reply", "Only the assistant's replies can be rated.")
    if conversation.is_test:
        return False
    earlier = list(
        AnalyticsEvent.objects.filter(
            conversation_id=str(conversation.pk), kind=EventKind.REPLY_FEEDBACK, data__seq=seq
        )
        .order_by("-created_at", "-pk")
        .values_list("data", flat=True)[:MAX_RATINGS_PER_REPLY]
    )
    if earlier and earlier[0].get("helpful") is helpful:
        return False
    if len(earlier) >= MAX_RATINGS_PER_REPLY:
        raise ReplyNotRateable("rate_limited", "This reply has been rated too often.")
    turn = TurnTrace.objects.filter(reply_id=message.pk).values("pk", "intent").first() or {"pk": None, "intent": ""}
    event_record(
        kind=EventKind.REPLY_FEEDBACK,
        conversation_id=str(conversation.pk),
        channel=conversation.channel,
        intent=turn["intent"],
        data={"seq": seq, "helpful": helpful, "turn": turn["pk"], "changed": bool(earlier)},
    )
    return True


# --- Handoff times, read from the audited ownership moves ------------------------------------------------------------


class _Move(NamedTuple):
    to: str  # the owner the conversation moved to
    at: datetime


def _latest_moves(conversation_id: Any, count: int) -> list[_Move]:
    """Return the conversation's last ``count`` ownership moves, newest first (every move is audited by ``_move``)."""
    rows = (
        AuditRecord.objects.filter(conversation_id=str(conversation_id), decision__startswith="owner:")
        .order_by("-seq")
        .values_list("decision", "created_at")[:count]
    )
    return [_Move(decision.removeprefix("owner:"), at) for decision, at in rows]


def _owner_of(moves: list[_Move]) -> str:
    """Who had the conversation after ``moves[0]``: a conversation never moved is the AI's."""
    return moves[0].to if moves else Owner.AGENT


def _handoff_at(took_over: _Move, before: list[_Move]) -> datetime:
    """When the conversation left the AI for the person who took it at ``took_over``: when it started waiting, or the
    take-over itself when the person took it straight from the AI."""
    return before[0].at if before and before[0].to == Owner.WAITING else took_over.at


def _seconds(later: datetime, earlier: datetime) -> float:
    return round(max((later - earlier).total_seconds(), 0.0), 1)


def _reply_times(conversation: Conversation, message: Message) -> dict[str, Any]:
    """``first`` (the person's first reply since they took the conversation) and, on it, ``seconds_since_handoff``."""
    moves = _latest_moves(conversation.pk, 2)
    if not moves or moves[0].to != Owner.HUMAN:  # the latest move of a conversation a person has is the take-over
        return {"first": False, "seconds_since_handoff": None}
    earlier = (
        Message.objects.filter(conversation_id=conversation.pk, author=Author.HUMAN, created_at__gte=moves[0].at)
        .exclude(pk=message.pk)
        .exists()
    )
    if earlier:
        return {"first": False, "seconds_since_handoff": None}
    return {"first": True, "seconds_since_handoff": _seconds(message.created_at, _handoff_at(moves[0], moves[1:]))}


def _close_times(conversation: Conversation, actor: Any) -> dict[str, Any]:
    """Who closed it, who had it, and the times: open, waiting (closed before anyone picked it up) and since the
    handoff (closed by or while with a person)."""
    now = timezone.now()
    moves = _latest_moves(conversation.pk, 3)[1:]  # [0] is this close
    came_from = _owner_of(moves)
    times: dict[str, Any] = {
        "by": getattr(actor, "pk", None),
        "from": came_from,
        "assignee": conversation.assignee_id if came_from == Owner.HUMAN else None,
        "seconds_open": _seconds(now, conversation.created_at),
        "seconds_waiting": _seconds(now, moves[0].at) if came_from == Owner.WAITING else None,
        "seconds_since_handoff": None,
    }
    if came_from == Owner.HUMAN:
        times["seconds_since_handoff"] = _seconds(now, _handoff_at(moves[0], moves[1:]))
    return times


def _event(conversation: Conversation, kind: str, **data: Any) -> None:
    """Record the analytics event of a move, in the move's transaction (none for a test conversation: those never
    count in analytics)."""
    if conversation.is_test:
        return
    event_record(kind=kind, conversation_id=str(conversation.pk), channel=conversation.channel, data=data)


def _system_note(conversation_id: Any, text: str) -> None:
    message = messages.message_store_reply(conversation_id=conversation_id, author=Author.SYSTEM, text=text)
    messages.push(conversation_id, messages.serialize(message))
