"""What QA leads to outside the queue: fix requests to knowledge owners, and conversations people flagged."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class FixStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class FixRequest(models.Model):
    """A reviewer asks a knowledge source's owner to fix it (or to write a missing one)."""

    source = models.ForeignKey(
        "knowledge.KnowledgeSource",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the knowledge is missing (see the topic).",
    )
    document = models.ForeignKey(
        "knowledge.Document", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    missing_topic = models.CharField(max_length=300, blank=True, help_text="What a missing source should cover.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="qa_fix_requests")
    review = models.ForeignKey("qa.Review", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    conversation = models.ForeignKey(
        "agent.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=FixStatus.choices, default=FixStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(source__isnull=False) | ~Q(missing_topic=""), name="qa_fix_source_or_topic"
            ),
        ]
        indexes = [
            # Owners' own requests in admin, open first; the daily close sweep (open requests).
            models.Index(fields=["owner", "status"], name="qa_fix_owner_status"),
            models.Index(fields=["status", "created_at"], name="qa_fix_status_created"),
        ]

    def __str__(self) -> str:
        what = self.source.name if self.source_id else f"missing: {self.missing_topic}"
        return f"fix {self.pk} ({what})"


class ConversationFlag(models.Model):
    """A person marked a conversation for QA (the "flagged" sampling rule queues it)."""

    conversation = models.ForeignKey("agent.Conversation", on_delete=models.CASCADE, related_name="qa_flags")
    flagged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Flagging twice is one flag (the second note is kept in the audit record).
            models.UniqueConstraint(fields=["conversation", "flagged_by"], name="qa_flag_once_per_person"),
        ]

    def __str__(self) -> str:
        return f"flag on {self.conversation_id}"
