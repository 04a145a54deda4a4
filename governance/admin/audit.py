"""Admin for the audit log: read-only for everyone, tuned for a table that only grows.

Nobody adds, changes or deletes records here, superusers included (the database refuses UPDATE and DELETE anyway).
The list never counts the whole table, filters are fixed lists (no SELECT DISTINCT), search is exact and indexed.
"""

from __future__ import annotations

import json
from datetime import UTC
from functools import cached_property
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from governance.audit import audit_export, audit_json_line, audit_record, audit_verify
from governance.models import AuditRecord, EventType
from governance.roles import ActorKind


class BoundedCountPaginator(Paginator):
    """Count no further than a few pages past the page shown.

    ``SELECT count(*) FROM (... LIMIT n)`` stops after n rows, whatever the size of the table; a plain ``count(*)``
    reads every row (PostgreSQL keeps no row count). The list then offers pages up to ``lookahead_pages`` ahead and
    says "at least N" when there may be more.
    """

    lookahead_pages = 5

    def __init__(self, *args: Any, page_number: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.page_number = max(page_number, 1)
        self.limit = (self.page_number + self.lookahead_pages) * self.per_page

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.limit].count()

    @property
    def more(self) -> bool:
        """Whether there may be records beyond those counted."""
        return self.count >= self.limit

    @property
    def page_links(self) -> list[int | str]:
        return list(self.get_elided_page_range(self.page_number))


