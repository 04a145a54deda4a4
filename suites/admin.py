"""Admin for regression suites: suites with their cases (JSON Lines import and export, "Run"), runs with progress
and per-case results, case results. Writes go through suites.services and governance.changes (audited)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from agent.admin import EvidenceAdmin
from governance.admin.base import GovernedAdmin
from suites.expectations import ScriptError
from suites.models import CaseResult, RegressionCase, RegressionSuite, RunStatus, SuiteRun
from suites.services import SuiteError, cases_export, cases_import, suite_run_create

RUN_PERMISSION = "suites.run_regressionsuite"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


class CaseInline(admin.TabularInline):
    model = RegressionCase
    fields = ["name", "intent", "identity", "enabled", "turn_count"]
    readonly_fields = ["turn_count"]
    extra = 0
    show_change_link = True
    ordering = ["name"]

    @admin.display(description="turns")
    def turn_count(self, case: RegressionCase) -> int:
        return len(case.turns or [])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a case needs its script: added on its own page, or imported


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="JSON Lines: one case per line (docs/suites.md). Cases of the same name are replaced."
    )


@admin.register(RegressionSuite)
class RegressionSuiteAdmin(GovernedAdmin):
    list_display = ["name", "channel", "stage", "k", "case_total", "latest_run"]
    search_fields = ["name", "description"]
    filter_horizontal = ["gates"]
    inlines = [CaseInline]
    readonly_fields = ["snapshot_summary", "snapshot_recorded_at", "created_at", "updated_at"]
    fields = ["name", "description", "channel", "stage", "k", "gates", *readonly_fields]
    actions = ["run_suites"]
    change_form_template = "admin/suites/regressionsuite/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        latest = SuiteRun.objects.filter(suite=OuterRef("pk")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                case_count=Count("cases", distinct=True),
                latest_run_id=Subquery(latest.values("pk")[:1]),
                latest_status=Subquery(latest.values("status")[:1]),
                latest_pass_hat_k=Subquery(latest.values("pass_hat_k")[:1]),
            )
        )

    @admin.display(description="cases", ordering="case_count")
    def case_total(self, suite: RegressionSuite) -> int:
        return getattr(suite, "case_count", 0)

    @admin.display(description="latest run")
    def latest_run(self, suite: RegressionSuite) -> str:
        if not getattr(suite, "latest_run_id", None):
            return "-"
        rate = suite.latest_pass_hat_k
        shown = f"{suite.latest_status}, {rate:.0%} passed" if rate is not None else suite.latest_status
        url = reverse("admin:suites_suiterun_change", args=[suite.latest_run_id])
        return format_html('<a href="{}">{}</a>', url, shown)

    @admin.display(description="snapshot")
    def snapshot_summary(self, suite: RegressionSuite) -> str:
        if not suite.snapshot:
            return "none: reads go to the configured systems (record one: manage.py run_suite NAME --record-snapshot)"
        return "; ".join(
            f"{key}: {len(part.get('objects', {}))} objects, {len(part.get('customers', {}))} customer lookups"
            for key, part in sorted(suite.snapshot.items())
        )

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    @admin.action(description="Run the selected suites", permissions=["run"])
    def run_suites(self, request: HttpRequest, queryset: QuerySet[RegressionSuite]) -> None:
        for suite in queryset:
            self._queue(request, suite)

    def _queue(self, request: HttpRequest, suite: RegressionSuite) -> SuiteRun | None:
        try:
            run = suite_run_create(suite=suite, actor=request.user)
        except SuiteError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return None
        self.message_user(request, f"Queued a run of {suite.name} (k={run.k}).", messages.SUCCESS)
        return run

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/run/", wrap(require_POST(self.run_view)), name="suites_regressionsuite_run"),
            path("<int:pk>/export/", wrap(self.export_view), name="suites_regressionsuite_export"),
            path("<int:pk>/import/", wrap(self.import_view), name="suites_regressionsuite_import"),
            *super().get_urls(),
        ]

    def run_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        suite = get_object_or_404(RegressionSuite, pk=pk)
        if not self.has_run_permission(request):
            self.message_user(request, "You may not run regression suites.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:suites_regressionsuite_change", args=[pk]))
        run = self._queue(request, suite)
        if run is None:
            return HttpResponseRedirect(reverse("admin:suites_regressionsuite_change", args=[pk]))
        return HttpResponseRedirect(reverse("admin:suites_suiterun_change", args=[run.pk]))

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        suite = get_object_or_404(RegressionSuite, pk=pk)
        if not self.has_view_permission(request, suite):
            return HttpResponse("You may not view this suite.", status=403)
        response = HttpResponse(cases_export(suite), content_type="application/x-ndjson; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{suite.name}-cases.jsonl"'
        return response

    def import_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        suite = get_object_or_404(RegressionSuite, pk=pk)
        if not self.has_change_permission(request, suite) or not request.user.has_perm("suites.add_regressioncase"):
            return HttpResponse("You may not change this suite's cases.", status=403)
        form = ImportForm(request.POST or None, request.FILES or None)
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > MAX_UPLOAD_BYTES:
                    raise ScriptError(f"the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB")
                try:
                    text = upload.read().decode("utf-8")
                except UnicodeDecodeError:
                    raise ScriptError("the file is not UTF-8 text") from None
                counts = cases_import(suite=suite, text=text, actor=request.user)
            except ScriptError as exc:
                errors = str(exc).split("; ")
            else:
                done = f"Imported {counts['created']} new and {counts['updated']} replaced cases."
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:suites_regressionsuite_change", args=[pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import cases into {suite.name}",
            "suite": suite,
            "form": form,
            "errors": errors,
            "opts": self.model._meta,
        }
        template = "admin/suites/regressionsuite/import.html"
        return TemplateResponse(request, template, context, status=400 if errors else 200)


@admin.register(RegressionCase)
class RegressionCaseAdmin(GovernedAdmin):
    list_display = ["name", "suite", "intent", "identity", "enabled", "updated_at"]
    list_select_related = ["suite"]
    list_filter = ["suite", "identity", "enabled"]
    search_fields = ["name", "intent"]
    readonly_fields = ["created_by", "source_conversation_id", "created_at", "updated_at"]
    fields = ["suite", "name", "intent", "identity", "identity_email", "identity_customer_id", "turns", "enabled"]
    fields += readonly_fields

    def save_model(self, request: HttpRequest, obj: RegressionCase, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class CaseResultInline(admin.TabularInline):
    model = CaseResult
    fields = ["case_link", "attempt", "passed", "duration_ms", "failed_expectations"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["case_name", "attempt"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="case")
    def case_link(self, result: CaseResult) -> str:
        url = reverse("admin:suites_caseresult_change", args=[result.pk])
        return format_html('<a href="{}">{}</a>', url, result.case_name)

    @admin.display(description="failed")
    def failed_expectations(self, result: CaseResult) -> str:
        return failure_lines(result)


def failure_lines(result: CaseResult) -> str:
    if result.error:
        return result.error
    failed = [
        (number, e["expectation"].get("type", ""), e["got"])
        for number, turn in enumerate(result.turns or [], start=1)
        for e in turn.get("expectations", [])
        if not e.get("passed")
    ]
    return format_html_join("", "<div>turn {}: {} — got {}</div>", failed) or "-"


@admin.register(SuiteRun)
class SuiteRunAdmin(EvidenceAdmin):
    list_display = ["__str__", "suite", "status", "progress", "passed_cases", "pass_rate", "pass_hat_k", "k"]
    list_display += ["duration_ms", "created_at", "requested_by"]
    list_select_related = ["suite", "requested_by"]
    list_filter = ["status", "suite"]
    date_hierarchy = "created_at"
    fields = ["suite", "status", "progress", "k", "passed_cases", "pass_rate", "pass_hat_k", "intents", "failure_list"]
    fields += ["duration_ms", "config_shown", "error", "requested_by", "created_at", "started_at", "finished_at"]
    readonly_fields = fields
    inlines = [CaseResultInline]
    change_form_template = "admin/suites/suiterun/change_form.html"

    # Progress is read by the run's page while it runs (a small JSON view, polled).
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/progress/", wrap(self.progress_view), name="suites_suiterun_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not view suite runs."}, status=403)
        run = SuiteRun.objects.filter(pk=pk).first()
        if run is None:
            return JsonResponse({"error": f"No suite run {pk}."}, status=404)
        return JsonResponse(
            {
                "status": run.status,
                "finished": run.status in (RunStatus.DONE, RunStatus.FAILED),
                "cases_done": run.cases_done,
                "cases": run.cases,
                "passed": run.passed,
                "pass_rate": run.pass_rate,
                "pass_hat_k": run.pass_hat_k,
            }
        )

    @admin.display(description="passed")
    def passed_cases(self, run: SuiteRun) -> str:
        return f"{run.passed} / {run.cases}" if run.passed is not None else "-"

    @admin.display(description="by intent")
    def intents(self, run: SuiteRun) -> str:
        rows = [(intent or "(none)", f["passed"], f["cases"]) for intent, f in (run.by_intent or {}).items()]
        return format_html_join("", "<div>{}: {} / {}</div>", rows) or "-"

    @admin.display(description="failures")
    def failure_list(self, run: SuiteRun) -> str:
        rows = [(f["case"], f.get("attempt"), f["turn"], f["expectation"], f["got"]) for f in run.failures or []]
        return format_html_join("", "<div>{} #{} turn {}: {} — got {}</div>", rows) or "none"

    @admin.display(description="configuration")
    def config_shown(self, run: SuiteRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.config, indent=2, ensure_ascii=False))


@admin.register(CaseResult)
class CaseResultAdmin(EvidenceAdmin):
    list_display = ["case_name", "run", "attempt", "passed", "duration_ms", "conversation_id"]
    list_select_related = ["run__suite"]
    list_filter = ["passed", "run__suite"]
    search_fields = ["case_name", "conversation_id"]
    raw_id_fields = ["run", "case"]
    fields = ["run", "case_name", "intent", "attempt", "passed", "duration_ms", "conversation_id", "error"]
    fields += ["failed", "transcript", "would_execute_shown"]
    readonly_fields = fields

    @admin.display(description="failed expectations")
    def failed(self, result: CaseResult) -> str:
        return failure_lines(result)

    @admin.display(description="turns")
    def transcript(self, result: CaseResult) -> str:
        return format_html("<pre>{}</pre>", json.dumps(result.turns, indent=2, ensure_ascii=False))

    @admin.display(description="would have executed (dry run)")
    def would_execute_shown(self, result: CaseResult) -> str:
        return format_html("<pre>{}</pre>", json.dumps(result.would_execute, indent=2, ensure_ascii=False))
