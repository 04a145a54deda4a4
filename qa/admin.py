"""QA in admin: sampling rules and the scorecard are governed configuration (saved through the audited services);
review items and reviews are read-only evidence; fix requests are listed to their owners, who close them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from agent.admin import EvidenceAdmin
from governance.admin.base import GovernedAdmin
from qa.models import (
    ConversationFlag,
    CriterionScore,
    FixRequest,
    FixStatus,
    Review,
    ReviewAssignment,
    ReviewItem,
    ReviewReason,
    SamplingRule,
    ScorecardCriterion,
    TurnAnnotation,
)
from qa.services.fixes import fix_request_close, may_close


@admin.register(SamplingRule)
class SamplingRuleAdmin(GovernedAdmin):
    list_display = ["name", "kind", "setting", "lookback_days", "channel", "double_review_percent", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    readonly_fields = ["updated_at"]
    fieldsets = [
        ("Rule", {"fields": ["name", "kind", "enabled", "channel"]}),
        (
            "What it takes",
            {
                "fields": ["share_percent", "threshold", "first_n", "lookback_days"],
                "description": "Fill in what the kind needs: a share for random sampling, a threshold for low "
                "confidence (e.g. 0.45) or negative ratings (default 2), N for a new or changed intent.",
            },
        ),
        ("Agreement", {"fields": ["double_review_percent", "updated_at"]}),
    ]

    @admin.display(description="Setting")
    def setting(self, rule: SamplingRule) -> str:
        if rule.kind == "random_closed":
            return f"{rule.share_percent}%"
        if rule.kind in ("low_confidence", "negative_csat"):
            return f"threshold {rule.threshold if rule.threshold is not None else 'default'}"
        if rule.kind == "new_intent":
            return f"first {rule.first_n}"
        return "—"


@admin.register(ScorecardCriterion)
class ScorecardCriterionAdmin(GovernedAdmin):
    list_display = ["name", "order", "weight", "auto_fail", "applies_to", "enabled"]
    list_filter = ["applies_to", "auto_fail", "enabled"]
    search_fields = ["name", "guidance"]
    readonly_fields = ["updated_at"]


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReasonInline(_ReadOnlyInline):
    model = ReviewReason
    fields = ["rule", "detail", "created_at"]
    readonly_fields = fields


class AssignmentInline(_ReadOnlyInline):
    model = ReviewAssignment
    fields = ["reviewer", "created_at"]
    readonly_fields = fields


@admin.register(ReviewItem)
class ReviewItemAdmin(EvidenceAdmin):
    list_display = ["pk", "conversation", "status", "reviews_needed", "verdict", "created_at", "finalised_at"]
    list_filter = ["status", "reviews_needed"]
    list_select_related = ["conversation", "final_review"]
    search_fields = ["=conversation__id"]
    search_help_text = "The conversation's full id."
    date_hierarchy = "created_at"
    show_full_result_count = False  # the count(*) of a big table on every page
    readonly_fields = [
        "conversation",
        "status",
        "reviews_needed",
        "final_review",
        "finalised_at",
        "settled_by",
        "settle_note",
    ]
    inlines = [ReasonInline, AssignmentInline]

    @admin.display(description="Verdict")
    def verdict(self, item: ReviewItem) -> str:
        review = item.final_review
        if review is None:
            return "—"
        return f"{'passed' if review.passed else 'failed'} ({review.score if review.score is not None else '—'})"


class ScoreInline(_ReadOnlyInline):
    model = CriterionScore
    fields = ["criterion", "result", "weight", "auto_fail", "comment"]
    readonly_fields = fields


class AnnotationInline(_ReadOnlyInline):
    model = TurnAnnotation
    fields = ["trace", "note"]
    readonly_fields = fields


@admin.register(Review)
class ReviewAdmin(EvidenceAdmin):
    list_display = [
        "pk",
        "item",
        "reviewer",
        "score",
        "passed",
        "escalation_needed",
        "policy_breach",
        "resolved",
        "submitted_at",
    ]
    list_filter = ["passed", "escalation_needed", "policy_breach", "resolved"]
    list_select_related = ["item", "reviewer"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False
    inlines = [ScoreInline, AnnotationInline]
    readonly_fields = [
        "item",
        "reviewer",
        "submitted_at",
        "score",
        "passed",
        "pass_mark",
        "escalation_needed",
        "policy_breach",
        "breached_policy",
        "resolved",
        "was_escalated",
        "comment",
    ]


@admin.register(FixRequest)
class FixRequestAdmin(admin.ModelAdmin):
    """Owners of knowledge sources see the requests made to them (and close them); QA staff see all."""

    list_display = ["pk", "what", "owner", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    list_select_related = ["source", "owner", "document"]
    search_fields = ["missing_topic", "note", "source__name"]
    actions = ["close_requests"]
    readonly_fields = [
        "source",
        "document",
        "missing_topic",
        "owner",
        "review",
        "conversation",
        "note",
        "requested_by",
        "status",
        "created_at",
        "closed_at",
        "close_reason",
    ]

    def _sees_all(self, request: HttpRequest) -> bool:
        return request.user.has_perm("qa.view_fixrequest")

    def _own(self, request: HttpRequest) -> Q:
        return Q(owner=request.user) | Q(source__fallback_owner=request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[FixRequest]:
        queryset = super().get_queryset(request)
        return queryset if self._sees_all(request) else queryset.filter(self._own(request))

    # As in connectors/admin.py: the menu asks model permissions only. It is built on every admin page, and asking
    # whether this user owns a fix request there would add a query to every page for every user. An owner without
    # the model permission opens their requests from the e-mail's link (/admin/qa/fixrequest/).
    def has_module_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_authenticated and user.is_active and user.is_staff and self._sees_all(request))

    def has_view_permission(self, request: HttpRequest, obj: FixRequest | None = None) -> bool:
        user = request.user
        # The admin's login page builds its context too, with nobody signed in.
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return False
        if self._sees_all(request):
            return True
        if obj is None:
            return FixRequest.objects.filter(self._own(request)).exists()
        return request.user.pk in (obj.owner_id, obj.source.fallback_owner_id if obj.source else None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made from a review (qa/views.py), where the conversation and the cited source are known

    def has_change_permission(self, request: HttpRequest, obj: FixRequest | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: FixRequest | None = None) -> bool:
        return False

    def has_close_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    @admin.display(description="What")
    def what(self, fix: FixRequest) -> str:
        if fix.source_id is None:
            return f"missing: {fix.missing_topic}"
        return f"{fix.source.name}{f' › {fix.document.title}' if fix.document_id else ''}"

    @admin.action(description="Close the selected requests (fixed)", permissions=["close"])
    def close_requests(self, request: HttpRequest, queryset: QuerySet[FixRequest]) -> None:
        closed = refused = 0
        for fix in queryset.filter(status=FixStatus.OPEN).select_related("source"):
            if not may_close(request.user, fix):
                refused += 1
                continue
            closed += fix_request_close(fix=fix, actor=request.user, reason=f"closed by {request.user.get_username()}")
        self.message_user(request, f"Closed {closed} request{'s' if closed != 1 else ''}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{refused} not yours to close.", messages.WARNING)


@admin.register(ConversationFlag)
class ConversationFlagAdmin(EvidenceAdmin):
    list_display = ["conversation", "flagged_by", "note", "created_at"]
    list_select_related = ["conversation", "flagged_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False
