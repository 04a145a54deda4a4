"""Knowledge admin: sources with their owners, freshness and ingestion; documents with their chunks; runs; failed
retrievals. Every write goes through knowledge.services (STYLE.md rules 1 and 8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from knowledge import services
from knowledge.exceptions import KnowledgeError, NotPermitted
from knowledge.models import (
    Chunk,
    Document,
    FailedRetrieval,
    Freshness,
    IngestionRun,
    KnowledgeSource,
)
from knowledge.origins import validate_origin_config

_FRESHNESS_COLOURS = {Freshness.FRESH: "#1a7f37", Freshness.DUE: "#9a6700", Freshness.STALE: "#cf222e"}
_RUN_COLOURS = {
    IngestionRun.Status.DONE: "#1a7f37",
    IngestionRun.Status.DONE_WITH_ERRORS: "#9a6700",
    IngestionRun.Status.FAILED: "#cf222e",
}


def _badge(text: str, colour: str) -> str:
    return format_html(
        '<span style="color:#fff;background:{};border-radius:3px;padding:1px 6px;white-space:nowrap">{}</span>',
        colour,
        text,
    )


class FreshnessFilter(admin.SimpleListFilter):
    """Fresh / review due / stale, computed in SQL from the derived review dates (KnowledgeSource.freshness)."""

    title = "freshness"
    parameter_name = "freshness"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(Freshness.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        today = timezone.localdate()
        if self.value() == Freshness.FRESH:
            return queryset.filter(review_due_on__gt=today)
        if self.value() == Freshness.DUE:
            return queryset.filter(review_due_on__lte=today, stale_on__gt=today)
        if self.value() == Freshness.STALE:
            return queryset.filter(stale_on__lte=today)
        return queryset


class KnowledgeSourceForm(forms.ModelForm):
    """Checks the origin configuration where the admin can show the error next to the field."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "origin" in cleaned and "origin_config" in cleaned:
            try:
                cleaned["origin_config"] = validate_origin_config(cleaned["origin"], cleaned["origin_config"])
            except KnowledgeError as exc:
                self.add_error("origin_config", str(exc))
        return cleaned


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(admin.ModelAdmin):
    form = KnowledgeSourceForm
    list_display = [
        "name",
        "kind",
        "owner",
        "audience",
        "status",
        "freshness_badge",
        "chunk_total",
        "last_run",
    ]
    list_filter = [
        "kind",
        "audience",
        "status",
        FreshnessFilter,
        ("owner", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["owner"]
    search_fields = ["name"]
    autocomplete_fields = ["owner", "fallback_owner"]
    actions = ["approve_sources", "retire_sources", "reindex_sources"]
    readonly_fields = [
        "status",
        "approved_by",
        "approved_at",
        "superseded_by",
        "review_due_on",
        "stale_on",
        "documents_link",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "kind", "status", "documents_link"]}),
        (
            "Ownership and audience",
            {
                "fields": ["owner", "fallback_owner", "audience", "products", "version_scope", "confidence"],
                "description": "The owner (and fallback owner) may approve, review, retire and re-index this "
                "source. Widening the audience of an approved source sends it back to draft.",
            },
        ),
        (
            "Freshness",
            {
                "fields": [
                    "last_reviewed_on",
                    "review_interval_days",
                    ("review_due_on", "stale_on"),
                    "retire_after",
                    "superseded_by",
                ]
            },
        ),
        ("Origin", {"fields": ["origin", "origin_config"]}),
        ("Approval", {"fields": ["approved_by", "approved_at", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        chunks = (
            Document.objects.filter(source=OuterRef("pk"))
            .order_by()
            .values("source")
            .annotate(total=Sum("chunk_count"))
            .values("total")
        )
        last_run = IngestionRun.objects.filter(source=OuterRef("pk")).order_by("-created_at").values("status")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(
                chunk_total=Coalesce(Subquery(chunks, output_field=IntegerField()), 0),
                last_run_status=Subquery(last_run),
            )
        )

    @admin.display(description="freshness")
    def freshness_badge(self, source: KnowledgeSource) -> str:
        freshness = source.freshness()
        return _badge(Freshness(freshness).label, _FRESHNESS_COLOURS[freshness])

    @admin.display(description="chunks", ordering="chunk_total")
    def chunk_total(self, source: KnowledgeSource) -> int:
        return source.chunk_total  # type: ignore[attr-defined]

    @admin.display(description="last run", ordering="last_run_status")
    def last_run(self, source: KnowledgeSource) -> str:
        status = source.last_run_status  # type: ignore[attr-defined]
        if status is None:
            return "—"
        return _badge(IngestionRun.Status(status).label, _RUN_COLOURS.get(status, "#0969da"))

    @admin.display(description="documents")
    def documents_link(self, source: KnowledgeSource) -> str:
        if source.pk is None:
            return "—"
        url = reverse("admin:knowledge_document_changelist") + f"?source__id__exact={source.pk}"
        return format_html('<a href="{}">{} documents</a>', url, source.documents.count())

    # --- Writes through the services ---------------------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: KnowledgeSource, form: forms.ModelForm, change: bool) -> None:
        # The form has set its values on ``obj``; the services load the row themselves and apply them.
        names = form.changed_data if change else form.cleaned_data
        data = {name: form.cleaned_data[name] for name in names if name in services.UPDATABLE_FIELDS}
        if change:
            services.source_update(actor=request.user, source=obj, data=data)
        else:
            required = {key: data.pop(key) for key in ("owner", "name", "kind")}
            obj.pk = services.source_create(actor=request.user, **required, **data).pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: KnowledgeSource) -> None:
        services.source_delete(actor=request.user, source=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # All or nothing: the stock bulk delete skips the service (and its audit record).
        with transaction.atomic():
            for source in queryset:
                services.source_delete(actor=request.user, source=source)

    # --- Actions: permitted globally (a role) or on the sources a user owns ------------------------------------------

    def _owns_any(self, request: HttpRequest) -> bool:
        user = request.user
        return KnowledgeSource.objects.filter(Q(owner=user) | Q(fallback_owner=user)).exists()

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.APPROVE) or self._owns_any(request)

    def has_reindex_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.REINDEX) or self._owns_any(request)

    def _each(self, request: HttpRequest, queryset: QuerySet, act: Callable[[KnowledgeSource], Any], done: str) -> None:
        """Apply ``act`` to each source on its own: one refusal is reported and the others go on."""
        names: list[str] = []
        for source in queryset:
            try:
                act(source)
            except NotPermitted:
                refusal = f"Not allowed for {source.name}: you neither own it nor may do this for every source."
                self.message_user(request, refusal, messages.ERROR)
            except KnowledgeError as exc:
                self.message_user(request, f"{source.name}: {exc}", messages.WARNING)
            else:
                names.append(source.name)
        if names:
            self.message_user(request, f"{done} {len(names)} source(s): {', '.join(names)}.", messages.SUCCESS)

    @admin.action(description="Approve the selected sources for serving", permissions=["approve"])
    def approve_sources(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, lambda s: services.source_approve(actor=request.user, source=s), "Approved")

    @admin.action(description="Retire the selected sources (stop serving them)", permissions=["approve"])
    def retire_sources(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, lambda s: services.source_retire(actor=request.user, source=s), "Retired")

    @admin.action(description="Re-index the selected sources", permissions=["reindex"])
    def reindex_sources(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda s: services.source_reindex(actor=request.user, source=s), "Queued a run of"
        )


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["position", "heading_path", "text_preview", "token_count", "embedding_model"]
    readonly_fields = fields
    ordering = ["position"]
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The embedding (384 floats) and the tsvector are never shown: do not load them.
        return super().get_queryset(request).defer("embedding", "search_vector")

    @admin.display(description="text")
    def text_preview(self, chunk: Chunk) -> str:
        return Truncator(chunk.text).chars(300)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "source", "external_id", "content_type", "status", "chunk_count", "ingested_at"]
    list_filter = ["status", "content_type", ("source", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["source"]
    search_fields = ["title", "external_id"]
    readonly_fields = [
        "source",
        "external_id",
        "title",
        "url",
        "version",
        "content_type",
        "content_hash",
        "status",
        "error",
        "chunk_count",
        "ingested_at",
        "updated_at",
    ]
    inlines = [ChunkInline]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents come from their source's origin or the API

    def has_change_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False  # re-index the source, or upload a new version

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_remove(actor=request.user, document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for document in queryset.select_related("source"):
                services.document_remove(actor=request.user, document=document)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IngestionRun)
class IngestionRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "source",
        "status",
        "progress",
        "documents_failed",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    list_select_related = ["source", "requested_by"]
    readonly_fields = [
        "source",
        "status",
        "progress",
        "documents_total",
        "documents_done",
        "documents_unchanged",
        "documents_failed",
        "documents_removed",
        "error_list",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields
    show_full_result_count = False

    @admin.display(description="progress")
    def progress(self, run: IngestionRun) -> str:
        seen = run.documents_done + run.documents_unchanged + run.documents_failed
        return f"{seen} / {run.documents_total}" if run.documents_total else "—"

    @admin.display(description="errors")
    def error_list(self, run: IngestionRun) -> str:
        if not run.errors:
            return "—"
        items = format_html_join(
            "",
            "<li><code>{}</code>: {}</li>",
            ((error.get("external_id") or "(the source)", error.get("reason", "")) for error in run.errors),
        )
        return format_html("<ul>{}</ul>", items)


@admin.register(FailedRetrieval)
class FailedRetrievalAdmin(ReadOnlyAdmin):
    list_display = ["query_preview", "audience", "products", "best_score", "conversation_id", "created_at"]
    list_filter = ["audience"]
    search_fields = ["query"]
    date_hierarchy = "created_at"
    readonly_fields = ["query", "audience", "products", "best_score", "best_chunk", "conversation_id", "created_at"]
    fields = readonly_fields
    show_full_result_count = False

    @admin.display(description="query")
    def query_preview(self, failed: FailedRetrieval) -> str:
        return Truncator(failed.query).chars(100)
