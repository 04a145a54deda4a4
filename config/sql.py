"""Fewer round trips on the chat's hot path: several statements sent together, and a model's INSERT as SQL.

A round trip to PostgreSQL costs 0.1–0.2 ms on an idle machine and 0.5–1 ms when daphne, a worker, Redis and the
database share two busy cores (docs/benchmarks.md, "Chat latency"); Django sends one per statement, plus BEGIN and
COMMIT. ``pipeline`` sends the statements executed inside it in one go (psycopg's pipeline mode) and reads every
result at its end. The statements still go through Django's cursors: they are counted by ``assertNumQueries``, seen
by ``connection.execute_wrapper`` and logged under DEBUG, and their errors are Django's (``IntegrityError``, ...).

Only for code a measured latency target needs (the chat turn, the audit chain's append); everything else uses the
ORM.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection, models, transaction


class Pipeline:
    """The statements of one ``pipeline`` block; each ``execute`` returns the cursor to read its result from once
    sent (after ``sync`` or the block)."""

    def __init__(self, sent: Any = None) -> None:
        self._sent = sent
        self._cursors: list[Any] = []

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        self._cursors.append(cursor)
        return cursor

    def sync(self) -> None:
        """Send the statements executed so far and read their results: one round trip."""
        if self._sent is not None:
            with connection.wrap_database_errors:
                self._sent.sync()

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()


@contextmanager
def pipeline() -> Iterator[Pipeline]:
    """Send the statements executed in the block together at its end; read their results (``fetchone`` …) after.

    A statement cannot use an earlier one's result (write it as one statement, e.g. a CTE); it does see its effects.
    Outside a transaction the block's statements commit together at its end; inside ``transaction.atomic`` they are
    part of it (enter the pipeline inside the atomic block: entered the other way round, psycopg spends a round
    trip on each change of autocommit). An error is raised at the end of the block (or at ``sync``) as Django's
    exception. Where libpq has no pipeline mode (before 14) the statements run one by one, with the same results.
    """
    connection.ensure_connection()
    if not psycopg.Pipeline.is_supported():
        yield Pipeline()
        return
    with connection.wrap_database_errors, connection.connection.pipeline() as sent:
        yield Pipeline(sent)  # leaving the block sends a Sync with what is queued: one round trip


@contextmanager
def transaction_pipeline() -> Iterator[Pipeline]:
    """A transaction sent as pipelines, its COMMIT with its last statements: round trips = ``sync`` calls + 1.

    Inside a caller's transaction it is simply part of it (no savepoint: an error ends the caller's transaction
    too). Django's own commit then finds the transaction committed and sends nothing; its ``on_commit`` callbacks
    run as usual, after the COMMIT.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic(savepoint=False), pipeline() as batch:
        yield batch
        if outermost:
            batch.execute("COMMIT")


Expression = str | tuple[str, Sequence[Any]]  # SQL, or SQL and its parameters


def insert_parts(
    instances: Sequence[models.Model], *, expressions: Mapping[str, Expression] | None = None
) -> tuple[str, list[str], list[Any]]:
    """Return ``(target, rows, params)`` of the INSERT Django would send for ``instances`` (one model).

    ``target`` is ``table (columns)``; ``rows`` holds one comma-separated list of placeholders per instance (for
    ``VALUES (row)`` or ``SELECT row FROM …``). Fields get their defaults, ``auto_now_add`` and database preparation
    as in ``Model.save``, and the instances' attributes are set as saved. The primary key is sent when every
    instance has one, else the database assigns it (the caller sets it from ``RETURNING``). ``expressions`` gives a
    column's value as SQL instead of a parameter (e.g. a CTE's column, or a subquery with its parameters).
    """
    expressions = expressions or {}
    model = type(instances[0])
    meta = model._meta
    with_pk = all(instance.pk is not None for instance in instances)
    fields = [field for field in meta.concrete_fields if with_pk or not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    target = f"{connection.ops.quote_name(meta.db_table)} ({columns})"
    rows: list[str] = []
    params: list[Any] = []
    for instance in instances:
        if type(instance) is not model:
            raise TypeError("insert_parts takes instances of one model")
        placeholders = []
        for field in fields:
            value = field.pre_save(instance, add=True)
            if field.column in expressions:
                expression = expressions[field.column]
                sql, expression_params = (expression, ()) if isinstance(expression, str) else expression
                placeholders.append(sql)
                params.extend(expression_params)
            else:
                placeholders.append("%s")
                params.append(field.get_db_prep_save(value, connection))
        rows.append(", ".join(placeholders))
    return target, rows, params


def insert_statement(
    instances: Sequence[models.Model],
    *,
    returning: str = "id",
    expressions: Mapping[str, Expression] | None = None,
    upsert: bool = False,
) -> tuple[str, list[Any]]:
    """Return the multi-row ``INSERT … VALUES … RETURNING returning`` of ``instances`` (see ``insert_parts``).

    With ``upsert`` (instances with their primary key), a row that exists already is updated to the instance's
    values instead: one statement for "save", whether or not it was saved before.
    """
    target, rows, params = insert_parts(instances, expressions=expressions)
    values = ", ".join(f"({row})" for row in rows)
    conflict = ""
    if upsert:
        meta = type(instances[0])._meta
        if any(instance.pk is None for instance in instances):
            raise ValueError("an upsert needs every instance's primary key")
        quote = connection.ops.quote_name
        columns = [quote(field.column) for field in meta.concrete_fields if not field.primary_key]
        updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns)
        conflict = f" ON CONFLICT ({quote(meta.pk.column)}) DO UPDATE SET {updates}"
    return f"INSERT INTO {target} VALUES {values}{conflict} RETURNING {returning}", params


def instances_from(cursor: Any, model: type[models.Model]) -> list[models.Model]:
    """Return the rows of ``cursor`` (a query of ``model``'s table, every column) as the ORM would load them."""
    by_column = {field.column: field for field in model._meta.concrete_fields}
    fields = [by_column[column.name] for column in cursor.description]
    if len(fields) != len(by_column):
        raise ValueError(f"instances_from needs every column of {model._meta.db_table}")
    converters = [(index, field.from_db_value) for index, field in enumerate(fields) if hasattr(field, "from_db_value")]
    position = {column.name: index for index, column in enumerate(cursor.description)}
    order = [position[field.column] for field in model._meta.concrete_fields]  # from_db takes the model's order
    attnames = [field.attname for field in model._meta.concrete_fields]
    instances = []
    for row in cursor.fetchall():
        values = list(row)
        for index, convert in converters:
            values[index] = convert(values[index], None, connection)
        instances.append(model.from_db(connection.alias, attnames, [values[index] for index in order]))
    return instances