class EventBandFilter(admin.SimpleListFilter):
    title = "event band"
    parameter_name = "band"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        bands = dict.fromkeys(value.split(".", 1)[0] for value in EventType.values)
        return [(band, band.capitalize()) for band in bands]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            # A prefix match the database answers from a scan of the newest records (no index on event_type).
            return queryset.filter(event_type__startswith=f"{self.value()}.")
        return queryset


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "actor", "event_type", "subject", "conversation", "decision"]
    list_display_links = ["seq"]
    list_filter = [EventBandFilter, "event_type", "actor_kind", "created_at"]
    search_fields = ["conversation_id", "subject_id"]  # shown as a search box; get_search_results does the search
    search_help_text = "An exact conversation id, subject id or record number (#123)."
    ordering = ["-seq"]
    # Only indexed columns: sorting a big table by anything else sorts all of it.
    sortable_by = ["seq", "created_at"]
    list_per_page = 100
    paginator = BoundedCountPaginator
    show_full_result_count = False
    # "Show counts" would count every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    actions = ["export_selected"]
    fieldsets = [
        ("What happened", {"fields": ["seq", "created_at", "event_type", "decision", "reason"]}),
        ("Who", {"fields": ["actor_kind", "actor_user_id", "actor_label"]}),
        ("About", {"fields": ["subject_type", "subject_id", "conversation_id", "turn_id"]}),
        ("Evidence", {"fields": ["fields_pretty", "changes_pretty", "sources_pretty", "data_pretty"]}),
        ("Versions", {"fields": ["config_version", "prompt_version"]}),
        (
            "Chain",
            {
                "fields": ["prev_hash", "hash"],
                "description": "Each record holds the hash of the one before it; “Verify chain” on the list "
                "recomputes them all.",
            },
        ),
    ]
    readonly_fields = [
        *(field.name for field in AuditRecord._meta.concrete_fields),
        "fields_pretty",
        "changes_pretty",
        "sources_pretty",
        "data_pretty",
    ]

    # --- Permissions: evidence is read, never written here ---------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditRecord | None = None) -> bool:
        return False

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.export_auditrecord")

    # --- The list --------------------------------------------------------------------------------------------------

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> BoundedCountPaginator:
        try:
            page_number = int(request.GET.get("p", 1))
        except ValueError:
            page_number = 1
        return self.paginator(
            queryset, per_page, orphans, allow_empty_first_page=allow_empty_first_page, page_number=page_number
        )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        # Exact matches only: the stock search is a case-insensitive LIKE on every field, a full scan on this table.
        # conversation_id is the leading column of audit_conversation_seq; subject_id is served by audit_subject.
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(conversation_id=term) | Q(subject_id=term)
        number = term.removeprefix("#")
        if number.isdigit():
            condition |= Q(seq=int(number))
        return queryset.filter(condition), False

    @admin.display(description="Actor")
    def actor(self, record: AuditRecord) -> str:
        kind = ActorKind(record.actor_kind).label.lower()
        if not record.actor_label or record.actor_label.lower() == kind:
            return record.actor_label or kind
        return f"{record.actor_label} ({kind})"

    @admin.display(description="Subject")
    def subject(self, record: AuditRecord) -> str:
        if not record.subject_type:
            return "—"
        # Links to this subject's whole history.
        query = urlencode({"subject_type": record.subject_type, "subject_id": record.subject_id})
        return format_html('<a href="?{}">{} {}</a>', query, record.subject_type, record.subject_id)

    @admin.display(description="Conversation")
    def conversation(self, record: AuditRecord) -> str:
        if not record.conversation_id:
            return "—"
        query = urlencode({"conversation_id": record.conversation_id})
        return format_html('<a href="?{}">{}</a>', query, record.conversation_id)

    # --- The detail page -------------------------------------------------------------------------------------------

    @admin.display(description="Fields")
    def fields_pretty(self, record: AuditRecord) -> str:
        return _pretty(record.fields)

    @admin.display(description="Changes")
    def changes_pretty(self, record: AuditRecord) -> str:
        return _pretty(record.changes)

    @admin.display(description="Sources")
    def sources_pretty(self, record: AuditRecord) -> str:
        return _pretty(record.sources)

    @admin.display(description="Data")
    def data_pretty(self, record: AuditRecord) -> str:
        return _pretty(record.data)

    # --- Export and verification -------------------------------------------------------------------------------

    def _admin_url(self, name: str) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}")

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name=f"{prefix}_export"),
            path("verify/", self.admin_site.admin_view(self.verify_view), name=f"{prefix}_verify"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        query = request.GET.urlencode()
        export_url = self._admin_url("export")
        extra_context = {
            **(extra_context or {}),
            "has_export_permission": self.has_export_permission(request),
            "export_url": f"{export_url}?{query}" if query else export_url,
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description="Export selected as JSON Lines", permissions=["export"])
    def export_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return self._export(request, queryset, scope={"selected": True})

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Stream the records the list currently shows (its filters and search, every page) as JSON Lines."""
        if not (self.has_view_permission(request) and self.has_export_permission(request)):
            raise PermissionDenied
        try:
            records = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters are not valid; nothing was exported.", messages.ERROR)
            return HttpResponseRedirect(self._admin_url("changelist"))
        return self._export(request, records, scope={"filters": request.GET.dict()})

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Recompute the whole chain and report the result as a message.

        Reads every record: on a very large log prefer ``manage.py audit_verify``, which runs outside the web server.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = audit_verify()
        if report.ok:
            self.message_user(request, f"Audit chain intact: {report.checked} records verified.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"Audit chain broken at record #{report.first_broken_seq}: {report.problem} "
                f"({report.checked} records before it are intact).",
                messages.ERROR,
            )
        changelist = self._admin_url("changelist")
        return HttpResponseRedirect(changelist)

    def _export(self, request: HttpRequest, records: QuerySet, *, scope: dict[str, Any]) -> StreamingHttpResponse:
        # Taking evidence out is itself evidence. Recorded (and committed) before the first byte is streamed.
        audit_record(
            actor=request.user,
            event_type=EventType.AUDIT_EXPORTED,
            subject_type=self.opts.label_lower,
            decision="exported",
            reason="Audit records exported as JSON Lines from the admin.",
            data=scope,
        )
        stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(
            (audit_json_line(row) for row in audit_export(records=records)),
            content_type="application/jsonl; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.jsonl"'
        return response


def _pretty(value: Any) -> str:
    if not value:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))
