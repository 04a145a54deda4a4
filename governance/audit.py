"""The audit log: append-only, hash-chained evidence of what was read, decided, changed and done.

Every governed write calls ``audit_record`` inside its own transaction (STYLE.md rule 1), so the record commits or
rolls back with the change it describes.

Chain: each record's ``hash`` is SHA-256 over its canonical JSON, which includes the previous record's hash.
Writers serialise on a transaction-scoped advisory lock taken just before reading the tail, so two transactions
never append after the same record; the unique ``prev_hash`` constraint makes a fork impossible even for a writer
that skipped the lock. The lock is held until the caller's transaction ends: keep governed transactions short and
never call outside systems inside them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, models, transaction
from django.utils import timezone

from config.sql import Pipeline, pipeline
from governance.models import AuditRecord, EventType
from governance.roles import ActorKind, Principal

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key for the audit chain ("steward:audit" as a signed 64-bit number).
AUDIT_LOCK_KEY = int.from_bytes(hashlib.sha256(b"steward:audit").digest()[:8], "big", signed=True)

Actor = AbstractBaseUser | Principal | None

# The fields a record's hash covers, in a fixed order (everything but the hash itself and the primary key).
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_kind",
    "actor_user_id",
    "actor_label",
    "event_type",
    "subject_type",
    "subject_id",
    "conversation_id",
    "turn_id",
    "decision",
    "reason",
    "fields",
    "changes",
    "sources",
    "data",
    "config_version",
    "prompt_version",
    "prev_hash",
)


def _jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data (Decimals, dates and UUIDs become strings; NUL characters go: jsonb refuses
    them), exactly as it will read back from the database."""
    text = json.dumps(value, default=str, ensure_ascii=False).replace("\\u0000", "")
    return json.loads(text)


def _actor_fields(actor: Actor) -> dict[str, Any]:
    if actor is None:
        return {"actor_kind": ActorKind.SYSTEM, "actor_user_id": None, "actor_label": "system"}
    if isinstance(actor, Principal):
        return {"actor_kind": actor.kind, "actor_user_id": actor.user_id, "actor_label": actor.label[:200]}
    return {"actor_kind": ActorKind.USER, "actor_user_id": actor.pk, "actor_label": actor.get_username()[:200]}


def record_hash(values: dict[str, Any]) -> str:
    """Return the SHA-256 of a record's hashed fields as canonical JSON."""
    canonical = {name: values[name] for name in HASHED_FIELDS}
    created_at = canonical["created_at"]
    if isinstance(created_at, datetime):
        canonical["created_at"] = created_at.astimezone(UTC).isoformat()
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def audit_record(*, actor: Actor, event_type: EventType | str, **details: Any) -> AuditRecord:
    """Append one record to the audit chain, inside the caller's transaction (``details``: see ``audit_values``).

    Two round trips: the chain's lock and its tail together (``audit_tail_queue``), then the record.
    """
    values = audit_values(actor=actor, event_type=event_type, **details)
    with transaction.atomic(savepoint=False):
        with pipeline() as batch:
            tail = audit_tail_queue(batch)
        record = audit_chained(values, tail)
        record.save(force_insert=True)
        return record


def audit_values(
    *,
    actor: Actor,
    event_type: EventType | str,
    subject: models.Model | None = None,
    subject_type: str = "",
    subject_id: str = "",
    conversation_id: str = "",
    turn_id: str = "",
    decision: str = "",
    reason: str = "",
    fields: Iterable[str] = (),
    changes: dict[str, Any] | None = None,
    sources: Iterable[Any] = (),
    data: dict[str, Any] | None = None,
    config_version: str = "",
    prompt_version: str = "",
) -> dict[str, Any]:
    """Return a record's values before it is chained (``audit_record``'s arguments, validated and as stored)."""
    if event_type not in EventType.values:
        raise ValueError(f"Unknown audit event type {event_type!r}.")
    if subject is not None:
        subject_type = subject_type or subject._meta.label_lower
        subject_id = subject_id or str(subject.pk)
    return {
        **_actor_fields(actor),
        "created_at": timezone.now(),
        "event_type": str(event_type),
        "subject_type": subject_type[:80],
        "subject_id": str(subject_id)[:200],
        "conversation_id": str(conversation_id or "")[:64],
        "turn_id": str(turn_id or "")[:64],
        "decision": decision[:32],
        "reason": reason,
        "fields": _jsonable(list(fields)),
        "changes": _jsonable(changes or {}),
        "sources": _jsonable(list(sources)),
        "data": _jsonable(data or {}),
        "config_version": config_version[:64],
        "prompt_version": prompt_version[:64],
    }


