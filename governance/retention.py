"""Retention: each class of data is kept for its rule's number of days, then masked or deleted, with evidence.

``retention_apply`` (daily, from beat) applies every enabled ``RetentionRule``: it calls the handler registered for
the rule's data class in ``RETENTION_HANDLERS``, and in the same transaction writes a ``retention.applied`` audit
record with the count and moves the rule's ``last_applied_at``. Either all three happen or none does.

The handler contract (apps register theirs in ``AppConfig.ready()`` as their models arrive)::

    def transcripts_retention_apply(cutoff: datetime, action: str) -> int:
        ...
    RETENTION_HANDLERS[DataClass.TRANSCRIPTS] = transcripts_retention_apply

- ``cutoff`` is an aware datetime: data recorded before it is due. ``action`` is ``"mask"`` or ``"delete"``.
- Mask or delete what is due and return how many items were affected (rows, messages: say which in the docs).
- Run inside the rule's transaction, against the database only: never call an outside system from a handler.
- Be idempotent: a second run over the same cutoff finds nothing left to do and returns 0.
- Raise ``RetentionRefused`` for an action that cannot apply to this data; the rule is then reported and audited as
  refused, and nothing it did is kept.
- ``"mask"`` on text uses ``governance.pii.mask`` with the customer's known values and a fresh vault that is then
  thrown away (and the conversation's own vault is deleted): masked-by-retention text must not be reversible.

A data class with no handler yet (transcripts, CRM values and analytics events arrive with their models) is reported
as "no handler registered yet"; that is not an error.

Audit evidence is pruned here: see ``audit_evidence_prune`` and docs/governance/pii-and-retention.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from governance.audit import Actor, audit_record, audit_verify
from governance.exceptions import RetentionRefused
from governance.models import AuditRecord, DataClass, EventType, RetentionRule
from governance.models.retention import RetentionAction

RetentionHandler = Callable[[datetime, str], int]

# At most this many audit records go per run, so a first run over years of evidence stays within the task's time
# limit; the rest go on the following days.
AUDIT_PRUNE_BATCH = 100_000


class OutcomeStatus:
    APPLIED = "applied"
    NO_HANDLER = "no_handler"
    REFUSED = "refused"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RetentionOutcome:
    data_class: str
    action: str
    status: str
    cutoff: datetime | None = None
    count: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_class": self.data_class,
            "action": self.action,
            "status": self.status,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "count": self.count,
            "note": self.note,
        }


def retention_apply(*, actor: Actor = None, now: datetime | None = None) -> list[RetentionOutcome]:
    """Apply every enabled retention rule, each in its own transaction; return what each one did."""
    now = now or timezone.now()
    outcomes = []
    for rule in RetentionRule.objects.filter(enabled=True).order_by("data_class"):
        try:
            outcomes.append(retention_rule_apply(actor=actor, rule=rule, now=now))
        except RetentionRefused as refusal:
            # The rule's transaction rolled back; the refusal is evidence too, in a transaction of its own.
            outcomes.append(_retention_rule_refused(actor=actor, rule=rule, now=now, reason=str(refusal)))
    return outcomes


@transaction.atomic
def retention_rule_apply(*, actor: Actor, rule: RetentionRule, now: datetime) -> RetentionOutcome:
    """Apply one rule: its handler's work, the audit record and ``last_applied_at`` commit together."""
    # Claim the rule: a second worker running the same rule at the same time (a redelivered task) skips it.
    locked = RetentionRule.objects.select_for_update(skip_locked=True).filter(pk=rule.pk, enabled=True).first()
    if locked is None:
        return RetentionOutcome(
            rule.data_class, rule.action, OutcomeStatus.SKIPPED, note="being applied elsewhere, or disabled since"
        )
    cutoff = now - timedelta(days=locked.days)
    handler = RETENTION_HANDLERS.get(locked.data_class)
    if handler is None:
        return RetentionOutcome(
            locked.data_class, locked.action, OutcomeStatus.NO_HANDLER, cutoff, note="no handler registered yet"
        )
    count = handler(cutoff, locked.action)
    data: dict[str, Any] = {
        "data_class": locked.data_class,
        "action": locked.action,
        "days": locked.days,
        "cutoff": cutoff.isoformat(),
        "count": count,
    }
    if locked.data_class == DataClass.AUDIT_EVIDENCE:
        data.update(_audit_chain_anchor())
    locked.last_applied_at = now
    locked.save(update_fields=["last_applied_at"])
    audit_record(actor=actor, event_type=EventType.RETENTION_APPLIED, subject=locked, decision="applied", data=data)
    return RetentionOutcome(locked.data_class, locked.action, OutcomeStatus.APPLIED, cutoff, count)


