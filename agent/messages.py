"""Storing and delivering messages. Sequence numbers are per conversation, given under a row lock, so a client that
resumes "after seq N" gets every later message exactly once; a customer message is idempotent on its client id."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agent import query_vectors
from agent.models import Author, Conversation, Message, Owner
from config.sql import insert_parts

TOKEN_SALT = "steward.conversation"
MAX_TEXT = 4000
# Per conversation, across all its connections: at most this many customer messages stored in any RATE_WINDOW.
MESSAGES_PER_MINUTE, RATE_WINDOW = 20, timedelta(seconds=60)


class MessageRateLimited(Exception):
    """The conversation has had ``MESSAGES_PER_MINUTE`` customer messages in the last minute; this one is not stored."""


def group_name(conversation_id: uuid.UUID | str) -> str:
    """The channel-layer group every connection of a conversation (and the console) listens on."""
    return f"conversation.{conversation_id}"


def conversation_token(conversation: Conversation) -> str:
    """A signed capability for one conversation: who holds it may read and write that conversation only."""
    return signing.dumps(str(conversation.id), salt=TOKEN_SALT)


def conversation_from_token(conversation_id: str, token: str) -> Conversation | None:
    """Return the conversation if ``token`` was issued for it, else None."""
    try:
        signed_id = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return None
    if signed_id != str(conversation_id):
        return None
    return Conversation.objects.filter(pk=conversation_id).first()


def conversation_start(*, channel: str = "web_chat", origin_url: str = "", is_test: bool = False) -> Conversation:
    """Start a conversation; ``is_test``: a regression suite's scripted one (dry run, never in analytics or console).

    A live channel then calls ``agent.handoff.conversation_traffic_route`` once it knows who starts it (the chat API
    after the identity token): outside the channel's traffic share its first message goes straight to a person."""
    return Conversation.objects.create(channel=channel, origin_url=origin_url[:1000], is_test=is_test)


# One statement (the ORM's update() returns no row) instead of SELECT ... FOR UPDATE, then UPDATE.
_TAKE_SEQ_SQL = f"""
    UPDATE {Conversation._meta.db_table} SET last_seq = last_seq + 1, updated_at = %s WHERE id = %s
    RETURNING last_seq, owner
"""


def _lock_and_take_seq(conversation_id: Any) -> tuple[int, str]:
    """Take the conversation's next seq; return it and the owner, as of the row lock the UPDATE takes."""
    # The row lock lasts until the transaction ends: concurrent writers of one conversation queue here, so seq has no
    # gaps or twins.
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SEQ_SQL, [timezone.now(), conversation_id])
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"no conversation {conversation_id}")
    return row[0], row[1]


def _next_seq(conversation_id: Any) -> int:
    return _lock_and_take_seq(conversation_id)[0]


def _store_customer(
    *, conversation_id: Any, client_id: uuid.UUID, text: str, limit: int | None = None
) -> tuple[Message, bool, str]:
    seq, owner = _lock_and_take_seq(conversation_id)  # takes the lock before the duplicate check
    existing = Message.objects.filter(conversation_id=conversation_id, client_id=client_id).first()
    if existing is not None:
        transaction.set_rollback(True)  # give the sequence number back
        return existing, False, owner
    if limit is not None and _recent_customer_messages(conversation_id).count() >= limit:
        transaction.set_rollback(True)
        raise MessageRateLimited(conversation_id)
    message = Message.objects.create(
        conversation_id=conversation_id,
        seq=seq,
        author=Author.CUSTOMER,
        client_id=client_id,
        text=text[:MAX_TEXT],
    )
    return message, True, owner


@transaction.atomic
def message_store_customer(*, conversation_id: Any, client_id: uuid.UUID, text: str) -> tuple[Message, bool]:
    """Store a customer's message once per client id; return it and whether it is new."""
    message, created, _ = _store_customer(conversation_id=conversation_id, client_id=client_id, text=text)
    return message, created


