"""Analytics events: one append-only row per thing that happened in a conversation, for metrics and rollout gates."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class EventKind(models.TextChoices):
    TURN_ANSWERED = "turn_answered", "The agent answered a turn"
    KNOWLEDGE_ANSWERED = "knowledge_answered", "Answered from knowledge"
    KNOWLEDGE_UNKNOWN = "knowledge_unknown", "Knowledge question not answered (no fitting source)"
    ACTION_PROPOSED = "action_proposed", "Action proposed"
    ACTION_DENIED = "action_denied", "Action denied"
    ACTION_EXECUTED = "action_executed", "Action executed"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    ESCALATED = "escalated", "Escalated to a person"
    HUMAN_TOOK_OVER = "human_took_over", "A person took over"
    HANDED_BACK = "handed_back", "Handed back to the agent"
    CLOSED = "closed", "Closed"
    CSAT = "csat", "Customer satisfaction given"
    VERIFICATION_PASSED = "verification_passed", "Verification passed"
    VERIFICATION_FAILED = "verification_failed", "Verification failed"
    TRAFFIC_TO_PERSON = "traffic_to_person", "Outside the AI's traffic share: straight to a person"
    REPLY_FEEDBACK = "reply_feedback", "Feedback on an agent reply (helpful or not)"
    HUMAN_REPLIED = "human_replied", "A person replied in the conversation"
    APPROVAL_DECIDED = "approval_decided", "An approval request was decided"
    TICKET_SOLVED = "ticket_solved", "The conversation's helpdesk ticket was solved"
    TICKET_REOPENED = "ticket_reopened", "The conversation's helpdesk ticket was reopened"
    TICKET_FIRST_REPLY = "ticket_first_reply", "A person first replied on the conversation's helpdesk ticket"
    RETURNED_ON_TOPIC = "returned_on_topic", "The customer came back about the same intent"


class AnalyticsEvent(models.Model):
    """Something that happened in a conversation. Rows are only ever added (the database refuses UPDATE); retention
    deletes old ones. ``conversation_id`` is a plain string: analytics depends on no app of ours but governance."""

    conversation_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    channel = models.SlugField(max_length=64, blank=True, db_index=False)  # led by analytics_event_channel_kind
    intent = models.CharField(max_length=100, blank=True)
    # Per kind: a reason (escalated, action_denied), a score (csat), the action (action_*), the turn's figures.
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Every metric provider: events of some kinds in one channel over the last N days.
            models.Index(fields=["channel", "kind", "created_at"], name="analytics_event_channel_kind"),
            # Whether a conversation ever reached a person (containment), and one conversation's events in admin.
            models.Index(fields=["conversation_id", "kind"], name="analytics_event_conversation"),
            # The admin list and retention: newest first, or older than the retention window.
            models.Index(fields=["-created_at"], name="analytics_event_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.conversation_id[:8]}"


class MetricRollup(models.Model):
    """One metric of one day in one channel (``channel`` empty: every channel), as its provider computed it over that
    day: the daily series the dashboard draws and sums (``analytics.rollups``). Recomputable: a day's rows are
    replaced whole by ``analytics_rollup``."""

    day = models.DateField()
    channel = models.SlugField(max_length=64, blank=True)
    metric = models.CharField(max_length=64)
    value = models.FloatField(null=True, blank=True)
    part = models.IntegerField(null=True, blank=True, help_text="A share's numerator (value = part / n).")
    n = models.IntegerField(default=0, help_text="The sample behind the value (the share's denominator).")
    why = models.CharField(max_length=300, blank=True, help_text="Why the value is unknown, when it is.")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["day", "channel", "metric"]
        constraints = [models.UniqueConstraint(fields=["day", "channel", "metric"], name="metric_rollup_unique")]
        indexes = [models.Index(fields=["metric", "channel", "day"], name="metric_rollup_series")]

    def __str__(self) -> str:
        return f"{self.metric} {self.channel or 'all'} {self.day}"
