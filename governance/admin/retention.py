"""Admin for retention rules: how long each class of data is kept, and what happens after."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from governance.admin.base import GovernedAdmin
from governance.models import RetentionRule


@admin.register(RetentionRule)
class RetentionRuleAdmin(GovernedAdmin):
    list_display = ["data_class", "days", "action", "enabled", "last_applied_at"]
    list_filter = ["action", "enabled"]
    readonly_fields = ["last_applied_at"]
    fields = ["data_class", "days", "action", "enabled", "last_applied_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: RetentionRule | None = None) -> list[str]:
        # One rule per data class: to cover another class, add a rule for it.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "data_class"] if obj is not None else fields
