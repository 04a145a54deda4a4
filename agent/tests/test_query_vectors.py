"""The question embedded where it arrives (agent/query_vectors.py): against the real Redis and the real embedder."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from agent import query_vectors
from knowledge.embeddings import embed_query, get_embedder

QUESTION = "How long does delivery to the UK take?"


def _wait_idle() -> None:
    """Wait until the process's embedding thread has finished its work."""
    assert query_vectors._busy.acquire(timeout=10)
    query_vectors._busy.release()


@pytest.fixture
def message() -> tuple[str, uuid.UUID]:
    get_embedder()  # loaded: embed_ahead starts an embedding, not the model's loading
    _wait_idle()
    return str(uuid.uuid4()), uuid.uuid4()


def test_the_vector_left_ahead_is_the_one_the_turn_would_compute(message) -> None:  # type: ignore[no-untyped-def]
    assert query_vectors.embed_ahead(*message, QUESTION)
    vector = query_vectors.take(*message)
    assert vector is not None and np.array_equal(vector, embed_query(QUESTION))
    assert query_vectors.take(*message, wait=0.01) is None  # taken: it is there once


def test_a_question_arriving_while_the_thread_is_busy_is_left_to_its_turn(message) -> None:  # type: ignore[no-untyped-def]
    assert query_vectors._busy.acquire(blocking=False)
    try:
        assert not query_vectors.embed_ahead(*message, QUESTION)
    finally:
        query_vectors._busy.release()
    assert query_vectors.take(*message, wait=0.01) is None


def test_the_first_question_only_loads_the_model(message, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loads: list[int] = []
    monkeypatch.setattr(query_vectors, "_loaded", lambda: False)
    monkeypatch.setattr(query_vectors, "get_embedder", lambda: loads.append(1))
    assert not query_vectors.embed_ahead(*message, QUESTION)
    _wait_idle()
    assert loads == [1] and query_vectors.take(*message, wait=0.01) is None


def test_it_is_off_for_the_openai_responder_and_when_switched_off(message, settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_EMBED_AHEAD = False
    assert not query_vectors.embed_ahead(*message, QUESTION)
    settings.STEWARD_EMBED_AHEAD, settings.STEWARD_RESPONDER = True, "openai"
    assert not query_vectors.embed_ahead(*message, QUESTION)


def test_take_waits_at_most_its_wait_and_refuses_what_is_not_a_vector(message) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    assert query_vectors.take(*message, wait=0.05) is None
    assert 0.04 <= time.monotonic() - started < 2
    key = query_vectors._key(*message)
    for value in (b"", b"not a vector", np.zeros(7, dtype=np.float32).tobytes()):  # b"": the web process failed
        query_vectors._client().rpush(key, value)
        assert query_vectors.take(*message, wait=0.01) is None


def test_a_failed_embedding_tells_the_turn_not_to_wait(message, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(text: str) -> np.ndarray:
        raise RuntimeError("the model is gone")

    monkeypatch.setattr(query_vectors, "embed_query", broken)
    assert query_vectors.embed_ahead(*message, QUESTION)
    started = time.monotonic()
    assert query_vectors.take(*message, wait=5) is None
    assert time.monotonic() - started < 2  # the empty value came at once: no 5 s wait
    assert query_vectors.embed_ahead(*message, QUESTION)  # the thread is free again


def test_without_redis_the_turn_embeds_the_question_itself(message, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    assert query_vectors.embed_ahead(*message, QUESTION)  # the vector cannot be left: logged, and the thread is freed
    _wait_idle()
    assert query_vectors.take(*message, wait=0.01) is None
