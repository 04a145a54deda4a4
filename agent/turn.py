"""One customer turn, end to end (../shared/DESIGN.md, "One customer turn").

``run_turn`` claims the conversation (one turn at a time: a conditional update), answers every customer message not
yet handled — messages that arrive meanwhile are taken into the next pass, never interleaved — and releases it.
Each pass: identity → the responder proposes → governance decides each tool call → connectors/knowledge → the
escalation rules → reply, trace and audit in one transaction → pushed to the conversation's group. Anything that
fails gives the customer an honest message and a person; nothing they said is lost (their messages stay stored and
are marked handled only together with the reply).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from agent import identity, messages, query_vectors
from agent.escalation import TurnSignals, escalation_summary, evaluate_escalation
from agent.handoff import conversation_traffic_hand_over, held_back
from agent.handoff import escalate as escalate_conversation
from agent.models import Author, Conversation, Message, Owner, TurnTrace
from agent.responders import get_responder
from agent.responders.base import (
    VERIFY_EMAIL_ACTION,
    Answer,
    Clarify,
    Escalate,
    PendingClarification,
    Proposal,
    ToolCall,
    TurnContext,
)
from agent.tools import TALK_TO_PERSON, run_action
from agent.turn_store import HISTORY, RECENT, Opened, Reply, finish, open_pass, release, release_when_idle
from governance import dry_run
from governance.authorization import decision_stage
from governance.gates import Capability, CapabilityCheck, capability_check
from governance.roles import Verification

logger = logging.getLogger(__name__)

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CODE = re.compile(r"\b(\d{6})\b")


# --- The loop ---------------------------------------------------------------------------------------------------------


def run_turn(conversation_id: str, *, embedded_ahead: str = "") -> str:
    """Answer the conversation's pending messages; ``embedded_ahead``: the client id of the message whose question the
    web process embedded for this turn (agent/query_vectors.py)."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    # The claim returns the conversation as it claimed it, with the messages the first pass reads: one round trip.
    opened = open_pass(conversation_id, worker, claim=True)
    conversation = opened.conversation
    if conversation is None:
        return "busy: another worker has this conversation's turn"
    if conversation.is_test and dry_run.current() is None:
        # A regression suite's conversation never writes outside, whoever runs its turn (a worker too): dry run
        # always; the suite runner sets its own recorder first, which is kept (governance/dry_run.py).
        with dry_run.dry_run(dry_run.DryRun()):
            return _answer(conversation_id, worker, opened, embedded_ahead)
    return _answer(conversation_id, worker, opened, embedded_ahead)


def _answer(conversation_id: str, worker: str, opened: Opened, embedded_ahead: str) -> str:
    """Answer pending messages pass by pass under ``worker``'s claim, until none waits; release the claim."""
    conversation = opened.conversation
    outcome = "nothing to do"
    try:
        while True:
            if conversation is None:  # a later pass: read again
                opened = open_pass(conversation_id, worker, claim=False)
                conversation = opened.conversation
                if conversation is None or conversation.turn_claimed_by != worker:
                    return "busy: another worker has this conversation's turn"  # our claim went stale and was taken
            # The conversation is read before the messages: a message stored after it has a higher seq than ``seen``.
            seen = conversation.last_seq
            pending = [m for m in opened.window if m.author == Author.CUSTOMER and not m.handled]
            if pending and conversation.owner == Owner.AGENT and held_back(conversation):
                # Outside the AI's traffic share: its first message goes to a person, and the AI says nothing.
                conversation_traffic_hand_over(conversation)
                Message.objects.filter(pk__in=[m.pk for m in pending]).update(handled=True)
            elif pending and conversation.owner != Owner.AGENT:
                # A person (or the queue) owns the conversation: the AI stays silent; the person reads them.
                Message.objects.filter(pk__in=[m.pk for m in pending]).update(handled=True)
            elif pending:
                seen, released = _one_pass(conversation, pending, opened, worker, embedded_ahead)
                outcome = "answered"
                if released:  # together with the reply: nothing was waiting
                    return outcome
            embedded_ahead = ""  # for the first pass only
            if release_when_idle(conversation_id, worker, seen):
                return outcome
            # Something was stored since we looked (a message meanwhile, or the escalation's notice): look again.
            conversation = None
    except BaseException:
        release(conversation_id, worker)
        raise


