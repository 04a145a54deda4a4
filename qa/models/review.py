"""The review queue: one item per sampled conversation, why it was sampled, who reviews it, and the reviews."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from qa.models.config import SamplingRule, ScorecardCriterion


class ItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_REVIEW = "in_review", "In review (one of two reviews in)"
    DONE = "done", "Done"
    DISPUTED = "disputed", "Disputed (the reviewers disagree)"
    SETTLED = "settled", "Settled by a manager"


OPEN_STATUSES = (ItemStatus.OPEN, ItemStatus.IN_REVIEW)
# A final review stands: these items count in the QA metrics.
FINAL_STATUSES = (ItemStatus.DONE, ItemStatus.SETTLED)


class ReviewItem(models.Model):
    """A conversation in the review queue (once, however many rules sampled it)."""

    conversation = models.OneToOneField("agent.Conversation", on_delete=models.CASCADE, related_name="qa_item")
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    reviews_needed = models.PositiveSmallIntegerField(default=1, help_text="2: two reviewers score it blind.")
    final_review = models.ForeignKey(
        "qa.Review", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When a review came to stand (done, or settled): the QA metrics' window.
    finalised_at = models.DateTimeField(null=True, blank=True, editable=False)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    settle_note = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("review_reviewitem", "Can review QA items (on one item: its assigned reviewer)"),
            ("settle_reviewitem", "Can settle disputed QA reviews"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(reviews_needed__in=[1, 2]), name="qa_item_one_or_two_reviews"),
            models.CheckConstraint(
                condition=~Q(status__in=["done", "settled"]) | Q(final_review__isnull=False),
                name="qa_item_final_has_review",
            ),
        ]
        indexes = [
            # The managers' queue: items by status, newest first.
            models.Index(fields=["status", "-created_at"], name="qa_item_status_recent"),
            # The QA metrics: items finalised in the window.
            models.Index(fields=["finalised_at"], name="qa_item_finalised", condition=Q(finalised_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"QA item {self.pk} ({self.status})"


class ReviewReason(models.Model):
    """Why an item was queued: one row per rule that sampled its conversation (a rule queues a conversation once)."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="reasons")
    rule = models.ForeignKey(SamplingRule, on_delete=models.PROTECT, related_name="reasons")
    conversation = models.ForeignKey("agent.Conversation", on_delete=models.CASCADE, related_name="+")
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "conversation"], name="qa_reason_once_per_rule"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} → item {self.item_id}"


class ReviewAssignment(models.Model):
    """A reviewer asked to score an item (they hold ``qa.review_reviewitem`` on it through django-guardian)."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qa_assignments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "created_at"]
        constraints = [models.UniqueConstraint(fields=["item", "reviewer"], name="qa_assignment_unique")]
        indexes = [
            # "My queue": a reviewer's assignments.
            models.Index(fields=["reviewer", "item"], name="qa_assignment_reviewer"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} → {self.reviewer_id}"


class Review(models.Model):
    """One reviewer's judgement of one conversation: the scorecard results, the labels, the score."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()
    score = models.FloatField(null=True, blank=True, help_text="0-100; empty when no criterion applied.")
    passed = models.BooleanField()
    pass_mark = models.FloatField(help_text="The pass mark the score was held against.")
    escalation_needed = models.BooleanField(help_text="Label: a person was needed (escalated or not).")
    policy_breach = models.BooleanField()
    breached_policy = models.CharField(max_length=200, blank=True)
    resolved = models.BooleanField()
    # Whether the conversation was escalated when it was reviewed (the escalation-accuracy metrics compare the two).
    was_escalated = models.BooleanField()
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["item", "submitted_at"]
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="qa_review_once_per_reviewer"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=100), name="qa_review_score_range"
            ),
        ]

    def __str__(self) -> str:
        return f"review {self.pk} of item {self.item_id}"

    @property
    def labels(self) -> tuple[bool, bool, bool]:
        return (self.escalation_needed, self.policy_breach, self.resolved)


class CriterionResult(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    NA = "na", "Not applicable"


class CriterionScore(models.Model):
    """One criterion's result in one review; weight and auto-fail are copied so later scorecard edits change no
    past score."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="scores")
    criterion = models.ForeignKey(ScorecardCriterion, on_delete=models.PROTECT, related_name="scores")
    result = models.CharField(max_length=4, choices=CriterionResult.choices)
    weight = models.PositiveSmallIntegerField()
    auto_fail = models.BooleanField()
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["review", "criterion__order", "criterion__name"]
        constraints = [models.UniqueConstraint(fields=["review", "criterion"], name="qa_score_once_per_criterion")]

    def __str__(self) -> str:
        return f"{self.criterion_id}: {self.result}"


class TurnAnnotation(models.Model):
    """A reviewer's note on one turn of the conversation."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="annotations")
    trace = models.ForeignKey("agent.TurnTrace", on_delete=models.CASCADE, related_name="+")
    note = models.TextField()

    class Meta:
        ordering = ["review", "trace"]
        constraints = [models.UniqueConstraint(fields=["review", "trace"], name="qa_annotation_once_per_turn")]

    def __str__(self) -> str:
        return f"note on turn {self.trace_id}"
