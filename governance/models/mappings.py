from __future__ import annotations

import re

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from governance.roles import Role, Verification


class ValueRule(models.TextChoices):
    ANY = "any", "Any value"
    CHOICES = "choices", "One of a list"
    PATTERN = "pattern", "Matches a pattern"
    RANGE = "range", "A number in a range"


def _role_array(help_text: str) -> ArrayField:
    return ArrayField(
        models.CharField(max_length=32, choices=Role.choices), default=list, blank=True, help_text=help_text
    )


class FieldMapping(models.Model):
    """One outside field the agent may touch. Fields without a mapping are invisible to the agent."""

    system = models.SlugField(max_length=64, help_text="The connector's key, e.g. demo_crm, helpdesk, stripe.")
    object = models.SlugField(max_length=64, help_text="The object in that system, e.g. customer, order, ticket.")
    field_path = models.CharField(max_length=200, help_text="Dotted path of the field in the object, e.g. plan.name.")
    label = models.CharField(max_length=200, help_text="What support staff call this field.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who answers for this field's use.",
    )
    fallback_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who answers when the owner is away.",
    )
    read_roles = _role_array("Who may read this field. 'Customer' means the customer themself, through the agent.")
    read_min_verification = models.PositiveSmallIntegerField(
        choices=Verification.choices,
        default=Verification.IDENTITY_VERIFIED,
        help_text="How verified a customer must be to read it (staff are always identity verified).",
    )
    write_roles = _role_array("Who may change this field. Empty means nobody: the field is read-only.")
    write_min_verification = models.PositiveSmallIntegerField(
        choices=Verification.choices,
        default=Verification.IDENTITY_VERIFIED,
        help_text="How verified a customer must be to change it.",
    )
    value_rule = models.CharField(
        max_length=16, choices=ValueRule.choices, default=ValueRule.ANY, help_text="Which values a write may set."
    )
    allowed_choices = ArrayField(
        models.CharField(max_length=200), default=list, blank=True, help_text="For 'one of a list': the allowed values."
    )
    allowed_pattern = models.CharField(
        max_length=500,
        blank=True,
        help_text="For 'matches a pattern': a regular expression the whole value must match.",
    )
    allowed_min = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="For 'a number in a range': the smallest allowed value.",
    )
    allowed_max = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="For 'a number in a range': the largest allowed value.",
    )
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Keep values read from this field this many days in "
        "transcripts and traces; empty follows the data-class rule.",
    )
    audit_evidence_required = models.BooleanField(
        default=False, help_text="Record every read of this field in the audit log (writes are always recorded)."
    )
    purpose = models.TextField(help_text="Why the agent needs this field.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system", "object", "field_path"]
        constraints = [models.UniqueConstraint(fields=["system", "object", "field_path"], name="field_mapping_unique")]

    def __str__(self) -> str:
        return f"{self.system}.{self.object}.{self.field_path}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.value_rule == ValueRule.CHOICES and not self.allowed_choices:
            errors["allowed_choices"] = "List the allowed values."
        if self.value_rule == ValueRule.PATTERN:
            if not self.allowed_pattern:
                errors["allowed_pattern"] = "Give the pattern."
            else:
                try:
                    re.compile(self.allowed_pattern)
                except re.error as exc:
                    errors["allowed_pattern"] = f"Not a valid regular expression: {exc}."
        if self.value_rule == ValueRule.RANGE:
            if self.allowed_min is None and self.allowed_max is None:
                errors["allowed_min"] = "Give a smallest or a largest value (or both)."
            elif self.allowed_min is not None and self.allowed_max is not None and self.allowed_min > self.allowed_max:
                errors["allowed_max"] = "The largest value is below the smallest."
        if self.fallback_owner_id and self.fallback_owner_id == self.owner_id:
            errors["fallback_owner"] = "The fallback owner must be someone other than the owner."
        if errors:
            raise ValidationError(errors)
