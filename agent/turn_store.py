"""A turn's round trips to PostgreSQL (docs/architecture.md, "Round trips on the chat's hot path"): the claim with
the pass's opening reads, the claim's release, and the reply stored with its trace, audit record and analytics events.

``agent.turn`` decides; this module reads and writes what a pass needs, in as few round trips as it can
(``config.sql``): the open is one, the finish two. ``agent/tests/test_turn.py`` pins a knowledge turn's statements.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from agent import identity, messages
from agent.escalation import EscalationRuleSpec, escalation_rules_query, load_escalation_rules
from agent.models import Author, Conversation, Message, TurnTrace
from agent.responders.router import INTENTS_FINGERPRINT_SQL
from analytics.events import turn_events
from config.sql import insert_parts, insert_statement, instances_from, pipeline, transaction_pipeline
from governance.audit import audit_chained, audit_tail_queue, audit_values
from governance.gates import FIRST_STAGE
from governance.models import ChannelRollout, EventType

CLAIM_STALE_AFTER = timedelta(seconds=90)  # longer than the turn task's hard time limit
HISTORY = 12  # messages before the first pending one: the responder's transcript
RECENT = 6  # the customer's latest messages the escalation rules read


@dataclass
class Reply:
    """What a pass decided to say and do (agent.turn), as ``finish`` stores it."""

    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    choices: list[dict[str, str]] = field(default_factory=list)
    escalate: tuple[str, int, str] | None = None  # (reason, priority, queue)
    progress: bool = True
    confidence: float | None = None
    human_requested: bool = False
    connector_failed: bool = False
    refund_amount: Any = None
    answer_kind: str = ""  # an Answer's kind ("knowledge", "unknown", ...): which analytics events the turn records


MESSAGES, CONVERSATIONS = Message._meta.db_table, Conversation._meta.db_table
# Claim the conversation unless someone holds a fresh claim, and return it (the ORM's update() returns no row).
_CLAIM_SQL = f"""
    UPDATE {CONVERSATIONS} SET turn_claimed_at = %s, turn_claimed_by = %s
    WHERE id = %s AND (turn_claimed_at IS NULL OR turn_claimed_at < %s)
    RETURNING *
"""
_READ_SQL = f"SELECT * FROM {CONVERSATIONS} WHERE id = %s"
# The messages a pass reads: the customer's unhandled ones (what it answers), up to HISTORY before the first of them
# (the responder's transcript) and the customer's last RECENT (the escalation rules' texts).
_WINDOW_SQL = f"""
    SELECT * FROM {MESSAGES} WHERE conversation_id = %(id)s AND (
        seq >= (
            SELECT coalesce(min(seq), 2147483647) FROM {MESSAGES}
            WHERE conversation_id = %(id)s AND author = %(customer)s AND NOT handled
        ) - %(history)s
        OR id IN (
            SELECT id FROM {MESSAGES} WHERE conversation_id = %(id)s AND author = %(customer)s
            ORDER BY seq DESC LIMIT %(recent)s
        )
    )
    ORDER BY seq