def message_receive_customer(
    *, conversation_id: Any, client_id: uuid.UUID, text: str, connection_channel: str = "", embed_ahead: bool = False
) -> tuple[Message, bool]:
    """Store a customer's message from a live channel; return it and whether it is new.

    A new message is queued for a turn when the AI owns the conversation, and shown on the conversation's other
    connections (``connection_channel``, the one it came from, has its ``ack``): both once it is committed, the turn
    first, from the row stored here. A new message beyond ``MESSAGES_PER_MINUTE`` raises ``MessageRateLimited``
    (a resend of a stored one is answered whatever the count). ``embed_ahead``: embed the new message's text in this
    process while its turn waits for a worker, when it can (agent/query_vectors.py); the turn is told to take it.

    The chat's hot path: one statement checks the limit, takes the seq and inserts the message (``_RECEIVE_SQL``),
    committed by itself outside a transaction. When it stores nothing — an unknown conversation, a client id
    already stored (a resend), the limit reached, or a concurrent resend stored while it waited for the row lock
    (the unique constraint rolls the statement back, seq included) — the locked path below tells which.
    """
    message = Message(
        conversation_id=conversation_id, author=Author.CUSTOMER, client_id=client_id, text=text[:MAX_TEXT]
    )
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():  # a savepoint only when nested
            stored = _receive_in_one_statement(message)
    except IntegrityError:
        stored = None
    if stored is None:
        with transaction.atomic():
            message, created, owner = _store_customer(
                conversation_id=conversation_id, client_id=client_id, text=text, limit=MESSAGES_PER_MINUTE
            )
    else:
        (message.pk, message.seq, owner), created = stored, True
        message._state.adding = False
    if created:
        if owner == Owner.AGENT:
            from agent.tasks import run_turn

            # Started once the message is stored: the embedding thread would slow the store (the GIL) more than the
            # publish and the worker's hand-over, which it overlaps.
            ahead = embed_ahead and query_vectors.embed_ahead(conversation_id, client_id, message.text)
            transaction.on_commit(
                lambda: run_turn.delay(str(conversation_id), embedded_ahead=str(client_id) if ahead else "")
            )
        push(conversation_id, serialize(message), skip=connection_channel)
    return message, created


# Take the next seq under the conversation's row lock and insert the message with it, unless its client id is
# stored already or the conversation is at its limit. Either both happen or neither: no seq is used up by a message
# that was not stored. (The limit is counted as the statement starts: two connections racing at the limit may
# both get in; the locked path counts exactly.)
_RECEIVE_SQL = f"""
    WITH taken AS (
        UPDATE {Conversation._meta.db_table} SET last_seq = last_seq + 1, updated_at = %s
        WHERE id = %s AND NOT EXISTS (
            SELECT 1 FROM {Message._meta.db_table} WHERE conversation_id = %s AND client_id = %s
        ) AND (
            SELECT count(*) FROM {Message._meta.db_table}
            WHERE conversation_id = %s AND author = 'customer' AND created_at > %s
        ) < %s
        RETURNING last_seq, owner
    ), stored AS (
        INSERT INTO {{target}} SELECT {{row}} FROM taken RETURNING id
    )
    SELECT stored.id, taken.last_seq, taken.owner FROM stored, taken
"""


def _recent_customer_messages(conversation_id: Any) -> Any:
    return Message.objects.filter(
        conversation_id=conversation_id, author=Author.CUSTOMER, created_at__gt=timezone.now() - RATE_WINDOW
    )


def _receive_in_one_statement(message: Message) -> tuple[int, int, str] | None:
    """Store ``message`` with the next seq in one statement; return (id, seq, owner), or None if nothing was stored."""
    target, rows, params = insert_parts([message], expressions={"seq": "taken.last_seq"})
    sql = _RECEIVE_SQL.format(target=target, row=rows[0])
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                *(message.created_at, message.conversation_id, message.conversation_id, message.client_id),
                *(message.conversation_id, message.created_at - RATE_WINDOW, MESSAGES_PER_MINUTE),
                *params,
            ],
        )
        return cursor.fetchone()


