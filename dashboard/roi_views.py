"""The ROI and launch roadmap pages (docs/roi.md): GET forms; a bad value answers 400 with the page and its message."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone

from dashboard.access import dashboard_view, page_context
from dashboard.roadmap import MEASURE_DAYS, MIN_CONTAINMENT_SAMPLE, VOLUME_SHARES, roadmap_build
from dashboard.roi import DAYS_PER_MONTH, Window, known_channels, roi_lines, roi_report

DEFAULT_DAYS = 30
MAX_DAYS = 366


class ChannelForm(forms.Form):
    channel = forms.SlugField(required=False, max_length=64, help_text="Empty: every channel.")


class PeriodForm(ChannelForm):
    """The ROI page's query string: ``from`` and ``to`` (both days included, at most a year, not after today) and
    ``channel``. Both days empty: the last 30 days up to today."""

    start = forms.DateField(required=False, label="From", input_formats=["%Y-%m-%d"])
    end = forms.DateField(required=False, label="To", input_formats=["%Y-%m-%d"])

    def __init__(self, data: QueryDict, **kwargs: Any) -> None:
        # "from" is a Python keyword: the query string's from/to fill the fields start/end.
        values = {"start": data.get("from", ""), "end": data.get("to", ""), "channel": data.get("channel", "")}
        super().__init__({key: value.strip() for key, value in values.items()}, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        today = timezone.localdate()
        end: date = data.get("end") or today
        start: date = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        data["start"], data["end"] = start, end
        if end > today:
            self.add_error("end", f"The period ends after today ({today}): costs cannot be prorated to days to come.")
        elif end < start:
            self.add_error("end", f"The period ends ({end}) before it starts ({start}).")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", f"Show at most {MAX_DAYS} days at once.")
        return data


def _errors(form: forms.Form) -> list[str]:
    names = {"start": "from", "end": "to"}
    return [f"{names.get(field, field)}: {' '.join(messages)}" for field, messages in form.errors.items()]


def _channels(selected: str) -> list[str]:
    return sorted({*known_channels(), *([selected] if selected else [])})


@dashboard_view()
def roi(request: HttpRequest) -> HttpResponse:
    """What the agent saved and cost over a period, in total and per intent."""
    form = PeriodForm(request.GET)
    context = page_context(request, title="Return on investment", days_per_month=DAYS_PER_MONTH, max_days=MAX_DAYS)
    if not form.is_valid():
        context.update(errors=_errors(form), query=request.GET, channels=known_channels())
        return render(request, "dashboard/roi.html", context, status=400)
    clean = form.cleaned_data
    report = roi_report(Window.of_days(clean["start"], clean["end"], clean["channel"]))
    context.update(
        report=report,
        lines=roi_lines(report),
        query={"from": clean["start"].isoformat(), "to": clean["end"].isoformat(), "channel": clean["channel"]},
        channels=_channels(clean["channel"]),
    )
    return render(request, "dashboard/roi.html", context)


@dashboard_view()
def roadmap(request: HttpRequest) -> HttpResponse:
    """Every intent ranked for launch, from measured traffic where there is some, with its channels' rollout."""
    form = ChannelForm({"channel": request.GET.get("channel", "").strip()})
    context = page_context(
        request,
        title="Launch roadmap",
        measure_days=MEASURE_DAYS,
        min_containment_sample=MIN_CONTAINMENT_SAMPLE,
        volume_shares=[(round(share * 100), score) for share, score in VOLUME_SHARES],
    )
    if not form.is_valid():
        context.update(errors=_errors(form), query=request.GET, channels=known_channels())
        return render(request, "dashboard/roadmap.html", context, status=400)
    channel = form.cleaned_data["channel"]
    context.update(roadmap=roadmap_build(channel=channel), query={"channel": channel}, channels=_channels(channel))
    return render(request, "dashboard/roadmap.html", context)