"""


@dataclass
class Opened:
    """What a pass reads before it begins (``open_pass``)."""

    conversation: Conversation | None  # None: the claim was refused, or the conversation is gone
    window: list[Message]  # _WINDOW_SQL
    intents_fingerprint: str  # for the responder (TurnContext.intents_fingerprint)
    escalation_rules: list[EscalationRuleSpec]


def open_pass(conversation_id: str, worker: str, *, claim: bool) -> Opened:
    """Claim (or, on a later pass, read) the conversation, and read the pass's messages and the configuration it
    checks every time (the intents' fingerprint, the escalation rules): one round trip.

    The messages are read by a later statement than the conversation, so none stored after its ``last_seq`` was
    read is missed: it is either in them or has a higher seq.
    """
    now = timezone.now()
    with pipeline() as batch:
        if claim:
            head = batch.execute(_CLAIM_SQL, [now, worker, conversation_id, now - CLAIM_STALE_AFTER])
        else:
            head = batch.execute(_READ_SQL, [conversation_id])
        rows = batch.execute(
            _WINDOW_SQL, {"id": conversation_id, "customer": Author.CUSTOMER, "history": HISTORY, "recent": RECENT}
        )
        fingerprint = batch.execute(INTENTS_FINGERPRINT_SQL)
        rules = batch.execute(*rules_sql())
    conversations = instances_from(head, Conversation)
    opened = Opened(
        conversation=conversations[0] if conversations else None,
        window=instances_from(rows, Message),
        intents_fingerprint=fingerprint.fetchone()[0],
        escalation_rules=load_escalation_rules(rules.fetchall()),
    )
    batch.close()
    return opened


@functools.cache
def rules_sql() -> tuple[str, tuple[Any, ...]]:
    """escalation_rules_query()'s SQL and parameters: the same for every turn, compiled once per process."""
    return escalation_rules_query().query.sql_with_params()


def release(conversation_id: str, worker: str) -> None:
    Conversation.objects.filter(pk=conversation_id, turn_claimed_by=worker).update(
        turn_claimed_at=None, turn_claimed_by=""
    )


# Release the claim unless a customer message waits: none unhandled and, when ``seen`` is given, none stored after it.
RELEASE_SQL = f"""
    UPDATE {CONVERSATIONS} SET turn_claimed_at = NULL, turn_claimed_by = ''
    WHERE id = %(id)s AND turn_claimed_by = %(worker)s AND last_seq = coalesce(%(seen)s, last_seq) AND NOT EXISTS (
        SELECT 1 FROM {MESSAGES} WHERE conversation_id = %(id)s AND author = %(customer)s AND NOT handled
    )
    RETURNING 1
"""


def release_params(conversation_id: Any, worker: str, seen: int | None = None) -> dict[str, Any]:
    return {"id": conversation_id, "worker": worker, "seen": seen, "customer": Author.CUSTOMER}


def release_when_idle(conversation_id: str, worker: str, seen: int) -> bool:
    """Release the claim unless a message is waiting: none unhandled, and none stored after seq ``seen``.

    One statement instead of "release, then look for pending messages once more". Its NOT EXISTS sees only
    messages committed before the statement began; one stored meanwhile holds the conversation's row lock while it
    takes its seq (messages._next_seq), so this UPDATE waits for it and PostgreSQL re-checks ``last_seq`` on the
    row as that message left it: the claim is kept. Either the claim is released before that message's turn task
    tries it, or it is kept and this loop answers the message: nothing stored is left unanswered.

    ``finish`` sends the same statement in the reply's transaction, without ``seen``: the reply's UPDATE holds the
    row lock there, so a message committed before the statement is seen by its NOT EXISTS, and one stored later waits
    for the transaction and its turn task finds the claim released.
    """
    with connection.cursor() as cursor:
        cursor.execute(RELEASE_SQL, release_params(conversation_id, worker, seen))
        return cursor.fetchone() is not None


# The reply's seq, taken under the conversation's row lock as messages.message_store_reply takes it, with the pass's
# state saved in the same UPDATE, and the reply inserted with that seq: one statement.
_REPLY_SQL = f"""
    WITH taken AS (
        UPDATE {CONVERSATIONS} SET last_seq = last_seq + 1, updated_at = %s, context = %s, unresolved_turns = %s
        WHERE id = %s RETURNING last_seq
    )
    INSERT INTO {{target}} SELECT {{row}} FROM taken RETURNING id, seq
"""
_HANDLED_SQL = f"UPDATE {MESSAGES} SET handled = true WHERE id = ANY(%s)"
# The reply's id for the trace sent with it: the conversation's message with the seq it just took.
_REPLY_ID_SQL = f"""(
    SELECT m.id FROM {MESSAGES} m JOIN {CONVERSATIONS} c ON m.conversation_id = c.id AND m.seq = c.last_seq
    WHERE c.id = %s
)"""

# The channel's rollout stage for the trace, in the statement that saves it (governance.gates.channel_stage).
_STAGE_SQL = f"coalesce((SELECT stage FROM {ChannelRollout._meta.db_table} WHERE channel = %s), {FIRST_STAGE})"


def finish(
    conversation: Conversation,
    pending: list[Message],
    trace: TurnTrace,
    reply: Reply,
    state: dict[str, Any],
    *,
    release: str = "",
) -> tuple[int, bool]:
    """Store the reply, mark ``pending`` handled, save the trace and the pass's state, audit and record the turn, and
    release ``release``'s claim unless a customer message waits: one transaction. Return the reply's seq and whether
    the claim was released.

    It runs on every turn, between the answer and the customer seeing it, so it is two round trips
    (config/sql.py): BEGIN, the pending messages handled, the reply with its seq and the pass's state, the trace,
    the audit chain's lock and tail; then the audit record (hashed on that tail), the analytics events and COMMIT.
    """
    message = Message(
        conversation_id=conversation.pk,
        author=Author.AGENT,
        text=reply.text,
        citations=reply.citations,
        choices=reply.choices,
    )
    target, rows, params = insert_parts([message], expressions={"seq": "taken.last_seq"})
    context = Conversation._meta.get_field("context").get_db_prep_save(state, connection)
    unresolved = 0 if reply.progress else conversation.unresolved_turns + 1
    trace.status = TurnTrace.Status.FAILED if trace.error else TurnTrace.Status.DONE
    trace.finished_at = timezone.now()
    # An upsert when the pass saved it already (a tool call, a streamed reply).
    expressions = {"reply_id": (_REPLY_ID_SQL, [conversation.pk])}
    if trace.stage is None:  # a pass that needed no capability beyond knowledge answers did not read its stage
        expressions["stage"] = (_STAGE_SQL, [conversation.channel])
    trace_sql = insert_statement([trace], expressions=expressions, upsert=trace.pk is not None)
    with transaction_pipeline() as batch:
        batch.execute(_HANDLED_SQL, [[m.pk for m in pending]])
        stored = batch.execute(
            _REPLY_SQL.format(target=target, row=rows[0]),
            [message.created_at, context, unresolved, conversation.pk, *params],
        )
        saved = batch.execute(*trace_sql)
        if release:
            released = batch.execute(RELEASE_SQL, release_params(conversation.pk, release))
        tail = audit_tail_queue(batch)
        batch.sync()
        message.pk, message.seq = stored.fetchone()
        message._state.adding = False
        trace.pk, trace.reply = saved.fetchone()[0], message
        trace._state.adding = False
        record = audit_chained(
            audit_values(
                actor=identity.principal_for(conversation),
                event_type=EventType.CONVERSATION,
                subject=trace,
                conversation_id=str(conversation.pk),
                turn_id=str(trace.pk),
                decision="replied",
                reason=trace.intent or "",
                sources=[c.get("source", c.get("title", "")) for c in reply.citations],
                data={
                    "tool_calls": [{k: c[k] for k in ("action", "decision")} for c in trace.tool_calls],
                    "confidence": trace.confidence,
                    "escalate": bool(reply.escalate),
                },
                prompt_version=trace.prompt_version,
            ),
            tail,
        )
        batch.execute(*insert_statement([record]))
        if not conversation.is_test:  # a test conversation (suites/) never counts in analytics
            events = turn_events(
                conversation_id=str(conversation.pk),
                channel=conversation.channel,
                intent=trace.intent,
                answer_kind=reply.answer_kind,
                tool_calls=trace.tool_calls,
                data={
                    "turn": trace.pk,
                    "status": trace.status,
                    "confidence": trace.confidence,
                    "responder": trace.responder,
                    "prompt_version": trace.prompt_version,
                    "stage": trace.stage,
                    "total_ms": trace.timings.get("total_ms"),
                },
            )
            batch.execute(*insert_statement(events))
        messages.push(conversation.pk, messages.serialize(message))  # once committed
    return message.seq, bool(release) and released.fetchone() is not None
