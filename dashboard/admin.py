"""The cost settings the ROI view reads: one row, edited here, saved and audited through governance.changes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from dashboard.models import NON_NEGATIVE, CostSettings
from governance.admin.base import GovernedAdmin


class CostSettingsForm(forms.ModelForm):
    class Meta:
        model = CostSettings
        fields = ["currency", *NON_NEGATIVE, "minutes_saved_per_action"]
        widgets = {"minutes_saved_per_action": forms.Textarea(attrs={"rows": 4, "cols": 60})}

    def clean_minutes_saved_per_action(self) -> Any:
        value = self.cleaned_data.get("minutes_saved_per_action")
        return {} if value is None else value  # an emptied field: no per-action minutes (the column is never NULL)


@admin.register(CostSettings)
class CostSettingsAdmin(GovernedAdmin):
    form = CostSettingsForm
    list_display = ["__str__", "human_contact_cost", "agent_minute_cost", "monthly_running_cost", "updated_at"]
    readonly_fields = ["updated_at"]
    fieldsets = [
        (None, {"fields": ["currency"]}),
        (
            "What a person's work costs",
            {
                "fields": ["human_contact_cost", "agent_minute_cost", "minutes_per_human_contact"],
                "description": "A contained conversation is worth the cost of a human-handled contact; without it, "
                "the minutes per contact × the cost per agent minute.",
            },
        ),
        (
            "What the agent costs",
            {"fields": ["model_cost_per_conversation", "monthly_running_cost", "setup_cost"]},
        ),
        (
            "What automated actions save",
            {
                "fields": ["default_minutes_saved_per_action", "minutes_saved_per_action"],
                "description": "Each action the agent executes without a person (not lookups, not approvals) saves "
                "these minutes, valued at the cost per agent minute.",
            },
        ),
        ("Changes", {"fields": ["updated_at"]}),
    ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        """There is one row: once it exists, "add" opens it (checked here, not in has_add_permission, which every
        admin page's app list calls: a query there would cost every page one)."""
        current = CostSettings.current()
        if current is not None:
            return HttpResponseRedirect(reverse("admin:dashboard_costsettings_change", args=[current.pk]))
        return super().add_view(request, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Go straight to the one row (or to adding it): a list of one row is a detour."""
        current = CostSettings.current()
        if current is not None and self.has_view_or_change_permission(request, current):
            return HttpResponseRedirect(reverse("admin:dashboard_costsettings_change", args=[current.pk]))
        if current is None and self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:dashboard_costsettings_add"))
        return super().changelist_view(request, extra_context)
