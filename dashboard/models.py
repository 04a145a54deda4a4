"""The costs the ROI view values conversations and actions with: one row, edited in admin (docs/roi.md)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from governance.models import ActionPolicy

CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
# The money and minute fields, each refused below zero (clean() and a check constraint each).
NON_NEGATIVE = [
    "human_contact_cost",
    "agent_minute_cost",
    "minutes_per_human_contact",
    "model_cost_per_conversation",
    "monthly_running_cost",
    "setup_cost",
    "default_minutes_saved_per_action",
]


def _money(help_text: str, *, places: int = 2) -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=places, null=True, blank=True, help_text=help_text)


class CostSettings(models.Model):
    """What a contact, a minute, the model and the platform cost, and what an automated action saves.

    One row (its primary key is always 1). An empty field is unknown, never zero: a figure that needs it is shown as
    not computable (dashboard.roi)."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    currency = models.CharField(max_length=3, help_text="ISO 4217 code of every amount below, e.g. EUR, USD, GBP.")
    human_contact_cost = _money(
        "What one conversation handled by a person costs (wages, tools, overhead). Values each contained "
        "conversation; when set it wins over the cost per agent minute × minutes per contact."
    )
    agent_minute_cost = _money(
        "What one minute of a support agent's time costs. Values the minutes automated actions save, and contained "
        "conversations when no cost per human-handled contact is set.",
        places=4,
    )
    minutes_per_human_contact = models.DecimalField(
        max_digits=6,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Minutes a person spends on one conversation, used with the cost per agent minute when no cost per "
        "human-handled contact is set.",
    )
    model_cost_per_conversation = _money(
        "Language model cost of one conversation the agent answered (0 for the embedded responder). Turn traces "
        "record no token counts, so a price per 1,000 tokens cannot be applied.",
        places=4,
    )
    monthly_running_cost = _money(
        "Hosting, licences and upkeep per month; prorated to the period shown (a month is 30.4375 days)."
    )
    setup_cost = _money("One-off cost of the launch (integration, configuration, training): what the payback recovers.")
    default_minutes_saved_per_action = models.DecimalField(
        max_digits=6,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Minutes of a person's work one automated action saves, for actions not listed below.",
    )
    minutes_saved_per_action = models.JSONField(
        default=dict,
        blank=True,
        help_text='Minutes saved per automated action, by action policy name: {"subscription_pause": 4}. Actions not '
        "listed save the default above.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cost settings"
        verbose_name_plural = "cost settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="cost_settings_singleton"),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": 0}),
                    name=f"cost_settings_{name}_not_negative",
                )
                for name in NON_NEGATIVE
            ),
        ]

    def __str__(self) -> str:
        return f"Costs in {self.currency}"

    @classmethod
    def current(cls) -> CostSettings | None:
        """Return the one row, or None when costs were never configured."""
        return cls.objects.filter(pk=cls.SINGLETON).first()

    def minutes_saved(self, action: str) -> Decimal | None:
        """Return the minutes one ``action`` saves: its own entry, else the default (None when neither is set)."""
        value = (self.minutes_saved_per_action or {}).get(action)
        return Decimal(str(value)) if value is not None else self.default_minutes_saved_per_action

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self.currency = (self.currency or "").strip().upper()
        if not CURRENCY_CODE.match(self.currency):
            errors["currency"] = "Give a three-letter ISO 4217 currency code, e.g. EUR."
        for name in NON_NEGATIVE:
            value = getattr(self, name)
            if value is not None and value < 0:
                errors[name] = "A cost or a number of minutes cannot be negative; leave it empty when unknown."
        if problem := minutes_map_error(self.minutes_saved_per_action):
            errors["minutes_saved_per_action"] = problem
        elif unknown := sorted(set(self.minutes_saved_per_action or {}) - _action_names()):
            errors["minutes_saved_per_action"] = f"There is no action policy named {', '.join(unknown)}."
        if errors:
            raise ValidationError(errors)


def _action_names() -> set[str]:
    return set(ActionPolicy.objects.values_list("action", flat=True))


def minutes_map_error(value: Any) -> str:
    """Return what is wrong with a minutes-per-action map (empty when it is right). Pure."""
    if value is None or value == {}:
        return ""
    if not isinstance(value, dict):
        return 'Give an object of action names and minutes: {"subscription_pause": 4}, or {} for none.'
    for action, minutes in value.items():
        if not re.fullmatch(r"[-a-zA-Z0-9_]+", action):
            return f"{action!r} is not an action policy name."
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes < 0:
            return f"{action}: give the minutes saved as a number, 0 or more."
    return ""
