from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from governance.models.gates import RolloutStage
from governance.roles import Role, Verification


class ActionTier(models.TextChoices):
    READ_ONLY = "read_only", "Read-only"
    DRAFT = "draft", "Draft (a person sends it)"
    APPROVAL_REQUIRED = "approval_required", "Approval required"
    AUTOMATED = "automated", "Automated"


def _default_approver_roles() -> list[str]:
    return [Role.SUPPORT_MANAGER.value, Role.SUPPORT_ADMIN.value]


class ActionPolicy(models.Model):
    """One action the agent can take, and the rules for taking it."""

    action = models.SlugField(
        max_length=64, unique=True, help_text="The tool's name, e.g. order_status_lookup, refund, subscription_pause."
    )
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="What the action does in the outside system.")
    tier = models.CharField(
        max_length=24,
        choices=ActionTier.choices,
        help_text="Read-only and automated run at once; draft hands a draft to a person; "
        "approval required waits for a person's approval.",
    )
    allowed_roles = ArrayField(
        models.CharField(max_length=32, choices=Role.choices),
        default=list,
        blank=True,
        help_text="Who may take it. 'Customer' lets the agent take it for the customer.",
    )
    min_verification = models.PositiveSmallIntegerField(
        choices=Verification.choices,
        default=Verification.IDENTITY_VERIFIED,
        help_text="How verified the customer must be.",
    )
    limit_argument = models.CharField(
        max_length=64, blank=True, help_text="The argument the limits apply to, e.g. amount."
    )
    automated_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Up to this value the tier applies; above it a person must approve.",
    )
    hard_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Above this value the action is refused outright.",
    )
    enabled_from_stage = models.PositiveSmallIntegerField(
        choices=RolloutStage.choices,
        default=RolloutStage.LOW_RISK_ACTIONS,
        help_text="The rollout stage from which the agent may take it.",
    )
    approver_roles = ArrayField(
        models.CharField(max_length=32, choices=Role.choices),
        default=_default_approver_roles,
        blank=True,
        help_text="Who may approve it when approval is needed.",
    )
    approval_expiry_hours = models.PositiveIntegerField(
        default=24, help_text="An approval request not decided in this time expires."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["action"]
        verbose_name_plural = "action policies"

    def __str__(self) -> str:
        return self.action

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if (self.automated_limit is not None or self.hard_limit is not None) and not self.limit_argument:
            errors["limit_argument"] = "Name the argument the limits apply to."
        if self.automated_limit is not None and self.hard_limit is not None and self.automated_limit > self.hard_limit:
            errors["hard_limit"] = "The hard limit is below the automated limit."
        if Role.CUSTOMER in self.approver_roles:
            errors["approver_roles"] = "A customer cannot approve actions."
        if errors:
            raise ValidationError(errors)


class EscalationTrigger(models.TextChoices):
    LOW_CONFIDENCE = "low_confidence", "Low confidence"
    FRUSTRATION = "frustration", "Frustration"
    VIP = "vip", "VIP / account tier"
    COMPLIANCE = "compliance", "Compliance keywords"
    REFUND_OVER_POLICY = "refund_over_policy", "Refund above policy"
    LOOP = "loop", "Loop (no progress)"
    HUMAN_REQUESTED = "human_requested", "Customer asked for a person"
    CONNECTOR_FAILURE = "connector_failure", "Connector failure"


class EscalationRule(models.Model):
    """A rule evaluated every turn; when it fires, the conversation goes to a person with a ticket."""

    name = models.CharField(max_length=200, unique=True)
    trigger = models.CharField(max_length=32, choices=EscalationTrigger.choices)
    threshold = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Low confidence: fire below this score. Frustration: fire below this "
        "sentiment. Loop: fire after this many turns. Refund: above this amount.",
    )
    keywords = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Compliance and explicit-request phrases that fire the rule.",
    )
    account_tiers = ArrayField(
        models.CharField(max_length=50),
        default=list,
        blank=True,
        help_text="VIP: the account tiers that go to a person.",
    )
    queue = models.SlugField(
        max_length=64, blank=True, help_text="Helpdesk queue for the ticket; empty routes by topic."
    )
    priority = models.PositiveSmallIntegerField(default=3, help_text="Ticket priority, 1 (critical) to 5 (very low).")
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["trigger", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # A rule missing what its trigger reads would silently never fire.
        needs = {
            EscalationTrigger.REFUND_OVER_POLICY: ("threshold", self.threshold is not None, "the refund amount"),
            EscalationTrigger.COMPLIANCE: ("keywords", bool(self.keywords), "the compliance phrases"),
            EscalationTrigger.VIP: ("account_tiers", bool(self.account_tiers), "the account tiers"),
        }
        if self.trigger in needs:
            field, present, what = needs[self.trigger]
            if not present:
                raise ValidationError({field: f"Give {what}: without it this rule never fires."})
