"""Admin for action policies (what the agent may do, at which tier and limits) and escalation rules."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from governance.admin.base import GovernedAdmin, describe_scope
from governance.models import ActionPolicy, EscalationRule, EscalationTrigger


@admin.register(ActionPolicy)
class ActionPolicyAdmin(GovernedAdmin):
    list_display = ["action", "label", "tier", "who_may", "limits", "enabled_from_stage", "enabled"]
    list_filter = ["tier", "enabled_from_stage", "min_verification", "enabled"]
    search_fields = ["action", "label", "description"]
    search_help_text = "Action name, label or description."
    readonly_fields = ["updated_at"]
    fieldsets = [
        (
            "Action",
            {
                "fields": ["action", "label", "description", "enabled"],
                "description": "One tool the agent can use. A disabled action is refused whatever the rules below.",
            },
        ),
        (
            "Tier and who may take it",
            {"fields": ["tier", "allowed_roles", "min_verification", "enabled_from_stage"]},
        ),
        (
            "Limits",
            {
                "fields": ["limit_argument", ("automated_limit", "hard_limit")],
                "description": "Optional. Up to the automated limit the tier applies; between the two a person must "
                "approve; above the hard limit the action is refused.",
            },
        ),
        ("Approval", {"fields": ["approver_roles", "approval_expiry_hours", "updated_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: ActionPolicy | None = None) -> list[str]:
        # The action name is the tool's name in code: renaming it would detach the policy from its tool.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "action"] if obj is not None else fields

    @admin.display(description="Who may take it")
    def who_may(self, policy: ActionPolicy) -> str:
        return describe_scope(policy.allowed_roles, policy.min_verification)

    @admin.display(description="Limits")
    def limits(self, policy: ActionPolicy) -> str:
        parts = []
        if policy.automated_limit is not None:
            parts.append(f"approval above {policy.automated_limit}")
        if policy.hard_limit is not None:
            parts.append(f"refused above {policy.hard_limit}")
        if not parts:
            return "None"
        return f"{policy.limit_argument}: {', '.join(parts)}"


@admin.register(EscalationRule)
class EscalationRuleAdmin(GovernedAdmin):
    list_display = ["name", "trigger", "fires_when", "queue", "priority", "enabled"]
    list_filter = ["trigger", "enabled"]
    search_fields = ["name", "description", "queue"]
    search_help_text = "Name, description or helpdesk queue."
    fieldsets = [
        ("Rule", {"fields": ["name", "description", "enabled"]}),
        (
            "When it fires",
            {
                "fields": ["trigger", "threshold", "keywords", "account_tiers"],
                "description": "Checked every turn. Fill in what the trigger needs: a threshold for low confidence, "
                "frustration, loops and refunds; phrases for compliance and requests for a person; account tiers "
                "for VIPs.",
            },
        ),
        (
            "Where it goes",
            {
                "fields": ["queue", "priority"],
                "description": "The conversation goes to a person with a helpdesk ticket in this queue.",
            },
        ),
    ]

    @admin.display(description="Fires when")
    def fires_when(self, rule: EscalationRule) -> str:
        if rule.trigger in (EscalationTrigger.COMPLIANCE, EscalationTrigger.HUMAN_REQUESTED):
            return _first_few(rule.keywords, "phrases") or "No phrases set"
        if rule.trigger == EscalationTrigger.VIP:
            return _first_few(rule.account_tiers, "tiers") or "No tiers set"
        if rule.trigger == EscalationTrigger.CONNECTOR_FAILURE:
            return "A connector fails"
        if rule.threshold is None:
            return "No threshold set"
        return {
            EscalationTrigger.LOW_CONFIDENCE: f"Confidence below {rule.threshold}",
            EscalationTrigger.FRUSTRATION: f"Sentiment below {rule.threshold}",
            EscalationTrigger.LOOP: f"After {rule.threshold.to_integral_value()} turns without progress",
            EscalationTrigger.REFUND_OVER_POLICY: f"Refund above {rule.threshold}",
        }.get(rule.trigger, str(rule.threshold))


def _first_few(items: list[str], noun: str, shown: int = 3) -> str:
    if not items:
        return ""
    text = ", ".join(f"“{item}”" for item in items[:shown])
    return f"{text} and {len(items) - shown} more {noun}" if len(items) > shown else text
