from __future__ import annotations

from django.db import models


class DataClass(models.TextChoices):
    TRANSCRIPTS = "transcripts", "Conversation transcripts"
    CRM_VALUES = "crm_values", "CRM values read by the agent"
    AUDIT_EVIDENCE = "audit_evidence", "Audit evidence"
    ANALYTICS_EVENTS = "analytics_events", "Analytics events"


class RetentionAction(models.TextChoices):
    MASK = "mask", "Mask personal data"
    DELETE = "delete", "Delete"


class RetentionRule(models.Model):
    """How long one class of data is kept, and what happens after."""

    data_class = models.CharField(max_length=32, choices=DataClass.choices, unique=True)
    days = models.PositiveIntegerField(help_text="Keep this many days after the data was recorded.")
    action = models.CharField(max_length=16, choices=RetentionAction.choices, default=RetentionAction.MASK)
    enabled = models.BooleanField(default=True)
    last_applied_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["data_class"]

    def __str__(self) -> str:
        return f"{self.get_data_class_display()}: {self.action} after {self.days} days"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.data_class == DataClass.AUDIT_EVIDENCE and self.action == RetentionAction.MASK:
            raise ValidationError(
                {
                    "action": "Audit evidence cannot be masked (its records are hash-chained): "
                    "choose delete, which prunes the oldest records and keeps the chain "
                    "verifiable."
                }
            )
