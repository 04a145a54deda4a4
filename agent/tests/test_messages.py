"""Storing a customer's message from the chat: one statement on the hot path, the same answers as the locked path."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from agent import messages
from agent.messages import conversation_start, message_receive_customer
from agent.models import Conversation, Message, Owner

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The conversations a turn was queued for (the Celery task's ``delay``; with the client id whose question the
    web process embeds ahead, when it does), and no channel-layer pushes."""
    from agent import tasks

    calls: list = []  # type: ignore[type-arg]

    def delay(conversation_id: str, embedded_ahead: str = "") -> None:
        calls.append((conversation_id, embedded_ahead) if embedded_ahead else conversation_id)

    monkeypatch.setattr(tasks.run_turn, "delay", delay)
    monkeypatch.setattr(messages, "push", lambda conversation_id, payload, skip="": None)
    return calls


def test_a_new_message_is_stored_with_the_next_seq_in_one_statement_and_queues_a_turn(
    queued, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    with django_assert_num_queries(1):  # no BEGIN/COMMIT either: it commits by itself
        first, created = message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="hi")
    second, _ = message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="x" * 5000)

    assert created and (first.seq, second.seq) == (1, 2)
    stored = Message.objects.get(pk=second.pk)
    assert (stored.seq, stored.author, stored.handled, len(stored.text)) == (2, "customer", False, messages.MAX_TEXT)
    assert stored.client_id == second.client_id and stored.created_at == second.created_at
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 2
    assert queued == [str(conversation.id)] * 2


def test_a_new_message_is_embedded_ahead_and_its_turn_told_to_take_the_vector(queued) -> None:  # type: ignore[no-untyped-def]
    from agent import query_vectors
    from knowledge.embeddings import embed_query, get_embedder

    get_embedder()  # loaded (the web process's first question only loads the model)
    conversation = conversation_start()
    client_id = uuid.uuid4()
    message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="Hi there", embed_ahead=True)
    message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="Hi there", embed_ahead=True)
    assert queued == [(str(conversation.id), str(client_id))]  # the resend is neither queued nor embedded again
    assert np.array_equal(query_vectors.take(conversation.id, client_id), embed_query("Hi there"))

    Conversation.objects.filter(pk=conversation.pk).update(owner=Owner.WAITING)  # no turn: nothing to embed
    other = uuid.uuid4()
    message_receive_customer(conversation_id=conversation.id, client_id=other, text="Hello?", embed_ahead=True)
    assert query_vectors.take(conversation.id, other, wait=0.3) is None


def test_a_resent_client_id_returns_the_stored_message_and_uses_no_seq(queued) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    client_id = uuid.uuid4()
    first, _ = message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="hello")
    again, created = message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="hello?")

    assert not created and again.pk == first.pk and again.text == "hello"
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 1
    assert queued == [str(conversation.id)]
    nxt, _ = message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="next")
    assert nxt.seq == 2


def test_a_message_to_a_conversation_with_a_person_is_stored_but_queues_no_turn(queued) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    Conversation.objects.filter(pk=conversation.pk).update(owner=Owner.WAITING)
    message, created = message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="hi")
    assert created and message.seq == 1 and queued == []


def test_an_unknown_conversation_raises_and_stores_nothing(queued) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conversation.DoesNotExist):
        message_receive_customer(conversation_id=uuid.uuid4(), client_id=uuid.uuid4(), text="hi")
    assert not Message.objects.exists() and queued == []


def test_inside_a_transaction_a_resend_stored_meanwhile_leaves_it_usable(queued) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    client_id = uuid.uuid4()
    message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="hi")
    with transaction.atomic():
        again, created = message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="hi")
        assert not created
        assert Message.objects.count() == 1  # the caller's transaction goes on


def test_a_concurrent_resend_that_wins_the_lock_is_returned_without_a_gap(queued) -> None:  # type: ignore[no-untyped-def]
    """The same client id stored by another connection while this statement waits for the row lock: the unique
    constraint rolls the statement back (its seq with it) and the locked path returns the other one's message."""
    conversation = conversation_start()
    client_id = uuid.uuid4()
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def other_connection() -> None:
        try:
            with transaction.atomic():
                outcome["other"] = messages._store_customer(
                    conversation_id=conversation.id, client_id=client_id, text="hi"
                )[0]
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    def this_connection() -> None:
        try:
            outcome["this"] = message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="hi")
        finally:
            connection.close()

    other = threading.Thread(target=other_connection)
    other.start()
    assert holding.wait(10)
    this = threading.Thread(target=this_connection)
    this.start()
    this.join(0.5)
    assert this.is_alive()  # waiting for the conversation's row lock
    release.set()
    other.join(10)
    this.join(10)

    message, created = outcome["this"]
    assert not created and message.pk == outcome["other"].pk
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 1
    assert list(Message.objects.values_list("seq", flat=True)) == [1]


def test_a_conversation_takes_twenty_new_messages_a_minute_and_answers_resends_beyond(queued) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    ids = [uuid.uuid4() for _ in range(messages.MESSAGES_PER_MINUTE)]
    for client_id in ids:
        message_receive_customer(conversation_id=conversation.id, client_id=client_id, text="hi")

    with pytest.raises(messages.MessageRateLimited):
        message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="one too many")
    again, created = message_receive_customer(conversation_id=conversation.id, client_id=ids[0], text="hi")
    assert not created and again.seq == 1  # a resend of a stored message is still acknowledged
    assert Conversation.objects.get(pk=conversation.pk).last_seq == messages.MESSAGES_PER_MINUTE  # no seq used

    # The window slides: messages older than a minute no longer count.
    Message.objects.filter(conversation=conversation, seq__lte=5).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    message, created = message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="ok")
    assert created and message.seq == messages.MESSAGES_PER_MINUTE + 1


def test_the_limit_holds_on_the_locked_path_too(queued) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start()
    for _ in range(messages.MESSAGES_PER_MINUTE):
        message_receive_customer(conversation_id=conversation.id, client_id=uuid.uuid4(), text="hi")
    with pytest.raises(messages.MessageRateLimited), transaction.atomic():
        messages._store_customer(
            conversation_id=conversation.id, client_id=uuid.uuid4(), text="x", limit=messages.MESSAGES_PER_MINUTE
        )
    assert Conversation.objects.get(pk=conversation.pk).last_seq == messages.MESSAGES_PER_MINUTE
