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
from django.db import connection, models


class Pipeline:
    """The statements of one ``pipeline`` block; each ``execute`` returns the cursor to read its result from after
    the block."""

    def __init__(self) -> None:
        self._cursors: list[Any] = []

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        self._cursors.append(cursor)
        return cursor

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()


@contextmanager
def pipeline() -> Iterator[Pipeline]:
    """Send the statements executed in the block together; read their results (``fetchone`` …) after it.

    A statement cannot use an earlier one's result (write it as one statement, e.g. a CTE); it does see its effects.
    Outside a transaction the block's statements commit together at its end; inside ``transaction.atomic`` they are
    part of it. An error is raised at the end of the block, as Django's exception. Where libpq has no pipeline mode
    (before 14) the statements simply run one by one, with the same results.
    """
    batch = Pipeline()
    connection.ensure_connection()
    if not psycopg.Pipeline.is_supported():
        yield batch
        return
    with connection.wrap_database_errors, connection.connection.pipeline() as sent:
        yield batch
        sent.sync()  # send everything (and BEGIN, in a transaction) and read every result: one round trip


def insert_parts(
    instances: Sequence[models.Model], *, expressions: Mapping[str, str] | None = None
) -> tuple[str, list[str], list[Any]]:
    """Return ``(target, rows, params)`` of the INSERT Django would send for ``instances`` (one model).

    ``target`` is ``table (columns)``; ``rows`` holds one comma-separated list of placeholders per instance (for
    ``VALUES (row)`` or ``SELECT row FROM …``). Fields get their defaults, ``auto_now_add`` and database preparation
    as in ``Model.save``, and the instances' attributes are set as saved. The primary key is sent when every
    instance has one, else the database assigns it (the caller sets it from ``RETURNING``). ``expressions`` gives a
    column's value as SQL instead of a parameter (e.g. a CTE's column).
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
                placeholders.append(expressions[field.column])
            else:
                placeholders.append("%s")
                params.append(field.get_db_prep_save(value, connection))
        rows.append(", ".join(placeholders))
    return target, rows, params


def insert_statement(instances: Sequence[models.Model], *, returning: str = "id") -> tuple[str, list[Any]]:
    """Return the multi-row ``INSERT … VALUES … RETURNING returning`` of ``instances`` (see ``insert_parts``)."""
    target, rows, params = insert_parts(instances)
    values = ", ".join(f"({row})" for row in rows)
    return f"INSERT INTO {target} VALUES {values} RETURNING {returning}", params


def instances_from(cursor: Any, model: type[models.Model]) -> list[models.Model]:
    """Return the rows of ``cursor`` (a query of ``model``'s table, every column) as the ORM would load them."""
    by_column = {field.column: field for field in model._meta.concrete_fields}
    fields = [by_column[column.name] for column in cursor.description]
    if len(fields) != len(by_column):
        raise ValueError(f"instances_from needs every column of {model._meta.db_table}")
    converters = [(index, field.from_db_value) for index, field in enumerate(fields) if hasattr(field, "from_db_value")]
    order = [fields.index(field) for field in model._meta.concrete_fields]  # from_db takes the model's field order
    attnames = [field.attname for field in model._meta.concrete_fields]
    instances = []
    for row in cursor.fetchall():
        values = list(row)
        for index, convert in converters:
            values[index] = convert(values[index], None, connection)
        instances.append(model.from_db(connection.alias, attnames, [values[index] for index in order]))
    return instances