# No savepoint when nested (the turn's finish, the services): its one caller-visible failure is an exception that
# every caller lets end its own transaction, so a savepoint would only cost two round trips.
@transaction.atomic(savepoint=False)
def message_store_reply(
    *,
    conversation_id: Any,
    author: str,
    text: str,
    citations: list[dict] | None = None,
    choices: list[dict] | None = None,
    author_user: Any = None,
) -> Message:
    """Store a message from the agent, a person or the system, with the next sequence number."""
    return Message.objects.create(
        conversation_id=conversation_id,
        seq=_next_seq(conversation_id),
        author=author,
        text=text,
        citations=citations or [],
        choices=choices or [],
        author_user=author_user,
    )


def serialize(message: Message) -> dict[str, Any]:
    author_name = {"agent": "Brewline assistant", "system": "Steward"}.get(message.author, "")
    if message.author == Author.HUMAN and message.author_user is not None:
        author_name = message.author_user.get_short_name() or message.author_user.get_username()
    return {
        "type": "message",
        "seq": message.seq,
        "author": message.author,
        "author_name": author_name,
        "client_id": str(message.client_id) if message.client_id else None,
        "text": message.text,
        "citations": [citation_frame(citation) for citation in message.citations],
        "choices": message.choices,
        "created_at": message.created_at.isoformat(),
    }


def citation_frame(citation: dict[str, Any]) -> dict[str, str]:
    """A citation as the protocol gives it: title, url, section, source (retrieval calls the title document_title)."""
    return {
        "title": str(citation.get("title") or citation.get("document_title") or ""),
        "url": str(citation.get("url") or ""),
        "section": str(citation.get("section") or ""),
        "source": str(citation.get("source") or ""),
    }


def messages_after(conversation_id: Any, last_seq: int, limit: int = 500) -> list[dict[str, Any]]:
    rows = (
        Message.objects.filter(conversation_id=conversation_id, seq__gt=last_seq)
        .select_related("author_user")
        .order_by("seq")[:limit]
    )
    return [serialize(message) for message in rows]


def push(conversation_id: Any, payload: dict[str, Any], *, skip: str = "") -> None:
    """Send a frame to every connection of the conversation but the channel ``skip`` (after commit when called inside
    a transaction)."""
    message = {"type": "conversation.frame", "frame": payload, **({"skip": skip} if skip else {})}
    transaction.on_commit(lambda: layer_call("group_send", group_name(conversation_id), message))


def layer_call(method: str, *args: Any) -> None:
    """Call the channel layer's ``method`` (send, group_send) from sync code, on a loop that keeps its connection."""
    layer = get_channel_layer()
    if _in_server_thread():
        async_to_sync(getattr(layer, method))(*args)  # runs on the server's own loop
    else:
        asyncio.run_coroutine_threadsafe(getattr(layer, method)(*args), _push_loop()).result()


# Outside an ASGI server (a Celery worker), async_to_sync runs each call on a new event loop in a new thread, and
# channels_redis opens a connection pool per event loop (RedisChannelLayer.connection), closed with the loop: a new
# Redis connection for every push, ~12 ms of a 110 ms turn in a profile (docs/benchmarks.md, "Chat latency"). Such
# a process pushes on one long-lived loop of its own instead, so the layer keeps its connection; a forked child
# (Celery prefork) starts its own.
_push_loop_state: tuple[int, asyncio.AbstractEventLoop] | None = None
_push_loop_lock = threading.Lock()


def _push_loop() -> asyncio.AbstractEventLoop:
    global _push_loop_state
    with _push_loop_lock:
        if _push_loop_state is None or _push_loop_state[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-push", daemon=True).start()
            _push_loop_state = (os.getpid(), loop)
        return _push_loop_state[1]


def _in_server_thread() -> bool:
    """Tell whether this thread runs sync code for an event loop of this process (daphne; asgiref's own test)."""
    local = SyncToAsync.threadlocal
    loop, pid = getattr(local, "main_event_loop", None), getattr(local, "main_event_loop_pid", None)
    return loop is not None and pid == os.getpid()
