from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from governance.models.policies import ActionPolicy


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved, not yet executed"
    EXECUTING = "executing", "Executing"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Execution failed"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class ApprovalRequest(models.Model):
    """An action waiting for a person. Executed exactly once when approved; never when rejected or expired."""

    action = models.ForeignKey(ActionPolicy, on_delete=models.PROTECT, related_name="approval_requests")
    arguments = models.JSONField(default=dict)
    principal = models.JSONField(default=dict, help_text="Whom the action is for: kind, verification, customer id.")
    conversation_id = models.CharField(max_length=64, blank=True)
    turn_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True, help_text="Why approval is needed (from the policy decision).")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who proposed it (empty: the agent).",
    )
    requester_label = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    # Travels to the connector, which passes it to the remote side (e.g. Stripe's Idempotency-Key header).
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    executed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("decide_approvalrequest", "Can approve or reject approval requests")]
        constraints = [
            models.CheckConstraint(
                condition=Q(approver__isnull=True) | Q(requested_by__isnull=True) | ~Q(approver=F("requested_by")),
                name="approval_not_self_approved",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "executing", "executed", "failed"]) | Q(approver__isnull=False),
                name="approval_approved_has_approver",
            ),
        ]
        indexes = [
            # The approval queue (pending, oldest first) and the expiry sweep (pending past expires_at).
            models.Index(fields=["status", "expires_at"], name="approval_status_expiry"),
            # Pending approvals of one conversation, shown in the handoff console.
            models.Index(fields=["conversation_id", "status"], name="approval_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.action.action} #{self.pk} ({self.status})"
