"""Regression suites: scripted customer conversations with expectations per turn, their runs and results.

A case's script is run on the live turn code, on a conversation marked ``is_test``, in a dry run
(governance/dry_run.py); docs/suites.md describes the format and the runner's semantics.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from governance.models import RolloutGate

MAX_K = 10


class RegressionSuite(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    channel = models.SlugField(max_length=64, default="web_chat", help_text="The channel its conversations run on.")
    stage = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Run as if the channel were at this rollout stage (1-5); empty: the channel's current stage.",
    )
    k = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_K)],
        help_text="Attempts per case by default: a case passes^k when all k attempts pass.",
    )
    gates = models.ManyToManyField(
        RolloutGate,
        blank=True,
        related_name="regression_suites",
        help_text="The rollout gates whose regression_pass_rate reads this suite's latest run.",
    )
    # {connector key: {"objects": {"order/BL-10042": {...}}, "customers": {"email": [...]}}}: governance/dry_run.py.
    snapshot = models.JSONField(null=True, blank=True, editable=False)
    snapshot_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("run_regressionsuite", "Can run regression suites")]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__isnull=True) | Q(stage__gte=1, stage__lte=5), name="suite_stage_range"
            ),
            models.CheckConstraint(condition=Q(k__gte=1, k__lte=MAX_K), name="suite_k_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Identity(models.TextChoices):
    ANONYMOUS = "anonymous", "Anonymous visitor"
    EMAIL_VERIFIED = "email_verified", "E-mail verified as a customer"
    SIGNED_TOKEN = "signed_token", "Signed identity token"


class RegressionCase(models.Model):
    suite = models.ForeignKey(RegressionSuite, on_delete=models.CASCADE, related_name="cases")
    name = models.CharField(max_length=200)
    intent = models.SlugField(max_length=64, blank=True, help_text="For per-intent pass rates.")
    identity = models.CharField(max_length=20, choices=Identity.choices, default=Identity.ANONYMOUS)
    identity_email = models.EmailField(blank=True, help_text="E-mail verified: the address proven by a code.")
    identity_customer_id = models.CharField(max_length=100, blank=True, help_text="Signed token: the customer id.")
    turns = models.JSONField(
        default=list,
        help_text='[{"say": "…", "expect": [{"type": "must_cite", "any_of": ["Shipping and delivery"]}]}] — '
        "see docs/suites.md; {code} in a turn is the last one-time code sent.",
    )
    enabled = models.BooleanField(default=True)
    source_conversation_id = models.CharField(
        max_length=64, blank=True, help_text="The conversation it was made from (a failed QA review)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["suite", "name"]
        constraints = [models.UniqueConstraint(fields=["suite", "name"], name="regression_case_unique_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from suites.expectations import ScriptError, validate_case

        try:
            validate_case(self.as_data())
        except ScriptError as exc:
            raise ValidationError({"turns": str(exc)}) from None

    def as_data(self) -> dict[str, Any]:
        """The case as JSON Lines export writes it (and import reads it)."""
        return {
            "name": self.name,
            "intent": self.intent,
            "identity": self.identity,
            "identity_email": self.identity_email,
            "identity_customer_id": self.identity_customer_id,
            "turns": self.turns,
            "enabled": self.enabled,
            "source_conversation_id": self.source_conversation_id,
        }


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SuiteRun(models.Model):
    """One run of a suite: each enabled case ``k`` times. pass_rate = attempts passed ÷ attempts; passed and
    pass_hat_k count cases whose every attempt passed (docs/suites.md)."""

    suite = models.ForeignKey(RegressionSuite, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    k = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_K)])
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cases_done = models.PositiveIntegerField(default=0, help_text="Progress: cases finished so far.")
    cases = models.PositiveIntegerField(default=0, help_text="Cases in the run.")
    passed = models.PositiveIntegerField(null=True, blank=True, help_text="Cases whose every attempt passed.")
    pass_rate = models.FloatField(null=True, blank=True, help_text="Attempts passed ÷ attempts.")
    pass_hat_k = models.FloatField(null=True, blank=True, help_text="Cases whose every attempt passed ÷ cases.")
    by_intent = models.JSONField(default=dict, blank=True)
    failures = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # What was run: intents fingerprint, prompt version, responder, knowledge index state, stage.
    config = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One suite runs once at a time: queueing a second run while one waits or runs is refused.
            models.UniqueConstraint(
                fields=["suite"], condition=Q(status__in=["queued", "running"]), name="suite_run_one_active"
            ),
        ]
        indexes = [
            # The regression_pass_rate provider: each suite's latest finished run (suite, status, -finished_at).
            models.Index(fields=["suite", "status", "-finished_at"], name="suite_run_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.suite} run {self.pk} ({self.status})"

    def figures(self) -> dict[str, Any]:
        """The run's headline figures, as ``run_suite --json`` writes them and its audit record keeps them."""
        return {
            "suite": self.suite.name,
            "k": self.k,
            "cases": self.cases,
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "pass_hat_k": self.pass_hat_k,
        }

    @property
    def progress(self) -> str:
        return f"{self.cases_done} / {self.cases}"


class CaseResult(models.Model):
    run = models.ForeignKey(SuiteRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(RegressionCase, on_delete=models.SET_NULL, null=True, blank=True, related_name="results")
    case_name = models.CharField(max_length=200, help_text="Kept when the case is deleted later.")
    intent = models.SlugField(max_length=64, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    passed = models.BooleanField(default=False)
    # [{"say", "reply", "skipped", "expectations": [{"expectation", "passed", "got"}]}]
    turns = models.JSONField(default=list, blank=True)
    # The dry run's would-be writes and approvals: {"writes": [...], "approvals": [...]}
    would_execute = models.JSONField(default=dict, blank=True)
    conversation_id = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "case_name", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["run", "case_name", "attempt"], name="case_result_unique_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.case_name} #{self.attempt} ({'passed' if self.passed else 'failed'})"