def _one_pass(
    conversation: Conversation, pending: list[Message], opened: Opened, worker: str, embedded_ahead: str = ""
) -> tuple[int, bool]:
    """Answer ``pending`` in one reply; return the reply's seq and whether ``worker``'s claim was released with it
    (``finish``). ``opened``: what ``open_pass`` read."""
    started = time.perf_counter()
    # Saved with the reply (``finish``), or earlier when a tool call or a streamed reply needs its id (``_saved``).
    trace = TurnTrace(
        conversation=conversation,
        message_seqs=[m.seq for m in pending],
        responder=settings.STEWARD_RESPONDER,
        created_at=timezone.now(),
    )
    run = dry_run.current()
    if run is not None and run.stage is not None:
        trace.stage = run.stage  # a suite rehearsing a stage; otherwise read when first needed (``_stage``)
    state: dict[str, Any] = dict(conversation.context or {})
    try:
        reply = _decide(conversation, pending, opened, trace, state, embedded_ahead)
    except Exception as exc:  # noqa: BLE001 - process boundary: the customer gets an honest answer and a person
        logger.exception("turn failed for conversation %s", conversation.pk)
        trace.error = f"{exc.__class__.__name__}: {exc}"[:2000]
        reply = Reply(
            text="Sorry — something went wrong on our side. I'm passing you to a person who can help.",
            escalate=("the agent failed on this turn", 2, ""),
            progress=False,
        )
    trace.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
    reply = _apply_escalation_rules(conversation, pending, opened, trace, reply)
    if reply.escalate is not None:
        # Recorded before the trace is saved; below stage 3 the person takes it from the waiting queue, no ticket.
        _capability(conversation, trace, Capability.HANDOFF)
    # An escalation hands over after the reply, still under the claim: the claim is released afterwards.
    seq, released = finish(conversation, pending, trace, reply, state, release=worker if not reply.escalate else "")
    if reply.escalate is not None:
        reason, priority, queue = reply.escalate
        escalate_conversation(
            Conversation.objects.get(pk=conversation.pk),
            reason=reason,
            priority=priority,
            queue=queue,
            stage=trace.stage,
        )
    return seq, released


def _stage(conversation: Conversation, trace: TurnTrace) -> int:
    """Return the rollout stage this pass decides at, read once, when a capability beyond knowledge answers is asked
    for (every stage answers from knowledge: a knowledge turn reads nothing more; ``finish`` stores its stage)."""
    if trace.stage is None:
        trace.stage = decision_stage(conversation.channel)
    return trace.stage


def _capability(conversation: Conversation, trace: TurnTrace, capability: str) -> CapabilityCheck:
    """Check one stage capability and record the decision, with its reason, on the trace."""
    check = capability_check(_stage(conversation, trace), capability)
    trace.capabilities = [*trace.capabilities, check.as_json()]
    return check


def _saved(trace: TurnTrace) -> TurnTrace:
    """Return the trace, saved (status running) if it was not yet: something outside the pass refers to its id."""
    if trace.pk is None:
        trace.save()
    return trace


# --- Deciding ---------------------------------------------------------------------------------------------------------


