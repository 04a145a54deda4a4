"""config/sql.py: statements sent together, and models inserted and loaded from SQL as the ORM would."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from agent.models import Conversation, Message, TurnTrace
from config.sql import insert_parts, insert_statement, instances_from, pipeline, transaction_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_pipeline_sends_its_statements_together_and_each_sees_the_ones_before() -> None:
    conversation = Conversation.objects.create()
    with pipeline() as batch:
        batch.execute("UPDATE agent_conversation SET last_seq = 7 WHERE id = %s", [conversation.pk])
        read = batch.execute("SELECT last_seq FROM agent_conversation WHERE id = %s", [conversation.pk])
        backend = batch.execute("SELECT pg_backend_pid()")
        assert connection.connection._pipeline is not None  # sent, not yet read
    assert read.fetchone() == (7,)
    assert backend.fetchone()[0] > 0
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 7  # committed at the end of the block


def test_an_error_in_a_pipeline_is_djangos_and_commits_none_of_its_statements() -> None:
    conversation = Conversation.objects.create()
    Message.objects.create(conversation=conversation, seq=1, author="customer", text="hi")
    with pytest.raises(IntegrityError), pipeline() as batch:
        batch.execute("UPDATE agent_conversation SET last_seq = 9 WHERE id = %s", [conversation.pk])
        batch.execute(*insert_statement([Message(conversation=conversation, seq=1, author="agent", text="x")]))
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0
    assert Message.objects.count() == 1  # and the connection works on


def test_inside_a_transaction_a_pipeline_is_part_of_it() -> None:
    conversation = Conversation.objects.create()
    with pytest.raises(RuntimeError), transaction.atomic():
        with pipeline() as batch:
            batch.execute("UPDATE agent_conversation SET last_seq = 3 WHERE id = %s", [conversation.pk])
        raise RuntimeError("roll back")
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0


def test_insert_parts_apply_defaults_auto_now_add_and_expressions() -> None:
    conversation = Conversation.objects.create()
    message = Message(conversation=conversation, author="agent", text="hello", citations=[{"url": "https://x"}])
    target, rows, params = insert_parts([message], expressions={"seq": "41 + 1"})
    assert target.startswith('"agent_message" (') and '"id"' not in target  # the database assigns the id
    assert message.created_at is not None  # auto_now_add, as save() sets it
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {target} VALUES ({rows[0]}) RETURNING id", params)
        pk = cursor.fetchone()[0]
    stored = Message.objects.get(pk=pk)
    assert (stored.seq, stored.text, stored.citations, stored.choices, stored.handled) == (
        42,
        "hello",
        [{"url": "https://x"}],
        [],
        False,
    )
    assert stored.created_at == message.created_at


def test_instances_from_load_every_column_in_the_models_order_with_its_conversions() -> None:
    conversation = Conversation.objects.create(context={"known_slots": {"order_id": "BL-1"}})
    with connection.cursor() as cursor:
        # Columns in another order than the model's: instances_from maps them by name.
        columns = [field.column for field in Conversation._meta.concrete_fields][::-1]
        cursor.execute(f"SELECT {', '.join(columns)} FROM agent_conversation WHERE id = %s", [conversation.pk])
        (loaded,) = instances_from(cursor, Conversation)
    assert loaded.pk == conversation.pk and isinstance(loaded.pk, uuid.UUID)
    assert loaded.context == {"known_slots": {"order_id": "BL-1"}}
    assert loaded.created_at == conversation.created_at and not loaded._state.adding
    with connection.cursor() as cursor, pytest.raises(ValueError, match="every column"):
        cursor.execute("SELECT id FROM agent_conversation")
        instances_from(cursor, Conversation)


def test_a_transaction_pipeline_commits_with_its_last_statements_then_runs_on_commit_callbacks() -> None:
    conversation = Conversation.objects.create()
    seen: list[int] = []
    with transaction_pipeline() as batch:
        batch.execute("UPDATE agent_conversation SET last_seq = 1 WHERE id = %s", [conversation.pk])
        batch.sync()
        batch.execute("UPDATE agent_conversation SET last_seq = last_seq + 1 WHERE id = %s", [conversation.pk])
        transaction.on_commit(lambda: seen.append(Conversation.objects.get(pk=conversation.pk).last_seq))
    assert seen == [2] and connection.get_autocommit() and not connection.in_atomic_block


def test_a_failed_transaction_pipeline_commits_nothing() -> None:
    conversation = Conversation.objects.create()
    Message.objects.create(conversation=conversation, seq=1, author="customer", text="hi")
    seen: list[str] = []
    with pytest.raises(IntegrityError), transaction_pipeline() as batch:
        batch.execute("UPDATE agent_conversation SET last_seq = 5 WHERE id = %s", [conversation.pk])
        batch.sync()
        batch.execute(*insert_statement([Message(conversation=conversation, seq=1, author="agent", text="x")]))
        transaction.on_commit(lambda: seen.append("committed"))
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0 and seen == []


def test_inside_a_callers_transaction_a_transaction_pipeline_leaves_the_commit_to_it() -> None:
    conversation = Conversation.objects.create()
    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction_pipeline() as batch:
            batch.execute("UPDATE agent_conversation SET last_seq = 4 WHERE id = %s", [conversation.pk])
        raise RuntimeError("the caller rolls back")
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0


def test_an_upsert_inserts_or_updates_by_primary_key() -> None:
    conversation = Conversation.objects.create()
    trace = TurnTrace(conversation=conversation, intent="first")
    with connection.cursor() as cursor:
        cursor.execute(*insert_statement([trace]))
        trace.pk = cursor.fetchone()[0]
        trace.intent = "second"
        cursor.execute(*insert_statement([trace], upsert=True))
    assert list(TurnTrace.objects.values_list("pk", "intent")) == [(trace.pk, "second")]
    with pytest.raises(ValueError, match="primary key"):
        insert_statement([TurnTrace(conversation=conversation)], upsert=True)
