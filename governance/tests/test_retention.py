"""Retention rules are applied with evidence; audit evidence is pruned as a prefix and the chain still verifies."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from governance.audit import audit_record, audit_verify
from governance.models import ApprovalRequest, AuditRecord, DataClass, EventType, RetentionRule
from governance.retention import RETENTION_HANDLERS, OutcomeStatus, retention_apply
from governance.tests.factories import ApprovalRequestFactory


def _write(n: int) -> list[AuditRecord]:
    records = []
    for i in range(n):
        with transaction.atomic():
            records.append(audit_record(actor=None, event_type=EventType.SYSTEM, reason=f"event {i}"))
    return records


def _tamper(sql: str) -> None:
    """Change rows behind the application's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditrecord DISABLE TRIGGER governance_audit_append_only")
        cursor.execute(sql)
        cursor.execute("ALTER TABLE governance_auditrecord ENABLE TRIGGER governance_audit_append_only")


def _audit_rule(days: int = 365, action: str = "delete") -> RetentionRule:
    return RetentionRule.objects.create(data_class=DataClass.AUDIT_EVIDENCE, days=days, action=action)


def _now_for_cutoff(cutoff: datetime, days: int = 365) -> datetime:
    """The moment at which a rule of ``days`` days has ``cutoff`` as its cutoff."""
    return cutoff + timedelta(days=days)


# --- Rules and handlers ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_data_class_without_a_handler_is_reported_and_is_not_an_error() -> None:
    rule = RetentionRule.objects.create(data_class=DataClass.TRANSCRIPTS, days=30, action="mask")
    now = timezone.now()

    (outcome,) = retention_apply(now=now)

    assert outcome.status == OutcomeStatus.NO_HANDLER
    assert outcome.note == "no handler registered yet"
    assert outcome.cutoff == now - timedelta(days=30)
    rule.refresh_from_db()
    assert rule.last_applied_at is None
    assert not AuditRecord.objects.exists()


@pytest.mark.django_db
def test_a_registered_handler_gets_the_cutoff_and_its_count_is_audited_with_the_rule(  # type: ignore[no-untyped-def]
    monkeypatch, support_admin
) -> None:
    old, recent = ApprovalRequestFactory(), ApprovalRequestFactory()
    now = timezone.now()
    ApprovalRequest.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=100))
    calls = []

    def delete_old_requests(cutoff: datetime, action: str) -> int:
        calls.append((cutoff, action))
        deleted, _ = ApprovalRequest.objects.filter(created_at__lt=cutoff).delete()
        return deleted

    monkeypatch.setitem(RETENTION_HANDLERS, DataClass.ANALYTICS_EVENTS, delete_old_requests)
    rule = RetentionRule.objects.create(data_class=DataClass.ANALYTICS_EVENTS, days=90, action="delete")

    (outcome,) = retention_apply(actor=support_admin, now=now)

    cutoff = now - timedelta(days=90)
    assert calls == [(cutoff, "delete")]
    assert (outcome.status, outcome.count) == (OutcomeStatus.APPLIED, 1)
    assert list(ApprovalRequest.objects.values_list("pk", flat=True)) == [recent.pk]
    rule.refresh_from_db()
    assert rule.last_applied_at == now
    record = AuditRecord.objects.get()
    assert (record.event_type, record.decision, record.actor_label) == (
        EventType.RETENTION_APPLIED,
        "applied",
        "ada_admin",
    )
    assert (record.subject_type, record.subject_id) == ("governance.retentionrule", str(rule.pk))
    assert record.data == {
        "data_class": "analytics_events",
        "action": "delete",
        "days": 90,
        "cutoff": cutoff.isoformat(),
        "count": 1,
    }


