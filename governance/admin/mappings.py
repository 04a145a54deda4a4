"""Admin for field mappings: which outside fields the agent may read or change, for whom, and who answers for them."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from governance.admin.base import GovernedAdmin, describe_scope
from governance.models import FieldMapping, ValueRule

# The mapping's identity: changing it would re-point every scope below at another field, so it is fixed once created
# (delete the mapping and add one for the other field instead).
_IDENTITY = ["system", "object", "field_path"]


@admin.register(FieldMapping)
class FieldMappingAdmin(GovernedAdmin):
    list_display = ["system", "object", "field_path", "label", "owner", "read_scope", "write_scope", "enabled"]
    list_display_links = ["field_path", "label"]
    list_filter = ["system", "object", "enabled", "audit_evidence_required"]
    search_fields = ["system", "object", "field_path", "label", "purpose"]
    search_help_text = "System, object, field path, label or purpose."
    list_select_related = ["owner"]
    autocomplete_fields = ["owner", "fallback_owner"]
    readonly_fields = ["updated_at"]
    fieldsets = [
        (
            "Identity",
            {
                "fields": ["system", "object", "field_path", "label", "purpose", "enabled"],
                "description": "The outside field this mapping opens to the agent. A field without a mapping is "
                "invisible to the agent; a disabled mapping counts as none.",
            },
        ),
        ("Owners", {"fields": ["owner", "fallback_owner"]}),
        (
            "Read scope",
            {
                "fields": ["read_roles", "read_min_verification"],
                "description": "Who may see this field's value. Staff are always identity verified; the "
                "verification level applies to customers talking to the agent.",
            },
        ),
        (
            "Write scope and allowed values",
            {
                "fields": [
                    "write_roles",
                    "write_min_verification",
                    "value_rule",
                    "allowed_choices",
                    "allowed_pattern",
                    ("allowed_min", "allowed_max"),
                ],
                "description": "Who may change this field, and which values a change may set. No roles means the "
                "field is read-only.",
            },
        ),
        ("Retention and evidence", {"fields": ["retention_days", "audit_evidence_required", "updated_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: FieldMapping | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return fields + _IDENTITY if obj is not None else fields

    @admin.display(description="Who may read")
    def read_scope(self, mapping: FieldMapping) -> str:
        return describe_scope(mapping.read_roles, mapping.read_min_verification)

    @admin.display(description="Who may write")
    def write_scope(self, mapping: FieldMapping) -> str:
        if not mapping.write_roles:
            return "Nobody (read-only)"
        scope = describe_scope(mapping.write_roles, mapping.write_min_verification)
        return f"{scope} · {_allowed_values(mapping)}"


def _allowed_values(mapping: FieldMapping) -> str:
    if mapping.value_rule == ValueRule.CHOICES:
        count = len(mapping.allowed_choices)
        return f"one of {count} value{'s' if count != 1 else ''}"
    if mapping.value_rule == ValueRule.PATTERN:
        return "matching a pattern"
    if mapping.value_rule == ValueRule.RANGE:
        low = "" if mapping.allowed_min is None else f"{mapping.allowed_min}"
        high = "" if mapping.allowed_max is None else f"{mapping.allowed_max}"
        return f"from {low or '…'} to {high or '…'}"
    return "any value"
