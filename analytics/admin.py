"""Admin of the analytics app: the events, read-only (they are facts; the database refuses updates)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from analytics.models import AnalyticsEvent


@admin.register(AnalyticsEvent)
class AnalyticsEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "channel", "intent", "conversation_id"]
    list_filter = ["kind", "created_at"]
    search_fields = ["=conversation_id"]
    search_help_text = "An exact conversation id."
    ordering = ["-created_at"]
    sortable_by = ["created_at"]  # the only indexed order: sorting a growing table by anything else sorts all of it
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["created_at", "kind", "channel", "intent", "conversation_id", "data_pretty"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="data")
    def data_pretty(self, event: AnalyticsEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.data, indent=2, sort_keys=True, ensure_ascii=False))