def _decide(
    conversation: Conversation,
    pending: list[Message],
    opened: Opened,
    trace: TurnTrace,
    state: dict[str, Any],
    embedded_ahead: str = "",
) -> Reply:
    texts = tuple(m.text for m in pending)
    if identity.verification_locked(conversation):
        return Reply(
            text="I couldn't verify your identity, so I'm passing you to a person who can help.",
            escalate=("verification failed too many times", 2, ""),
            progress=False,
        )
    pendingq = state.get("pending") or {}
    if pendingq.get("slot") == "code":
        return _verify_code(conversation, texts[-1], trace, state)
    if pendingq.get("slot") == "email" and EMAIL.search(texts[-1]):
        return _start_verification(conversation, EMAIL.search(texts[-1]).group(0), state)

    context = TurnContext.for_customer(
        conversation_id=str(conversation.pk),
        texts=texts,
        verification=conversation.verification,
        transcript=_transcript(opened.window, before=pending[0].seq),
        known_slots=state.get("known_slots", {}),
        pending=PendingClarification(**pendingq) if pendingq.get("intent") else None,
        on_delta=_delta_pusher(conversation.pk, trace),
        intents_fingerprint=opened.intents_fingerprint,
        query_vector=_vector_ahead(conversation.pk, pending[-1], embedded_ahead, trace),
    )
    t0 = time.perf_counter()
    responder = get_responder(settings.STEWARD_RESPONDER)
    proposal = responder.propose(context)
    trace.timings["responder_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    _record_proposal(trace, proposal, responder)
    state["known_slots"] = {**state.get("known_slots", {}), **proposal.slots}
    state.pop("pending", None)

    if isinstance(proposal, Answer):
        if proposal.kind == "unknown" and pendingq.get("slot") == "email" and state.get("pending_action"):
            # "Why do you need that?" while we wait for the address: say why, and keep waiting for it.
            state["pending"] = pendingq
            return Reply(
                text="I ask so I can confirm it's you before I look at your account: I'll e-mail a 6-digit code "
                "to the address on your Brewline account, and nothing else is sent there. What's that address? "
                "Or ask for a person if you'd rather.",
                choices=[TALK_TO_PERSON],
                progress=False,
                answer_kind="info",
            )
        return Reply(
            text=proposal.text,
            citations=proposal.citations,
            choices=list(proposal.choices),
            confidence=proposal.confidence,
            progress=proposal.kind != "unknown",
            answer_kind=proposal.kind,
        )
    if isinstance(proposal, Clarify):
        state["pending"] = {"intent": proposal.intent, "slot": proposal.slot}
        # Asking for what the request needs is progress; the responder never asks the same question twice.
        return Reply(text=proposal.question, choices=list(proposal.choices), confidence=proposal.confidence)
    if isinstance(proposal, Escalate):
        human = "person" in proposal.reason or "human" in proposal.reason
        return Reply(
            text="Of course — I'm passing you to a person from our team. They'll reply right here.",
            escalate=(proposal.reason, 3, ""),
            confidence=proposal.confidence,
            human_requested=human,
        )
    if isinstance(proposal, ToolCall):
        if proposal.action == VERIFY_EMAIL_ACTION:
            return _start_verification(conversation, str(proposal.arguments.get("email", "")), state)
        return _tool(
            conversation,
            proposal.action,
            proposal.arguments,
            proposal.intent,
            pending,
            trace,
            state,
            confidence=proposal.confidence,
        )
    raise TypeError(f"unknown proposal {type(proposal).__name__}")


def _vector_ahead(
    conversation_id: Any, latest: Message, embedded_ahead: str, trace: TurnTrace
) -> Callable[[], Any] | None:
    """The latest message's embedding as the web process computed it, when it did (TurnContext.query_vector).

    The trace's timings get ``vector_wait_ms`` (how long the turn waited for it) and ``vector_ahead`` (1: taken,
    0: none came, the responder embedded the text itself)."""
    if not embedded_ahead or str(latest.client_id) != embedded_ahead:
        return None

    def take() -> Any:
        started = time.perf_counter()
        vector = query_vectors.take(conversation_id, embedded_ahead)
        trace.timings["vector_wait_ms"] = round((time.perf_counter() - started) * 1000, 1)
        trace.timings["vector_ahead"] = int(vector is not None)
        return vector

    return take


def _delta_pusher(conversation_id: Any, trace: TurnTrace) -> Callable[[str], None]:
    """Return the streaming callback: each new piece of the reply's text goes out as a ``delta`` frame.

    ``text`` is the piece (the widget appends it to the turn's bubble); the stored reply's ``message`` frame replaces
    the streamed text, which may differ from it (escalation rules, governance's wording of an action). ``turn`` is
    the trace's id: the first piece saves the trace.
    """

    def push(piece: str) -> None:
        messages.push(conversation_id, {"type": "delta", "turn": _saved(trace).pk, "text": piece})

    return push


def _tool(
    conversation: Conversation,
    action: str,
    arguments: dict[str, Any],
    intent: str,
    pending: list[Message],
    trace: TurnTrace,
    state: dict[str, Any],
    *,
    confidence: float | None = None,
) -> Reply:
    t0 = time.perf_counter()
    outcome = run_action(
        principal=identity.principal_for(conversation),
        action=action,
        arguments=arguments,
        conversation_id=str(conversation.pk),
        turn_id=str(_saved(trace).pk),
        channel=conversation.channel,
        idempotency_key=f"{conversation.pk}:{pending[-1].seq}:{action}",
        stage=_stage(conversation, trace),
    )
    trace.timings[f"{action}_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    if outcome.capability is not None:
        trace.capabilities = [*trace.capabilities, outcome.capability]
    trace.tool_calls = [
        *trace.tool_calls,
        {
            "action": action,
            "arguments": arguments,
            "decision": outcome.decision,
            "reason": outcome.reason,  # a stage that lacks the action's capability says so here
            "capability": (outcome.capability or {}).get("capability", ""),
            "tier": outcome.tier,  # action outcomes are reported per tier (analytics.actions)
            "result": outcome.result,
        },
    ]
    if outcome.needs_verification and conversation.verification >= Verification.EMAIL_VERIFIED:
        # Only the host site's signed token proves more than an email code: a person takes it from here.
        return Reply(
            text="For that our team needs to confirm your identity in another way. A person can help.",
            choices=[TALK_TO_PERSON],
            progress=False,
        )
    if outcome.needs_verification:
        state["pending_action"] = {"action": action, "arguments": arguments, "intent": intent}
        if conversation.customer_email and conversation.verification == 0:
            return _start_verification(conversation, conversation.customer_email, state)
        state["pending"] = {"intent": intent or "verify", "slot": "email"}
        return Reply(
            text="To help with that I first need to confirm it's you. What's the email address on your "
            "Brewline account? I'll send you a 6-digit code."
        )
    reply = Reply(
        text=outcome.text,
        choices=outcome.choices,
        progress=outcome.progress,
        confidence=confidence,
        connector_failed=outcome.connector_failed,
        refund_amount=arguments.get("amount") if action == "refund" else None,
    )
    if outcome.connector_failed:
        reply.escalate = (f"a connected system failed during {action}: {outcome.reason}", 2, "")
    return reply


def _start_verification(conversation: Conversation, email: str, state: dict[str, Any]) -> Reply:
    try:
        identity.email_challenge_start(conversation=conversation, email=email)
    except identity.VerificationLocked:
        return Reply(
            text="I couldn't verify your identity, so I'm passing you to a person who can help.",
            escalate=("verification locked", 2, ""),
            progress=False,
        )
    except identity.VerificationRateLimited:
        return Reply(
            text="I've sent several codes already. Please use the latest one, or ask for a person.",
            choices=[TALK_TO_PERSON],
            progress=False,
        )
    except Exception as exc:  # noqa: BLE001 - a bad address (ValidationError) or a mail failure
        logger.info("verification not started: %s", exc)
        state["pending"] = {"intent": "verify", "slot": "email"}
        return Reply(
            text="I couldn't send a code to that address. Could you check it and type it again?", progress=False
        )
    state["pending"] = {"intent": "verify", "slot": "code"}
    return Reply(text=f"I've sent a 6-digit code to {email}. Please type it here to continue.")


def _verify_code(conversation: Conversation, text: str, trace: TurnTrace, state: dict[str, Any]) -> Reply:
    match = CODE.search(text)
    if not match:
        return Reply(
            text="Please type the 6-digit code from the email (or ask for a person).",
            choices=[TALK_TO_PERSON],
            progress=False,
        )
    try:
        ok = identity.email_challenge_verify(conversation=conversation, code=match.group(1))
    except identity.VerificationLocked:
        return Reply(
            text="That code didn't match and I can't try again, so I'm passing you to a person.",
            escalate=("verification failed too many times", 2, ""),
            progress=False,
        )
    except identity.NoActiveChallenge:
        state.pop("pending", None)
        return Reply(text="That code has expired. What's your email address? I'll send a new one.", progress=False)
    if not ok:
        return Reply(text="That code didn't match. Please check the email and try again.", progress=False)
    conversation.refresh_from_db()
    if _capability(conversation, trace, Capability.CRM_CONTEXT).allowed:
        link_customer(conversation)  # a CRM lookup: CRM context, from stage 2
    state.pop("pending", None)
    waiting = state.pop("pending_action", None)
    if waiting:
        reply = _tool(
            conversation,
            waiting["action"],
            waiting["arguments"],
            waiting.get("intent", ""),
            list(Message.objects.filter(conversation=conversation, author=Author.CUSTOMER).order_by("-seq")[:1]),
            trace,
            state,
        )
        reply.text = f"Thanks, you're verified. {reply.text}"
        return reply
    return Reply(text="Thanks, you're verified. How can I help?")


def link_customer(conversation: Conversation) -> None:
    """After email verification, find the customer record with that address in the CRM (one match only)."""
    if conversation.customer_id or not conversation.customer_email:
        return
    from connectors.base import ConnectorError
    from connectors.gateway import adapter_for, call, connector_for

    try:
        connector = connector_for(family="crm")
        adapter = adapter_for(
            connector,
            principal=identity.principal_for(conversation),
            purpose="find customer",
            conversation_id=str(conversation.pk),
        )
        found = call(connector, lambda: adapter.find_customers(email=conversation.customer_email))
    except ConnectorError as exc:
        logger.info("customer lookup failed for %s: %s", conversation.pk, exc)
        return
    if len(found) == 1:
        Conversation.objects.filter(pk=conversation.pk, customer_id="").update(
            customer_id=found[0].id, customer_name=found[0].name[:200]
        )
        conversation.refresh_from_db()


def _transcript(window: list[Message], *, before: int) -> tuple[tuple[str, str], ...]:
    return tuple((m.author, m.text) for m in [m for m in window if m.seq < before][-HISTORY:])


def _record_proposal(trace: TurnTrace, proposal: Proposal, responder: Any) -> None:
    trace.intent = proposal.intent
    trace.intent_score = proposal.intent_score
    trace.retrieved = proposal.retrieved
    trace.confidence = getattr(proposal, "confidence", None)
    trace.prompt_version = f"{getattr(responder, 'version', '')}:{proposal.config_version}"[:64]


# --- Escalation rules and the end of a turn -------------------------------------------------------------------------


def _apply_escalation_rules(
    conversation: Conversation, pending: list[Message], opened: Opened, trace: TurnTrace, reply: Reply
) -> Reply:
    recent = [m.text for m in opened.window if m.author == Author.CUSTOMER][-RECENT:]
    signals = TurnSignals.from_texts(
        recent or [m.text for m in pending],
        confidence=reply.confidence,
        unresolved_turns=conversation.unresolved_turns + (0 if reply.progress else 1),
        human_requested=reply.human_requested,
        connector_failed=reply.connector_failed,
        refund_amount=reply.refund_amount,
        account_tier=(conversation.context or {}).get("account_tier", ""),
    )
    results = evaluate_escalation(opened.escalation_rules, signals)
    trace.escalation = [result.as_dict() for result in results]
    summary = escalation_summary(results)
    if summary.fired and reply.escalate is None:
        reply.escalate = (summary.reason, summary.priority or 3, summary.queue)
        reply.text = (
            "I'd like a person from our team to help with this. I'm passing your conversation on now — "
            "they'll reply right here."
        )
        reply.choices = []
    return reply


def escalate(conversation_id: str, reason: str) -> str:
    """Escalate on the customer's request (the "talk to a person" control)."""
    conversation = Conversation.objects.get(pk=conversation_id)
    return escalate_conversation(conversation, reason=reason, priority=3)
