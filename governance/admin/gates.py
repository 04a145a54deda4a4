"""Rollout admin: each channel's stage, the gates between stages with their criteria and sign-offs, every evaluation.

A channel's stage moves only through governance.gates (an evaluation, or a roll back by hand), never by a form: the
stage is read-only once the channel exists, and sign-offs are given and withdrawn with permissioned actions.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils.html import format_html, format_html_join

from governance.admin.base import GovernedAdmin
from governance.admin.readiness import readiness_urls
from governance.exceptions import GovernanceError
from governance.gates import (
    SIGNOFF_PERMISSION,
    rollout_gate_evaluate,
    rollout_gate_revoke_sign_off,
    rollout_gate_sign_off,
    rollout_stage_roll_back,
    signoffs_missing,
)
from governance.metrics import METRICS, RATE
from governance.models import ChannelRollout, GateCriterion, GateEvaluation, GateSignOff, RolloutGate
from governance.models.gates import GateOutcome, SignOffKind

# --- Channels ------------------------------------------------------------------------------------------------------


class ChannelRolloutForm(forms.ModelForm):
    class Meta:
        model = ChannelRollout
        fields = ["channel", "stage", "traffic_percent"]
        help_texts = {
            "channel": "Where customers talk to the agent, e.g. web_chat or email. Cannot be changed later.",
            "stage": "Where this channel starts. From then on the stage moves only through its gates: up when the "
            "gate into the next stage opens, down when a rollback criterion is met or someone rolls it back.",
            "traffic_percent": "Share of this channel's conversations the agent takes; the rest go straight to a "
            "person. Set to the gate's launch share each time the channel moves up.",
        }


@admin.register(ChannelRollout)
class ChannelRolloutAdmin(GovernedAdmin):
    form = ChannelRolloutForm
    list_display = ["channel", "stage", "traffic_percent", "last_outcome", "last_evaluated_at", "links", "updated_at"]
    list_filter = ["stage"]
    search_fields = ["channel"]
    actions = ["evaluate_now", "roll_back_one_stage"]
    # No foreign keys to select: the last evaluation comes from two subqueries on gate_eval_channel_recent.
    list_select_related = False

    def get_urls(self) -> list[URLPattern]:
        return readiness_urls(self) + super().get_urls()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        latest = GateEvaluation.objects.filter(channel=OuterRef("pk")).order_by("-evaluated_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_outcome_value=Subquery(latest.values("outcome")[:1]),
                last_evaluated_at=Subquery(latest.values("evaluated_at")[:1]),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: ChannelRollout | None = None) -> list[str]:
        return ["channel", "stage", "updated_at"] if obj else ["updated_at"]

    @admin.display(description="last evaluation")
    def last_outcome(self, obj: ChannelRollout) -> str:
        value = getattr(obj, "last_outcome_value", None)
        return GateOutcome(value).label if value else "never evaluated"

    @admin.display(description="last evaluated", ordering="last_evaluated_at")
    def last_evaluated_at(self, obj: ChannelRollout) -> Any:
        return getattr(obj, "last_evaluated_at", None)

    @admin.display(description="")
    def links(self, obj: ChannelRollout) -> str:
        gates = reverse("admin:governance_rolloutgate_changelist") + f"?channel__id__exact={obj.pk}"
        evaluations = reverse("admin:governance_gateevaluation_changelist") + f"?channel__id__exact={obj.pk}"
        return format_html('<a href="{}">gates</a> · <a href="{}">evaluations</a>', gates, evaluations)

    def save_model(self, request: HttpRequest, obj: ChannelRollout, form: Any, change: bool) -> None:
        with transaction.atomic():
            if change:
                # Take the stage as it stands, under the lock the gate services take: saving the traffic share must
                # never write back a stage an evaluation moved after this form was opened.
                obj.stage = ChannelRollout.objects.select_for_update().values_list("stage", flat=True).get(pk=obj.pk)
            super().save_model(request, obj, form, change)

    @admin.action(description="Evaluate the gates of the selected channels now", permissions=["change"])
    def evaluate_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            try:
                evaluation = rollout_gate_evaluate(channel=channel, actor=request.user)
            except GovernanceError as exc:
                self.message_user(request, f"{channel.channel}: {exc}", messages.WARNING)
                continue
            moved = evaluation.stage_after != evaluation.stage_before
            self.message_user(
                request,
                f"{channel.channel}: {evaluation.get_outcome_display().lower()} at stage {evaluation.stage_after}"
                f" — {evaluation.reason}",
                messages.SUCCESS if moved else messages.INFO,
            )

    @admin.action(description="Roll the selected channels back one stage", permissions=["change"])
    def roll_back_one_stage(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            try:
                evaluation = rollout_stage_roll_back(channel=channel, actor=request.user, reason="from the admin")
            except GovernanceError as exc:
                self.message_user(request, f"{channel.channel}: {exc}", messages.WARNING)
                continue
            self.message_user(
                request,
                f"{channel.channel}: rolled back from stage {evaluation.stage_before} to {evaluation.stage_after}.",
                messages.SUCCESS,
            )


# --- Gates ---------------------------------------------------------------------------------------------------------


def _metric_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} — {info.description}") for name, info in METRICS.items()]


class GateCriterionForm(forms.ModelForm):
    # Choices are read when the form is built, so metrics an app adds to the catalogue appear without a deploy here.
    metric = forms.ChoiceField(choices=_metric_choices, help_text="What is measured (from analytics).")
    min_sample = forms.IntegerField(
        min_value=0,
        required=False,
        initial=0,
        help_text="Smallest sample (conversations, reviews or cases) the value must come from; below it the "
        "criterion is not met. Empty or 0: any sample.",
    )

    class Meta:
        model = GateCriterion
        fields = ["kind", "metric", "intent", "comparator", "threshold", "window_days", "min_sample", "cautious_bound"]
        help_texts = {
            "kind": "Entry: must hold before a channel may enter this stage. Rollback: when it holds, a channel at "
            "this stage drops back one stage at once.",
            "intent": "Only for a per-intent metric (QA pass rate): the intent's name. Empty: all conversations.",
            "threshold": "Shares are between 0 and 1 (0.9 means 90 %); CSAT is a score from 1 to 5.",
            "window_days": "The metric is read over this many past days.",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        info, threshold = METRICS.get(data.get("metric", "")), data.get("threshold")
        if info is not None and info.unit == RATE and threshold is not None and not 0 <= threshold <= 1:
            self.add_error("threshold", "This metric is a share between 0 and 1: write 0.9 for 90 %.")
        if data.get("window_days") == 0:
            self.add_error("window_days", "Read the metric over at least one day.")
        if data.get("min_sample") is None:
            data["min_sample"] = 0
        return data


class GateCriterionInline(admin.TabularInline):
    model = GateCriterion
    form = GateCriterionForm
    extra = 0


class GateSignOffInline(admin.TabularInline):
    """Sign-offs as given; they are given and withdrawn with the gate actions, which check the permission."""

    model = GateSignOff
    fields = ["kind", "signed_by", "signed_at", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "sign-offs given (use the actions on the gate list to sign off or withdraw)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("signed_by")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RolloutGateForm(forms.ModelForm):
    required_signoffs = forms.TypedMultipleChoiceField(
        choices=SignOffKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Required sign-offs",
        help_text="People who must sign off before a channel may enter this stage. With none ticked, the gate opens "
        "on its entry criteria alone, on the 15-minute schedule.",
    )

    class Meta:
        model = RolloutGate
        fields = ["channel", "stage", "required_signoffs", "traffic_percent"]
        help_texts = {
            "stage": "The stage this gate lets a channel enter (2 to 5). Its rollback criteria apply while the "
            "channel stands at this stage.",
            "traffic_percent": "Launch share: when a channel enters this stage, the agent takes this share of its "
            "conversations (100 for a full launch).",
        }


@admin.register(RolloutGate)
class RolloutGateAdmin(GovernedAdmin):
    form = RolloutGateForm
    list_display = ["__str__", "channel", "stage", "traffic_percent", "criteria_summary", "signoff_status"]
    list_filter = ["stage", "channel"]
    list_select_related = ["channel"]
    inlines = [GateCriterionInline, GateSignOffInline]
    actions = ["sign_off_permission_scope_review", "sign_off_support_owner", "withdraw_sign_offs"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Two queries for the whole page, whatever its length.
        return super().get_queryset(request).prefetch_related("criteria", "signoffs")

    def get_readonly_fields(self, request: HttpRequest, obj: RolloutGate | None = None) -> list[str]:
        return ["channel", "stage"] if obj else []

    @admin.display(description="criteria")
    def criteria_summary(self, obj: RolloutGate) -> str:
        kinds = [criterion.kind for criterion in obj.criteria.all()]
        return f"{kinds.count('entry')} entry, {kinds.count('rollback')} rollback"

    @admin.display(description="sign-offs")
    def signoff_status(self, obj: RolloutGate) -> str:
        if not obj.required_signoffs:
            return "none required"
        missing = signoffs_missing(obj.required_signoffs, [s.kind for s in obj.signoffs.all()])
        labels = ", ".join(SignOffKind(kind).label for kind in missing if kind in SignOffKind.values)
        return f"missing: {labels}" if missing else "all given"

    def has_signoff_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SIGNOFF_PERMISSION)

    def _for_each_gate(self, request: HttpRequest, queryset: QuerySet, act: Any, verb: str) -> None:
        done = 0
        for gate in queryset:
            try:
                done += act(gate)
            except GovernanceError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} sign-off(s).", messages.SUCCESS)

    def _sign(self, request: HttpRequest, queryset: QuerySet, kind: str) -> None:
        def sign(gate: RolloutGate) -> int:
            rollout_gate_sign_off(gate=gate, kind=kind, actor=request.user, note="signed in the admin")
            return 1

        self._for_each_gate(request, queryset, sign, "Gave")

    @admin.action(description="Sign off: permission scope review", permissions=["signoff"])
    def sign_off_permission_scope_review(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._sign(request, queryset, SignOffKind.PERMISSION_SCOPE_REVIEW)

    @admin.action(description="Sign off: support owner", permissions=["signoff"])
    def sign_off_support_owner(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._sign(request, queryset, SignOffKind.SUPPORT_OWNER)

    @admin.action(description="Withdraw the sign-offs of the selected gates", permissions=["signoff"])
    def withdraw_sign_offs(self, request: HttpRequest, queryset: QuerySet) -> None:
        def withdraw(gate: RolloutGate) -> int:
            kinds = [signoff.kind for signoff in gate.signoffs.all()]
            for kind in kinds:
                rollout_gate_revoke_sign_off(gate=gate, kind=kind, actor=request.user, reason="withdrawn in the admin")
            return len(kinds)

        self._for_each_gate(request, queryset, withdraw, "Withdrew")


# --- Evaluations ---------------------------------------------------------------------------------------------------


@admin.register(GateEvaluation)
class GateEvaluationAdmin(admin.ModelAdmin):
    """Every evaluation, as evidence: read-only."""

    list_display = ["evaluated_at", "channel", "outcome", "stages", "reason"]
    list_filter = ["outcome", "channel"]
    list_select_related = ["channel"]
    fields = ["channel", "evaluated_at", "outcome", "stage_before", "stage_after", "reason", "criteria"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="stage")
    def stages(self, obj: GateEvaluation) -> str:
        return (
            f"{obj.stage_before} → {obj.stage_after}" if obj.stage_before != obj.stage_after else str(obj.stage_after)
        )

    @admin.display(description="criteria")
    def criteria(self, obj: GateEvaluation) -> str:
        if not obj.results:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"gate into {row.get('gate_stage')}",
                    row.get("kind", ""),
                    row.get("text", ""),
                    "met" if row.get("met") else "not met",
                )
                for row in obj.results
            ),
        )
        return format_html("<table><tbody>{}</tbody></table>", rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # evaluations come from governance.gates

    def has_change_permission(self, request: HttpRequest, obj: GateEvaluation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: GateEvaluation | None = None) -> bool:
        return False  # evidence