@transaction.atomic
def _retention_rule_refused(*, actor: Actor, rule: RetentionRule, now: datetime, reason: str) -> RetentionOutcome:
    cutoff = now - timedelta(days=rule.days)
    audit_record(
        actor=actor,
        event_type=EventType.RETENTION_APPLIED,
        subject=rule,
        decision="refused",
        reason=reason,
        data={"data_class": rule.data_class, "action": rule.action, "cutoff": cutoff.isoformat(), "count": 0},
    )
    return RetentionOutcome(rule.data_class, rule.action, OutcomeStatus.REFUSED, cutoff, note=reason)


# --- Audit evidence ----------------------------------------------------------------------------------------------


def audit_evidence_prune(cutoff: datetime, action: str) -> int:
    """Delete the audit records created before ``cutoff`` as a prefix of the chain (#first to #N); return how many.

    N is the largest seq created before the cutoff, but never the newest record: the retention record written next
    links to it, and an empty table would restart the chain at #1. The records to go and the one after them (whose
    ``prev_hash`` becomes the anchor) are verified first: if they do not verify, nothing is pruned, or the evidence
    of tampering would go with them. The records go under ``SET LOCAL
    steward.audit_prune = 'on'``, the only way past the append-only trigger (migration 0003), switched off again at
    once. ``retention_rule_apply`` then writes the retention record naming N and the hash of #N, which is what lets
    ``audit_verify`` accept a chain that starts at #N+1.
    """
    if action != RetentionAction.DELETE:
        raise RetentionRefused(
            "Audit evidence can only be deleted after its retention period: masking would alter hashed records."
        )
    bounds = AuditRecord.objects.aggregate(first=Min("seq"), last=Max("seq"))
    due = AuditRecord.objects.filter(created_at__lt=cutoff).aggregate(through=Max("seq"))["through"]
    if due is None:
        return 0
    through = min(due, bounds["last"] - 1, bounds["first"] + AUDIT_PRUNE_BATCH - 1)
    if through < bounds["first"]:
        return 0
    report = audit_verify(through_seq=through + 1)
    if not report.ok:
        raise RetentionRefused(
            f"The audit chain does not verify (record #{report.first_broken_seq}: {report.problem}); nothing was "
            "pruned, so that the evidence stays for investigation."
        )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL steward.audit_prune = 'on'")
    deleted, _ = AuditRecord.objects.filter(seq__lte=through).delete()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL steward.audit_prune = 'off'")
    return deleted


def _audit_chain_anchor() -> dict[str, Any]:
    """Name the pruned prefix of the chain: through which seq, and the hash it ended with.

    Read from the first remaining record (its seq - 1 and its prev_hash, which is the hash of the last pruned record
    in a chain that verified before pruning). Written on every audit-evidence retention record, so the newest one
    always accounts for the current prefix. Empty for a chain that still starts at #1.
    """
    first = AuditRecord.objects.order_by("seq").values("seq", "prev_hash").first()
    if first is None or first["seq"] == 1:
        return {}
    return {"pruned_through_seq": first["seq"] - 1, "anchor_hash": first["prev_hash"]}


RETENTION_HANDLERS: dict[str, RetentionHandler] = {
    DataClass.AUDIT_EVIDENCE.value: audit_evidence_prune,
}