@pytest.mark.django_db
def test_a_failing_handler_leaves_the_data_the_rule_and_the_audit_log_as_they_were(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ApprovalRequestFactory()

    def delete_then_fail(cutoff: datetime, action: str) -> int:
        ApprovalRequest.objects.all().delete()
        raise RuntimeError("the disk is full")

    monkeypatch.setitem(RETENTION_HANDLERS, DataClass.CRM_VALUES, delete_then_fail)
    rule = RetentionRule.objects.create(data_class=DataClass.CRM_VALUES, days=1, action="delete")

    with pytest.raises(RuntimeError, match="the disk is full"):
        retention_apply(now=timezone.now() + timedelta(days=5))

    assert ApprovalRequest.objects.count() == 1
    rule.refresh_from_db()
    assert rule.last_applied_at is None
    assert not AuditRecord.objects.exists()


@pytest.mark.django_db
def test_a_disabled_rule_is_not_applied(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(RETENTION_HANDLERS, DataClass.CRM_VALUES, lambda cutoff, action: pytest.fail("ran"))
    RetentionRule.objects.create(data_class=DataClass.CRM_VALUES, days=1, action="delete", enabled=False)
    assert retention_apply() == []


@pytest.mark.django_db
def test_the_daily_task_applies_the_rules_and_is_on_the_beat_schedule() -> None:
    from config.celery import app
    from governance.tasks import retention_apply_task

    RetentionRule.objects.create(data_class=DataClass.TRANSCRIPTS, days=30, action="mask")
    (outcome,) = retention_apply_task()
    assert (outcome["data_class"], outcome["status"]) == ("transcripts", "no_handler")
    entry = app.conf.beat_schedule["retention-apply"]
    assert entry["task"] == retention_apply_task.name == "governance.retention_apply"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {15})


# --- Audit evidence ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pruning_old_audit_records_keeps_the_chain_verifiable() -> None:
    records = _write(6)
    _audit_rule()

    # Records #1-#3 were created before the cutoff.
    (outcome,) = retention_apply(now=_now_for_cutoff(records[3].created_at))

    assert (outcome.status, outcome.count) == (OutcomeStatus.APPLIED, 3)
    assert list(AuditRecord.objects.values_list("seq", flat=True)) == [4, 5, 6, 7]
    retention = AuditRecord.objects.get(seq=7)
    assert retention.event_type == EventType.RETENTION_APPLIED
    assert retention.data["pruned_through_seq"] == 3
    assert retention.data["anchor_hash"] == records[2].hash
    assert retention.data["count"] == 3
    report = audit_verify()
    assert (report.ok, report.checked) == (True, 4)
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "Audit chain intact: 4 records." in out.getvalue()


@pytest.mark.django_db
def test_pruning_again_moves_the_anchor_and_may_prune_the_earlier_retention_record() -> None:
    records = _write(4)
    _audit_rule()
    retention_apply(now=_now_for_cutoff(records[2].created_at))  # prunes #1-#2, writes #5
    later = _write(2)  # #6, #7

    (outcome,) = retention_apply(now=_now_for_cutoff(later[1].created_at))  # prunes #3-#6, writes #8

    assert outcome.count == 4
    assert list(AuditRecord.objects.values_list("seq", flat=True)) == [7, 8]
    assert AuditRecord.objects.get(seq=8).data["pruned_through_seq"] == 6
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_newest_record_is_never_pruned() -> None:
    records = _write(3)
    _audit_rule()

    (outcome,) = retention_apply(now=timezone.now() + timedelta(days=400))

    assert outcome.count == 2
    assert list(AuditRecord.objects.values_list("seq", flat=True)) == [3, 4]
    assert AuditRecord.objects.get(seq=4).prev_hash == records[2].hash
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_run_with_nothing_due_prunes_nothing_and_says_so() -> None:
    _write(3)
    _audit_rule()
    (outcome,) = retention_apply()
    assert outcome.count == 0
    assert AuditRecord.objects.count() == 4
    assert "pruned_through_seq" not in AuditRecord.objects.get(seq=4).data
    assert audit_verify().ok


@pytest.mark.django_db
def test_audit_evidence_cannot_be_masked() -> None:
    _write(3)
    rule = _audit_rule(action="mask")

    (outcome,) = retention_apply(now=timezone.now() + timedelta(days=400))

    assert outcome.status == OutcomeStatus.REFUSED
    assert "masking would alter hashed records" in outcome.note
    assert AuditRecord.objects.count() == 4
    refusal = AuditRecord.objects.get(seq=4)
    assert (refusal.event_type, refusal.decision) == (EventType.RETENTION_APPLIED, "refused")
    rule.refresh_from_db()
    assert rule.last_applied_at is None


@pytest.mark.django_db
def test_a_chain_that_does_not_verify_is_not_pruned() -> None:
    records = _write(5)
    _tamper(f"UPDATE governance_auditrecord SET reason = 'nothing happened' WHERE seq = {records[1].seq}")
    _audit_rule()

    (outcome,) = retention_apply(now=_now_for_cutoff(records[3].created_at))

    assert outcome.status == OutcomeStatus.REFUSED
    assert "record #2" in outcome.note
    assert AuditRecord.objects.filter(seq__lte=5).count() == 5
    assert audit_verify().first_broken_seq == 2


@pytest.mark.django_db
def test_a_delete_without_the_prune_setting_is_still_refused_by_the_database() -> None:
    (record,) = _write(1)
    with (
        pytest.raises(DatabaseError, match="audit records are append-only: DELETE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM governance_auditrecord WHERE id = %s", [record.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=record.pk).delete()
    assert AuditRecord.objects.filter(pk=record.pk).exists()


@pytest.mark.django_db
def test_an_update_is_refused_even_with_the_prune_setting_on() -> None:
    (record,) = _write(1)
    with (
        pytest.raises(DatabaseError, match="audit records are append-only: UPDATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL steward.audit_prune = 'on'")
        cursor.execute("UPDATE governance_auditrecord SET reason = 'edited' WHERE id = %s", [record.pk])
    assert AuditRecord.objects.get(pk=record.pk).reason == "event 0"


@pytest.mark.django_db
def test_the_prune_setting_is_switched_off_again_after_pruning() -> None:
    records = _write(4)
    _audit_rule()
    retention_apply(now=_now_for_cutoff(records[2].created_at))
    # Still inside the test's transaction, where SET LOCAL would otherwise still hold.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(seq=records[3].seq).delete()


@pytest.mark.django_db
def test_tampering_after_pruning_is_still_detected() -> None:
    records = _write(6)
    _audit_rule()
    retention_apply(now=_now_for_cutoff(records[3].created_at))  # prunes #1-#3, writes #7

    _tamper("UPDATE governance_auditrecord SET reason = 'nothing happened' WHERE seq = 5")

    report = audit_verify()
    assert (report.ok, report.first_broken_seq, report.checked) == (False, 5, 1)
    assert "altered" in report.problem


@pytest.mark.django_db
def test_records_deleted_after_a_prune_are_reported_missing() -> None:
    records = _write(6)
    _audit_rule()
    retention_apply(now=_now_for_cutoff(records[3].created_at))  # prunes #1-#3, writes #7

    _tamper("DELETE FROM governance_auditrecord WHERE seq = 4")

    report = audit_verify()
    assert (report.ok, report.first_broken_seq) == (False, 5)
    assert "records #1 to #4 are missing and no retention record accounts for them" in report.problem
    with pytest.raises(CommandError, match="Audit chain broken at record #5"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_a_prefix_deleted_behind_retentions_back_is_reported_missing() -> None:
    _write(4)
    _tamper("DELETE FROM governance_auditrecord WHERE seq <= 2")
    report = audit_verify()
    assert (report.ok, report.first_broken_seq, report.checked) == (False, 3, 0)
    assert "missing" in report.problem


@pytest.mark.django_db
def test_a_forged_retention_record_with_the_wrong_anchor_does_not_account_for_a_prefix() -> None:
    records = _write(3)
    audit_record(
        actor=None,
        event_type=EventType.RETENTION_APPLIED,
        data={"pruned_through_seq": 2, "anchor_hash": "f" * 64},
    )
    _tamper("DELETE FROM governance_auditrecord WHERE seq <= 2")
    report = audit_verify()
    assert (report.ok, report.first_broken_seq) == (False, records[2].seq)