def audit_tail_queue(batch: Pipeline) -> Any:
    """Queue, in the caller's transaction, the chain's lock and then the read of its tail; return the tail's cursor.

    The lock (transaction-scoped) comes first and the tail is read by a later statement, so it sees every record
    committed before the lock was granted: one pipeline, one round trip for both.
    """
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("The audit chain is appended inside a transaction.")
    batch.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])
    return batch.execute(_TAIL_SQL)


_TAIL_SQL = f"SELECT seq, hash FROM {AuditRecord._meta.db_table} ORDER BY seq DESC LIMIT 1"


def audit_chained(values: dict[str, Any], tail: Any) -> AuditRecord:
    """Return the (unsaved) record of ``values`` appended after the tail read by ``audit_tail_queue``'s cursor."""
    row = tail.fetchone()
    chained = {**values, "seq": row[0] + 1 if row else 1, "prev_hash": row[1] if row else GENESIS_HASH}
    chained["hash"] = record_hash(chained)
    return AuditRecord(**chained)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str = ""


def audit_verify(*, chunk_size: int = 2000, through_seq: int | None = None) -> ChainReport:
    """Walk the chain in order; name the first record whose content, link or position is wrong.

    A chain pruned by retention starts after #1. It verifies when a later record in the chain is a retention record
    that names the pruned prefix and the hash it ended with (``pruned_through_seq`` == first seq - 1, ``anchor_hash``
    == the first record's ``prev_hash``); otherwise the first record is reported: records are missing.

    With ``through_seq``, check only the records up to that one, as a stretch: positions, links and hashes, but not
    whether a pruned prefix is accounted for (the retention record that does so may come later). Retention uses it
    before pruning.
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    unaccounted: dict[str, Any] | None = None  # the first record of a pruned chain, until a retention record names it
    records = AuditRecord.objects.order_by("seq")
    if through_seq is not None:
        records = records.filter(seq__lte=through_seq)
    for row in records.values(*HASHED_FIELDS, "hash").iterator(chunk_size=chunk_size):
        seq = row["seq"]
        if checked == 0 and seq > 1:
            unaccounted = row if through_seq is None else None
            expected_seq, expected_prev = seq, row["prev_hash"]
        problem = _link_problem(row, expected_seq, expected_prev)
        if problem:
            return ChainReport(False, checked, seq, problem)
        if unaccounted is not None and _accounts_for_prefix(row, unaccounted):
            unaccounted = None
        expected_prev = row["hash"]
        expected_seq = seq + 1
        checked += 1
    return _missing_prefix(unaccounted) if unaccounted else ChainReport(True, checked)


def _link_problem(row: dict[str, Any], expected_seq: int, expected_prev: str) -> str:
    seq = row["seq"]
    if seq != expected_seq:
        return f"record #{seq} follows #{expected_seq - 1}: records are missing"
    if row["prev_hash"] != expected_prev:
        return f"record #{seq} does not link to the record before it"
    if record_hash(row) != row["hash"]:
        return f"record #{seq} was altered: its content does not match its hash"
    return ""


def _accounts_for_prefix(row: dict[str, Any], first: dict[str, Any]) -> bool:
    """Tell whether ``row`` is the retention record that pruned everything before ``first``."""
    data = row["data"] if isinstance(row["data"], dict) else {}
    return (
        row["event_type"] == EventType.RETENTION_APPLIED
        and data.get("pruned_through_seq") == first["seq"] - 1
        and data.get("anchor_hash") == first["prev_hash"]
    )


def _missing_prefix(first: dict[str, Any]) -> ChainReport:
    seq = first["seq"]
    return ChainReport(
        False,
        0,
        seq,
        f"record #{seq} is the first: records #1 to #{seq - 1} are missing and no retention record accounts for them",
    )


def audit_export(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    conversation_id: str = "",
    records: models.QuerySet[AuditRecord] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield records as JSON-ready dicts, in chain order, filtered by time range and/or conversation (or from an
    already-filtered queryset, e.g. the admin's)."""
    records = AuditRecord.objects.all() if records is None else records
    if since is not None:
        records = records.filter(created_at__gte=since)
    if until is not None:
        records = records.filter(created_at__lt=until)
    if conversation_id:
        records = records.filter(conversation_id=conversation_id)
    for row in records.order_by("seq").values(*HASHED_FIELDS, "hash").iterator(chunk_size=2000):
        row["created_at"] = row["created_at"].astimezone(UTC).isoformat()
        yield row


def audit_json_line(row: dict[str, Any]) -> str:
    """Return one exported record as a JSON Lines line (the format of ``manage.py audit_export``)."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
