from __future__ import annotations

from django.db import models

from governance.roles import ActorKind


class EventType(models.TextChoices):
    """Audit event types, in bands (the part before the first dot): read, write, action, approval, config, secret,
    retention, gate, conversation, qa, suite, system."""

    FIELD_READ = "read.field", "Field read"
    FIELD_WRITE = "write.field", "Field written"
    FIELD_WRITE_REFUSED = "write.refused", "Field write refused"
    ACTION_DECISION = "action.decision", "Action decided"
    ACTION_EXECUTED = "action.executed", "Action executed"
    ACTION_FAILED = "action.failed", "Action failed"
    APPROVAL_REQUESTED = "approval.requested", "Approval requested"
    APPROVAL_APPROVED = "approval.approved", "Approval given"
    APPROVAL_REJECTED = "approval.rejected", "Approval rejected"
    APPROVAL_EXPIRED = "approval.expired", "Approval expired"
    CONFIG_CREATED = "config.created", "Configuration created"
    CONFIG_CHANGED = "config.changed", "Configuration changed"
    CONFIG_DELETED = "config.deleted", "Configuration deleted"
    SECRET_READ = "secret.read", "Secret read"
    SECRET_ROTATED = "secret.rotated", "Secret rotated"
    RETENTION_APPLIED = "retention.applied", "Retention applied"
    GATE_EVALUATED = "gate.evaluated", "Rollout gate evaluated"
    GATE_PROMOTED = "gate.promoted", "Rollout stage raised"
    GATE_ROLLED_BACK = "gate.rolled_back", "Rollout stage rolled back"
    GATE_SIGNED_OFF = "gate.signed_off", "Rollout gate signed off"
    GATE_SIGNOFF_REVOKED = "gate.signoff_revoked", "Rollout gate sign-off withdrawn"
    CONVERSATION = "conversation.event", "Conversation event"
    QA_QUEUE_FILLED = "qa.queue_filled", "QA queue filled"
    QA_REVIEWED = "qa.reviewed", "QA review submitted"
    QA_SETTLED = "qa.settled", "QA disagreement settled"
    QA_FLAGGED = "qa.flagged", "Conversation flagged for QA"
    QA_FIX_REQUESTED = "qa.fix_requested", "Knowledge fix requested"
    QA_FIX_CLOSED = "qa.fix_closed", "Knowledge fix request closed"
    QA_REGRESSION_CASE = "qa.regression_case", "Regression case made from a review"
    SUITE_RUN = "suite.run", "Regression suite run"
    AUDIT_EXPORTED = "system.audit_exported", "Audit evidence exported"
    SYSTEM = "system.event", "System event"


class AuditRecord(models.Model):
    """One append-only, hash-chained record of something governance decided, read, changed or did.

    The database refuses UPDATE on this table, and DELETE except for retention's pruning of the oldest records (a
    trigger, migrations 0002 and 0003). Each record holds the hash of the one before; ``manage.py audit_verify``
    recomputes the chain and names the first broken record.
    """

    seq = models.BigIntegerField(unique=True, editable=False, help_text="Position in the chain, from 1, no gaps.")
    created_at = models.DateTimeField(editable=False)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    # No foreign key: a user may be deleted, the evidence may not (and an ON DELETE SET NULL would be an UPDATE).
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    subject_type = models.CharField(max_length=80, blank=True)
    subject_id = models.CharField(max_length=200, blank=True)
    conversation_id = models.CharField(max_length=64, blank=True)
    turn_id = models.CharField(max_length=64, blank=True)
    decision = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    fields = models.JSONField(default=list, blank=True, help_text="Field paths read or changed.")
    changes = models.JSONField(default=dict, blank=True, help_text="{field: {old, new}} for changes.")
    sources = models.JSONField(default=list, blank=True, help_text="Knowledge sources or systems involved.")
    data = models.JSONField(default=dict, blank=True)
    config_version = models.CharField(max_length=64, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        permissions = [("export_auditrecord", "Can export audit evidence")]
        constraints = [
            # A record has exactly one successor: two writers that read the same tail cannot both commit (no fork).
            models.UniqueConstraint(fields=["prev_hash"], name="audit_chain_no_fork"),
        ]
        indexes = [
            # audit_export --conversation and the conversation's evidence page.
            models.Index(fields=["conversation_id", "seq"], name="audit_conversation_seq"),
            # audit_export --since/--until.
            models.Index(fields=["created_at"], name="audit_created_at"),
            # "what happened to this object": subject pages in admin.
            models.Index(fields=["subject_type", "subject_id"], name="audit_subject"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type} {self.subject_type}:{self.subject_id}"

    @property
    def band(self) -> str:
        return self.event_type.split(".", 1)[0]
