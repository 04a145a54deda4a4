"""QA configuration edited in admin: which conversations are sampled, and the scorecard they are judged by."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class RuleKind(models.TextChoices):
    RANDOM_CLOSED = "random_closed", "A random share of closed conversations"
    ESCALATIONS = "escalations", "Every escalation"
    LOW_CONFIDENCE = "low_confidence", "A turn under a confidence threshold"
    NEGATIVE_CSAT = "negative_csat", "Negative rating (at most the threshold, default 2)"
    POLICY_DECISIONS = "policy_decisions", "Policy decisions (denied actions, approvals)"
    FAILED_RETRIEVALS = "failed_retrievals", "Failed retrievals (no fitting source)"
    NEW_INTENT = "new_intent", "The first N conversations of a new or changed intent"
    FLAGGED = "flagged", "Conversations a person flagged"


class SamplingRule(models.Model):
    """One reason to put conversations in front of a reviewer (qa/sampling.py finds them; the daily task queues)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    share_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=10,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Random share of closed conversations: the percentage sampled.",
    )
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Low confidence: turns under this confidence (e.g. 0.45). Negative rating: scores at most this "
        "(default 2).",
    )
    first_n = models.PositiveIntegerField(
        default=20, help_text="New or changed intent: how many conversations after the change are sampled."
    )
    lookback_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Conversations started in the last this many days are considered.",
    )
    channel = models.SlugField(max_length=64, blank=True, help_text="Only this channel; empty means every channel.")
    double_review_percent = models.PositiveSmallIntegerField(
        default=10,
        validators=[MaxValueValidator(100)],
        help_text="Share of the conversations this rule queues that two reviewers score blind, for agreement.",
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(share_percent__gte=0, share_percent__lte=100), name="qa_rule_share_percent_range"
            ),
            models.CheckConstraint(condition=Q(double_review_percent__lte=100), name="qa_rule_double_review_range"),
        ]

    def __str__(self) -> str:
        return self.name


class AppliesTo(models.TextChoices):
    ALL = "all", "Every conversation"
    ESCALATED = "escalated", "Escalated conversations"
    NOT_ESCALATED = "not_escalated", "Conversations not escalated"
    WITH_ACTIONS = "with_actions", "Conversations with tool calls"
    KNOWLEDGE = "knowledge", "Conversations with knowledge answers"


class ScorecardCriterion(models.Model):
    """One line of the scorecard: each applicable one is judged pass / fail / not applicable."""

    name = models.CharField(max_length=200, unique=True)
    guidance = models.TextField(blank=True, help_text="What a reviewer checks; shown next to the criterion.")
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(100)], help_text="Share of the overall score."
    )
    auto_fail = models.BooleanField(default=False, help_text="A fail here fails the review whatever the score.")
    applies_to = models.CharField(max_length=16, choices=AppliesTo.choices, default=AppliesTo.ALL)
    enabled = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "name"]
        verbose_name_plural = "scorecard criteria"
        constraints = [models.CheckConstraint(condition=Q(weight__gte=1), name="qa_criterion_weight_positive")]

    def __str__(self) -> str:
        return self.name
