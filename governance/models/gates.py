from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models


class RolloutStage(models.IntegerChoices):
    KNOWLEDGE_ANSWERS = 1, "1 · Read-only knowledge answers"
    CRM_CONTEXT = 2, "2 · CRM context lookup"
    TICKET_DRAFT_HANDOFF = 3, "3 · Ticket draft and handoff"
    LOW_RISK_ACTIONS = 4, "4 · Low-risk action automation"
    SCALED_OMNICHANNEL = 5, "5 · Scaled omnichannel"


class ChannelRollout(models.Model):
    """Where one channel stands in the rollout: its stage defines what the agent may do there, every turn."""

    channel = models.SlugField(max_length=64, unique=True, help_text="e.g. web_chat, email.")
    stage = models.PositiveSmallIntegerField(choices=RolloutStage.choices, default=RolloutStage.KNOWLEDGE_ANSWERS)
    traffic_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(100)], help_text="Share of conversations the agent takes at all."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel"]
        constraints = [
            models.CheckConstraint(condition=models.Q(stage__gte=1, stage__lte=5), name="rollout_stage_range"),
            models.CheckConstraint(condition=models.Q(traffic_percent__lte=100), name="rollout_traffic_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} (stage {self.stage})"


class SignOffKind(models.TextChoices):
    PERMISSION_SCOPE_REVIEW = "permission_scope_review", "Permission scope review"
    SUPPORT_OWNER = "support_owner", "Support owner"


class RolloutGate(models.Model):
    """The gate into ``stage`` on a channel: entry criteria and sign-offs to move up, rollback criteria to fall back."""

    channel = models.ForeignKey(ChannelRollout, on_delete=models.CASCADE, related_name="gates")
    stage = models.PositiveSmallIntegerField(
        choices=RolloutStage.choices, help_text="The stage this gate lets the channel enter (2 to 5)."
    )
    required_signoffs = models.JSONField(
        default=list, blank=True, help_text="Sign-offs needed to enter: permission_scope_review, support_owner."
    )
    traffic_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(100)], help_text="Traffic share for a limited launch at this stage."
    )

    class Meta:
        ordering = ["channel", "stage"]
        permissions = [("signoff_rolloutgate", "Can sign off rollout gates")]
        constraints = [
            models.UniqueConstraint(fields=["channel", "stage"], name="rollout_gate_unique"),
            models.CheckConstraint(condition=models.Q(stage__gte=2, stage__lte=5), name="rollout_gate_stage_range"),
        ]

    def __str__(self) -> str:
        return f"{self.channel.channel} → stage {self.stage}"


class CriterionKind(models.TextChoices):
    ENTRY = "entry", "Entry (must hold to move up)"
    ROLLBACK = "rollback", "Rollback (falls back when met)"


class Comparator(models.TextChoices):
    AT_LEAST = "gte", "at least"
    AT_MOST = "lte", "at most"


class GateCriterion(models.Model):
    gate = models.ForeignKey(RolloutGate, on_delete=models.CASCADE, related_name="criteria")
    kind = models.CharField(max_length=16, choices=CriterionKind.choices)
    metric = models.SlugField(max_length=64, help_text="A metric name from governance.metrics, e.g. qa_pass_rate.")
    intent = models.CharField(max_length=100, blank=True, help_text="For per-intent metrics (QA pass rate by intent).")
    comparator = models.CharField(max_length=8, choices=Comparator.choices)
    threshold = models.DecimalField(max_digits=10, decimal_places=4)
    window_days = models.PositiveSmallIntegerField(default=7, help_text="Over how many days the metric is read.")
    min_sample = models.PositiveIntegerField(
        default=0,
        help_text="Smallest sample (conversations, reviews or cases) the value must come from; below it the "
        "criterion is not met. 0: any sample.",
    )
    cautious_bound = models.BooleanField(
        default=False,
        help_text="For a share: compare the 95% interval's cautious bound instead of the value (entry: the side that "
        "makes it harder to move up; rollback: the side that falls back sooner).",
    )

    class Meta:
        ordering = ["gate", "kind", "metric"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.metric} {self.comparator} {self.threshold}"


class GateSignOff(models.Model):
    gate = models.ForeignKey(RolloutGate, on_delete=models.CASCADE, related_name="signoffs")
    kind = models.CharField(max_length=32, choices=SignOffKind.choices)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gate", "kind"], name="gate_signoff_once")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.signed_by_id} on {self.gate_id}"


class GateOutcome(models.TextChoices):
    HELD = "held", "Held"
    PROMOTED = "promoted", "Promoted"
    PROMOTION_BLOCKED = "blocked", "Promotion blocked"
    ROLLED_BACK = "rolled_back", "Rolled back"


class GateEvaluation(models.Model):
    channel = models.ForeignKey(ChannelRollout, on_delete=models.CASCADE, related_name="evaluations")
    evaluated_at = models.DateTimeField()
    stage_before = models.PositiveSmallIntegerField(choices=RolloutStage.choices)
    stage_after = models.PositiveSmallIntegerField(choices=RolloutStage.choices)
    outcome = models.CharField(max_length=16, choices=GateOutcome.choices)
    reason = models.TextField(blank=True)
    results = models.JSONField(default=list, help_text="Each criterion with its metric value and whether it held.")

    class Meta:
        ordering = ["-evaluated_at"]
        indexes = [
            # The channel's evaluation history in admin, newest first.
            models.Index(fields=["channel", "-evaluated_at"], name="gate_eval_channel_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.evaluated_at:%Y-%m-%d %H:%M}"
