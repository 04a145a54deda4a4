"""The approval queue: support staff approve or reject actions waiting for a person."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from governance.approvals import DECIDE_PERMISSION, approval_request_approve, approval_request_reject
from governance.exceptions import GovernanceError
from governance.models import ApprovalRequest, ApprovalStatus


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", "Waiting for approval (not expired)"), *ApprovalStatus.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        from django.utils import timezone

        if self.value() == "open":
            return queryset.filter(status=ApprovalStatus.PENDING, expires_at__gt=timezone.now())
        if self.value():
            return queryset.filter(status=self.value())
        return queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "action",
        "status",
        "requester_label",
        "customer",
        "amount",
        "created_at",
        "expires_at",
        "approver",
    ]
    list_filter = [StatusFilter, "action"]
    list_select_related = ["action", "approver"]
    search_fields = ["=conversation_id", "=idempotency_key"]
    ordering = ["status", "expires_at"]
    actions = ["approve_selected", "reject_selected"]
    readonly_fields = [f.name for f in ApprovalRequest._meta.fields]
    show_full_result_count = False

    @admin.display(description="customer")
    def customer(self, obj: ApprovalRequest) -> str:
        return str(obj.principal.get("customer_id") or obj.principal.get("label") or "—")

    @admin.display(description="amount")
    def amount(self, obj: ApprovalRequest) -> str:
        argument = obj.action.limit_argument
        return str(obj.arguments.get(argument, "—")) if argument else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requests come from the agent's decisions, never typed in

    def has_change_permission(self, request: HttpRequest, obj: ApprovalRequest | None = None) -> bool:
        return False  # decided with the actions below, through the service

    def has_delete_permission(self, request: HttpRequest, obj: ApprovalRequest | None = None) -> bool:
        return False  # evidence

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION)

    def _decide(self, request: HttpRequest, queryset: QuerySet, decide, verb: str) -> None:  # type: ignore[no-untyped-def]
        done, refused = 0, []
        for approval in queryset:
            try:
                decide(request_id=approval.pk, actor=request.user)
                done += 1
            except GovernanceError as exc:
                refused.append(f"#{approval.pk}: {exc}")
        if done:
            self.message_user(request, f"{verb.capitalize()} {done} request(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not {verb}: {line}", messages.WARNING)

    @admin.action(description="Approve selected requests (executes them once)", permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, approval_request_approve, "approved")

    @admin.action(description="Reject selected requests", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, approval_request_reject, "rejected")
