"""The audit log is append-only and tamper-evident, also under concurrent writers."""

from __future__ import annotations

import json
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from governance.audit import GENESIS_HASH, audit_record, audit_verify
from governance.models import AuditRecord, EventType
from governance.roles import Principal


def _write(n: int, **kwargs: object) -> list[AuditRecord]:
    records = []
    for i in range(n):
        with transaction.atomic():
            records.append(audit_record(actor=None, event_type=EventType.SYSTEM, reason=f"event {i}", **kwargs))
    return records


@pytest.mark.django_db
def test_records_form_a_chain_from_the_genesis_hash(support_admin) -> None:  # type: ignore[no-untyped-def]
    first, second = _write(2)
    third = audit_record(
        actor=support_admin,
        event_type=EventType.CONFIG_CHANGED,
        subject=support_admin,
        changes={"email": {"old": "a@x", "new": "b@x"}},
    )
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert third.actor_label == "ada_admin" and third.subject_type == "auth.user"
    assert audit_verify().ok and audit_verify().checked == 3


@pytest.mark.django_db
def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown audit event type"):
        audit_record(actor=None, event_type="made.up")


@pytest.mark.django_db
def test_the_database_refuses_update_and_delete() -> None:
    (record,) = _write(1)
    for statement in (
        f"UPDATE governance_auditrecord SET reason = 'edited' WHERE id = {record.pk}",
        f"DELETE FROM governance_auditrecord WHERE id = {record.pk}",
    ):
        with (
            pytest.raises(DatabaseError, match="audit records are append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=record.pk).update(reason="edited")
    assert AuditRecord.objects.get(pk=record.pk).reason == "event 0"


def _tamper(sql: str) -> None:
    """Change a row behind the application's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditrecord DISABLE TRIGGER governance_audit_append_only")
        cursor.execute(sql)
        cursor.execute("ALTER TABLE governance_auditrecord ENABLE TRIGGER governance_audit_append_only")


@pytest.mark.django_db
def test_verify_names_exactly_the_altered_record() -> None:
    records = _write(6)
    _tamper(f"UPDATE governance_auditrecord SET reason = 'nothing happened' WHERE seq = {records[3].seq}")
    report = audit_verify()
    assert not report.ok
    assert report.first_broken_seq == records[3].seq
    assert report.checked == 3
    assert "altered" in report.problem
    with pytest.raises(CommandError, match=f"Audit chain broken at record #{records[3].seq}: record #4 was altered"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_verify_names_a_deleted_record_and_a_relinked_one() -> None:
    records = _write(5)
    _tamper(f"DELETE FROM governance_auditrecord WHERE seq = {records[2].seq}")
    report = audit_verify()
    assert (report.ok, report.first_broken_seq) == (False, records[3].seq)
    assert "missing" in report.problem


@pytest.mark.django_db
def test_verify_catches_a_recomputed_hash_that_breaks_the_link() -> None:
    records = _write(4)
    # Rewrite record 2's content AND its hash: record 3 no longer links to it.
    from governance.audit import HASHED_FIELDS, record_hash

    row = AuditRecord.objects.filter(seq=records[1].seq).values(*HASHED_FIELDS).get()
    row["reason"] = "rewritten"
    _tamper(
        f"UPDATE governance_auditrecord SET reason = 'rewritten', hash = '{record_hash(row)}' "
        f"WHERE seq = {records[1].seq}"
    )
    report = audit_verify()
    assert (report.ok, report.first_broken_seq) == (False, records[2].seq)
    assert "does not link" in report.problem


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain() -> None:
    writers, per_writer = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(worker: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    audit_record(
                        actor=Principal.system(f"writer-{worker}"), event_type=EventType.SYSTEM, reason=f"{worker}:{i}"
                    )
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(AuditRecord.objects.values_list("seq", flat=True)) == list(range(1, writers * per_writer + 1))
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_record_rolls_back_with_the_change_it_describes() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, event_type=EventType.SYSTEM, reason="doomed")
        raise RuntimeError("the governed change failed")
    assert not AuditRecord.objects.exists()
    (record,) = _write(1)
    assert record.seq == 1


@pytest.mark.django_db
def test_export_writes_json_lines_for_a_conversation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write(2, conversation_id="conv-a")
    _write(1, conversation_id="conv-b")
    out = tmp_path / "evidence.jsonl"
    call_command("audit_export", "--conversation", "conv-a", "--output", str(out), stderr=StringIO())
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["conversation_id"] for line in lines] == ["conv-a", "conv-a"]
    assert {"seq", "hash", "prev_hash", "created_at", "event_type"} <= set(lines[0])


@pytest.mark.django_db
def test_export_by_time_range_and_bad_dates() -> None:
    _write(3)
    out = StringIO()
    call_command("audit_export", "--since", "2000-01-01", "--until", "2999-01-01", stdout=out)
    assert len(out.getvalue().splitlines()) == 3
    out = StringIO()
    call_command("audit_export", "--until", "2000-01-01", stdout=out)
    assert out.getvalue() == ""
    with pytest.raises(CommandError, match="--since must be a date"):
        call_command("audit_export", "--since", "last tuesday")
    with pytest.raises(CommandError, match="--since must be before --until"):
        call_command("audit_export", "--since", "2026-02-01", "--until", "2026-01-01")
