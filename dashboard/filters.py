"""The dashboard's period and filters, read from a query string: one form for the pages, the CSV exports and the API.

A bad value is a ``BadFilters`` carrying the form's errors, which the pages show with a 400 and the API returns as a
400; nothing a query string holds reaches the metric code unvalidated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.validators import RegexValidator
from django.http import QueryDict
from django.utils import timezone

from governance.models import RolloutStage

DEFAULT_DAYS = 30
# Stored rollups make a long range cheap; a slice (intent, stage, responder, prompt version) is computed live, every
# day of the range, so it is held to a quarter.
MAX_DAYS = 366
MAX_SLICED_DAYS = 92
EARLIEST = date(2000, 1, 1)  # no period starts before this (and date arithmetic stays far from year 1)

_QUERY_NAMES = {"start": "from", "end": "to"}  # the form's field → the query string's name
_word = RegexValidator(r"^[\w.-]+$", "Use letters, digits, dots, dashes and underscores only.")
_version = RegexValidator(r"^[\w. -]+$", "Use letters, digits, spaces, dots, dashes and underscores only.")


class BadFilters(ValueError):
    """The query string asks for something the dashboard cannot show; ``errors`` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))


class FilterForm(forms.Form):
    """What the dashboard's GET form sends (the names are the query string's)."""

    start = forms.DateField(required=False, label="From", input_formats=["%Y-%m-%d"])
    end = forms.DateField(required=False, label="To", input_formats=["%Y-%m-%d"])
    channel = forms.SlugField(required=False, max_length=64, help_text="Empty: every channel.")
    intent = forms.CharField(required=False, max_length=100, validators=[_word])
    stage = forms.TypedChoiceField(
        required=False,
        choices=[("", "any"), *RolloutStage.choices],
        coerce=int,
        empty_value=None,
        label="Rollout stage",
    )
    responder = forms.CharField(required=False, max_length=64, validators=[_word])
    prompt_version = forms.CharField(required=False, max_length=64, validators=[_version], label="Prompt version")

    def __init__(self, data: QueryDict | dict[str, Any], **kwargs: Any) -> None:
        # "from" is a Python keyword, so the fields are start/end and the query string's from/to are mapped onto them.
        values = {key: data.get(key, "") for key in ("channel", "intent", "stage", "responder", "prompt_version")}
        values.update(start=data.get("from", ""), end=data.get("to", ""))
        super().__init__({key: value.strip() for key, value in values.items()}, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        end = data.get("end") or timezone.localdate()
        for name, day in (("start", data.get("start")), ("end", end)):
            if day is not None and day < EARLIEST:
                self.add_error(name, f"Steward has no data before {EARLIEST}.")
                return data
        start = data.get("start") or max(end - timedelta(days=DEFAULT_DAYS - 1), EARLIEST)
        data["start"], data["end"] = start, end
        days = (end - start).days + 1
        sliced = any(data.get(name) not in (None, "") for name in ("intent", "stage", "responder", "prompt_version"))
        if end < start:
            self.add_error("end", f"The period ends ({end}) before it starts ({start}).")
        elif end > timezone.localdate():
            self.add_error("end", f"The period ends after today ({end}): there is nothing to show yet.")
        elif days > MAX_DAYS:
            self.add_error("start", f"The period is {days} days long; show at most {MAX_DAYS} at once.")
        elif sliced and days > MAX_SLICED_DAYS:
            self.add_error(
                "start",
                f"With an intent, stage, responder or prompt version the period is computed live: show at most "
                f"{MAX_SLICED_DAYS} days at once (this one is {days}).",
            )
        return data


@dataclass(frozen=True)
class Filters:
    """A period (both days included) and what to narrow the metrics to."""

    start: date
    end: date
    channel: str = ""
    intent: str = ""
    stage: int | None = None
    responder: str = ""
    prompt_version: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def slices(self) -> dict[str, Any]:
        """The keyword slices ``analytics.rollups.metric_series`` and ``MetricQuery`` take."""
        return {
            "intent": self.intent,
            "stage": self.stage,
            "responder": self.responder,
            "prompt_version": self.prompt_version,
        }

    @property
    def sliced(self) -> bool:
        return any(value not in (None, "") for value in self.slices.values())

    def params(self, **override: Any) -> dict[str, str]:
        """Return the query string's parameters (empty ones left out), with ``override`` applied."""
        values: dict[str, Any] = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "channel": self.channel,
            **self.slices,
        }
        values.update(override)
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def query(self, **override: Any) -> str:
        """Return the query string (without "?") of these filters, with ``override`` applied."""
        return urlencode(self.params(**override))


def filters_from(data: QueryDict | dict[str, Any]) -> Filters:
    """Read the filters from a query string, or raise ``BadFilters`` saying what is wrong."""
    form = FilterForm(data)
    if not form.is_valid():
        raise BadFilters({_QUERY_NAMES.get(field, field): list(messages) for field, messages in form.errors.items()})
    clean = form.cleaned_data
    return Filters(
        start=clean["start"],
        end=clean["end"],
        channel=clean["channel"],
        intent=clean["intent"],
        stage=clean["stage"],
        responder=clean["responder"],
        prompt_version=clean["prompt_version"],
    )
