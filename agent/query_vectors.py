"""A customer's question embedded where it arrives, while its turn waits for a worker.

A turn's first heavy step is embedding the customer's question (~5 ms of CPU), and it comes after the web process has
stored the message and queued the turn, Celery has handed the task to a worker child and the turn has read the
conversation (~5 ms, mostly other processes' work). The web process embeds the question in the meantime, on a thread
of its own, and leaves the vector in Redis for that message; the turn takes it instead of embedding again.

It is only ever a shortcut. The turn waits for the vector at most ``WAIT`` seconds, and only when the web process said
it was computing one (``run_turn(..., embedded_ahead=client_id)``); otherwise, or when the vector is missing or
malformed, or Redis fails, the turn embeds the text itself, as it always did. The web process computes at most one
vector at a time: a question that arrives while its thread is busy (many customers at once) is embedded by the turn,
so the web process never builds a queue of embeddings.

Only the embedded responder, routing the latest message on its own, uses it (the vector of a lone text is the one
``knowledge.embeddings.embed_query`` gives the worker: same model, same single-thread session).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import redis
from django.conf import settings

from knowledge.embeddings import embed_query, get_embedder

logger = logging.getLogger(__name__)

TTL = 60  # seconds a vector nobody took stays in Redis
WAIT = 0.25  # seconds a turn waits for a vector the web process is computing


def _lower_priority() -> None:
    """Run this thread (Linux) only on a CPU nothing else of the machine's wants: SCHED_IDLE, which any other task's
    wakeup preempts at once (a niced thread still kept the message's own path waiting for a core, ~1 ms a hop)."""
    with contextlib.suppress(AttributeError, OSError):  # elsewhere, it runs at the process's priority
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))


_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="query-vector", initializer=_lower_priority)
_busy = threading.Lock()  # held while this process embeds a question
_clients: dict[tuple[int, str], redis.Redis] = {}  # one client per process (a forked child makes its own) and URL


def enabled() -> bool:
    return settings.STEWARD_RESPONDER == "embedded" and settings.STEWARD_EMBED_AHEAD


def _key(conversation_id: Any, client_id: uuid.UUID | str) -> str:
    return f"{settings.STEWARD_NAMESPACE}:query-vector:{conversation_id}:{client_id}"


def _client() -> redis.Redis:
    key = (os.getpid(), settings.REDIS_URL)
    client = _clients.get(key)
    if client is None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        _clients.clear()
        _clients[key] = client
    return client


def embed_ahead(conversation_id: Any, client_id: uuid.UUID, text: str) -> bool:
    """Start embedding ``text`` for the message (``conversation_id``, ``client_id``) unless this process is already
    embedding one; return whether it started (the turn then waits for it)."""
    if not enabled() or not _busy.acquire(blocking=False):
        return False
    loaded = _loaded()
    try:
        # The first question only loads the model (~0.3 s): its turn does not wait for that.
        _pool.submit(_embed_and_leave, _key(conversation_id, client_id), text) if loaded else _pool.submit(_load)
    except RuntimeError:  # the pool is shut down: the interpreter is exiting
        _busy.release()
        return False
    return loaded


def _loaded() -> bool:
    return get_embedder.cache_info().currsize > 0


def _load() -> None:
    try:
        get_embedder()
    except Exception:  # noqa: BLE001 - logged; turns embed their questions themselves
        logger.exception("embedding ahead: the embedder could not be loaded")
    finally:
        _busy.release()


def _embed_and_leave(key: str, text: str) -> None:
    try:
        vector = embed_query(text).astype(np.float32).tobytes()
    except Exception:  # noqa: BLE001 - the turn embeds the text itself; it is told not to wait (an empty value)
        logger.exception("embedding ahead failed")
        vector = b""
    finally:
        _busy.release()
    try:
        with _client().pipeline(transaction=False) as batch:
            batch.rpush(key, vector)
            batch.expire(key, TTL)
            batch.execute()
    except redis.RedisError as exc:
        logger.warning("embedding ahead: could not leave the vector (%s); the turn embeds it", exc)


def take(conversation_id: Any, client_id: uuid.UUID | str, *, wait: float = WAIT) -> np.ndarray | None:
    """Return the vector the web process computed for the message, waiting up to ``wait`` seconds; None when there is
    none to use (the caller embeds the text)."""
    try:
        found = _client().blpop([_key(conversation_id, client_id)], timeout=wait)
    except redis.RedisError as exc:
        logger.warning("embedding ahead: could not read the vector (%s); embedding here", exc)
        return None
    if found is None:
        logger.info("embedding ahead: no vector within %s s; embedding here", wait)
        return None
    data = found[1]
    if len(data) != settings.STEWARD_EMBEDDING_DIMENSIONS * 4:
        return None
    return np.frombuffer(data, dtype=np.float32)
