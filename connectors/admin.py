"""Admin of connectors: which outside systems the agent reaches, how, who owns them and how healthy they are.

Saves go through connectors.services (validated and audited); support admins change every connector, an owner only
their own (a django-guardian object permission). Write receipts are evidence and read-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from guardian.shortcuts import get_objects_for_user

from connectors.base import ADAPTERS
from connectors.gateway import connector_disable
from connectors.models import Connector, WriteReceipt
from connectors.services import (
    ADMIN_ONLY_FIELDS,
    EDITABLE_FIELDS,
    connector_check_health,
    connector_config_errors,
    connector_create,
    connector_delete,
    connector_enable,
    connector_may_change,
    connector_update,
)
from connectors.webhooks import (
    SIGNED_ADAPTERS,
    TOKEN_ADAPTERS,
    connector_webhook_secret_set,
    connector_webhook_token_rotate,
)
from governance.admin.base import GovernedAdmin
from governance.exceptions import NotPermitted

FAILING_AFTER = 3  # consecutive failures before a connector reads as failing rather than degraded


# --- Health --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    state: str  # healthy | degraded | failing | disabled | unknown
    label: str
    colour: str


def connector_health(connector: Connector) -> Health:
    """Say how a connector is doing from what the gateway recorded of its last calls."""
    if not connector.enabled:
        return Health("disabled", "Disabled", "#ba2121")
    failures = connector.consecutive_failures
    if failures >= FAILING_AFTER:
        return Health("failing", f"Failing ({failures} calls in a row)", "#ba2121")
    if failures:
        return Health("degraded", f"Last call failed ({failures} in a row)", "#b7791f")
    if connector.last_success_at is not None:
        return Health("healthy", "Healthy", "#2f855a")
    return Health("unknown", "Not used yet", "#666666")


def _when(moment: Any) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "never"


# --- Form ------------------------------------------------------------------------------------------------------------


class ConfigField(forms.JSONField):
    """The config as indented JSON, so a person can read and edit it."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class ConnectorForm(forms.ModelForm):
    adapter = forms.ChoiceField(help_text="Which adapter speaks to the system.")
    config = ConfigField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 28, "cols": 100, "style": "font-family: monospace"}),
        help_text="Adapter settings as JSON. For the REST adapters: authentication, endpoints and the JSON paths of "
        "fields (docs/connectors/rest-and-demo-system.md).",
    )

    class Meta:
        model = Connector
        fields = [
            "key",
            "name",
            "family",
            "adapter",
            "is_primary",
            "base_url",
            "credential",
            "timeout_seconds",
            "config",
            "owner",
            "fallback_owner",
            "webhook_secret",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "adapter" in self.fields:
            self.fields["adapter"].choices = [(key, key) for key in sorted(ADAPTERS)]

    def clean_config(self) -> Any:
        config = self.cleaned_data.get("config")
        return {} if config is None else config

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        adapter = cleaned.get("adapter", self.instance.adapter)
        family = cleaned.get("family", self.instance.family)
        if adapter and family and "config" not in self.errors:
            config = cleaned.get("config", self.instance.config)
            for name, problems in connector_config_errors(adapter=adapter, family=family, config=config).items():
                self.add_error(name if name in self.fields else None, problems)
        return cleaned


# --- Connectors ------------------------------------------------------------------------------------------------------


@admin.register(Connector)
class ConnectorAdmin(GovernedAdmin):
    form = ConnectorForm
    list_display = [
        "key",
        "name",
        "family",
        "adapter",
        "is_primary",
        "enabled",
        "health",
        "disabled_reason",
        "owner",
    ]
    list_display_links = ["key", "name"]
    list_filter = ["family", "enabled"]
    search_fields = ["key", "name", "base_url"]
    search_help_text = "Key, name or base URL."
    list_select_related = ["owner"]
    autocomplete_fields = ["owner", "fallback_owner"]
    actions = ["check_health", "enable", "disable", "rotate_webhook_token"]

    _HEALTH_FIELDS = [
        "health",
        "enabled",
        "disabled_reason",
        "last_success_at",
        "last_error_at",
        "last_error",
        "consecutive_failures",
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Connector | None = None) -> list[Any]:
        fieldsets: list[Any] = [
            (
                "Connector",
                {
                    "fields": ["key", "name", "family", "adapter", "is_primary"],
                    "description": "Field mappings name the connector by its key (their 'system'); the agent uses "
                    "the primary connector of each family.",
                },
            ),
            (
                "How to reach it",
                {
                    "fields": ["base_url", "credential", "timeout_seconds", "config"],
                    "description": "The credential is a secret, shown by name: its value is never shown here.",
                },
            ),
            ("Owners", {"fields": ["owner", "fallback_owner"], "description": "Told when the connector is disabled."}),
        ]
        if obj is not None and obj.adapter in SIGNED_ADAPTERS:
            fieldsets.append(
                (
                    "Webhooks",
                    {
                        "fields": ["webhook_secret", "webhook_url"],
                        "description": "Ticket outcomes (solved, reopened, first reply) come back from the "
                        "helpdesk to this URL, signed with the signing secret (docs/connectors/webhooks.md).",
                    },
                )
            )
        elif obj is not None and obj.adapter in TOKEN_ADAPTERS:
            fieldsets.append(
                (
                    "Webhooks",
                    {
                        "fields": ["webhook_url"],
                        "description": "Ticket outcomes come back from the helpdesk to this URL; its last part is "
                        "the secret that proves the sender, so treat the URL as a password. The action 'New webhook "
                        "URL' replaces it (docs/connectors/webhooks.md).",
                    },
                )
            )
        if obj is not None:
            fieldsets.append(("Health", {"fields": self._HEALTH_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Connector | None = None) -> list[str]:
        if obj is None:
            return []
        fields = ["key", "webhook_url", *self._HEALTH_FIELDS]  # the key is fixed: field mappings refer to it
        if not self._has_model_permission(request, "change"):
            # An owner edits how their connector reaches the system; what it is and who owns it is for admins.
            fields += list(ADMIN_ONLY_FIELDS)
        return fields

    # --- Permissions: the model permission, or the owner's object permission -----------------------------------------

    def _has_model_permission(self, request: HttpRequest, action: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{action}_{self.opts.model_name}")

    def _owned(self, request: HttpRequest) -> set[int]:
        """Ids of the connectors this user holds the object permission on (one query, kept for the request)."""
        owned = getattr(request, "_steward_owned_connectors", None)
        if owned is None:
            owned = set(
                get_objects_for_user(
                    request.user, "connectors.change_connector", klass=Connector, accept_global_perms=False
                ).values_list("pk", flat=True)
            )
            request._steward_owned_connectors = owned  # type: ignore[attr-defined]
        return owned

    def _allowed(self, request: HttpRequest, obj: Connector | None, *actions: str) -> bool:
        if any(self._has_model_permission(request, action) for action in actions):
            return True
        owned = self._owned(request)
        return bool(owned) if obj is None else obj.pk in owned

    # has_module_permission stays Django's (model permissions only): it runs on every admin page to build the menu,
    # and asking guardian there would add queries to every page of every app for every user without them. An owner
    # who is not a support admin opens their connectors at /admin/connectors/connector/.

    def has_view_permission(self, request: HttpRequest, obj: Connector | None = None) -> bool:
        return self._allowed(request, obj, "view", "change")

    def has_change_permission(self, request: HttpRequest, obj: Connector | None = None) -> bool:
        return self._allowed(request, obj, "change")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connector]:
        queryset = super().get_queryset(request)
        if self._has_model_permission(request, "view") or self._has_model_permission(request, "change"):
            return queryset
        return queryset.filter(pk__in=self._owned(request))

    # --- Saving through connectors.services ----------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Connector, form: Any, change: bool) -> None:
        if not change:
            created = connector_create(
                actor=request.user,
                key=obj.key,
                **{name: getattr(obj, name) for name in EDITABLE_FIELDS},
            )
            obj.pk = created.pk
        else:
            changes = {name: getattr(obj, name) for name in form.changed_data if name in EDITABLE_FIELDS}
            if changes or "webhook_secret" not in form.changed_data:
                connector_update(actor=request.user, connector=obj, **changes)
        if "webhook_secret" in form.changed_data:
            connector_webhook_secret_set(actor=request.user, connector=obj, secret=obj.webhook_secret)
        obj.refresh_from_db()
        if obj.adapter in TOKEN_ADAPTERS and not obj.webhook_token:
            connector_webhook_token_rotate(actor=request.user, connector=obj)

    def delete_model(self, request: HttpRequest, obj: Connector) -> None:
        connector_delete(actor=request.user, connector=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Connector]) -> None:
        with transaction.atomic():  # all or nothing
            for connector in queryset.select_related("owner"):
                connector_delete(actor=request.user, connector=connector)

    # --- Display -------------------------------------------------------------------------------------------------

    @admin.display(description="Health")
    def health(self, connector: Connector) -> str:
        health = connector_health(connector)
        detail = f"Last success: {_when(connector.last_success_at)}. Last error: {_when(connector.last_error_at)}"
        if connector.last_error:
            detail += f": {connector.last_error[:300]}"
        return format_html(
            '<span class="connector-health connector-health-{}" style="color: {}; font-weight: bold" title="{}">'
            "● {}</span>",
            health.state,
            health.colour,
            detail,
            health.label,
        )

    @admin.display(description="Webhook URL")
    def webhook_url(self, connector: Connector) -> str:
        if connector.adapter in SIGNED_ADAPTERS:
            path = reverse("hooks:signed", kwargs={"connector_key": connector.key})
        elif connector.adapter not in TOKEN_ADAPTERS:
            return "-"
        elif not connector.webhook_token:
            return "None yet: save the connector, or use the action 'New webhook URL'."
        else:
            path = reverse("hooks:token", kwargs={"connector_key": connector.key, "token": connector.webhook_token})
        return settings.SITE_URL.rstrip("/") + path

    # --- Actions -------------------------------------------------------------------------------------------------

    def _mine(self, request: HttpRequest, queryset: QuerySet[Connector]) -> tuple[list[Connector], list[str]]:
        """Split the selection into the connectors this user may change and the names of the others."""
        mine, others = [], []
        for connector in queryset.select_related("credential", "owner", "fallback_owner"):
            (mine if connector_may_change(request.user, connector) else others).append(connector)
        return mine, [connector.name for connector in others]

    def _report_skipped(self, request: HttpRequest, skipped: list[str]) -> None:
        if skipped:
            self.message_user(request, f"Skipped, not yours to change: {', '.join(skipped)}.", messages.WARNING)

    @admin.action(description="Check health now", permissions=["change"])
    def check_health(self, request: HttpRequest, queryset: QuerySet[Connector]) -> None:
        mine, skipped = self._mine(request, queryset)
        for connector in mine:
            result = connector_check_health(actor=request.user, connector=connector)
            if result.ok:
                self.message_user(request, f"{connector.name}: healthy, it answered.", messages.SUCCESS)
            else:
                self.message_user(request, f"{connector.name}: failed. {result.message}", messages.ERROR)
        self._report_skipped(request, skipped)

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Connector]) -> None:
        mine, skipped = self._mine(request, queryset)
        enabled, already = [], []
        for connector in mine:
            try:
                (enabled if connector_enable(actor=request.user, connector=connector) else already).append(
                    connector.name
                )
            except NotPermitted:
                skipped.append(connector.name)
        if enabled:
            self.message_user(request, f"Enabled: {', '.join(enabled)}.", messages.SUCCESS)
        if already:
            self.message_user(request, f"Already enabled: {', '.join(already)}.", messages.INFO)
        self._report_skipped(request, skipped)

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Connector]) -> None:
        mine, skipped = self._mine(request, queryset)
        reason = f"disabled by {request.user.get_username()} in the admin"
        disabled = [c.name for c in mine if connector_disable(connector=c, actor=request.user, reason=reason)]
        if disabled:
            self.message_user(request, f"Disabled (owners told): {', '.join(disabled)}.", messages.SUCCESS)
        already = [c.name for c in mine if c.name not in disabled]
        if already:
            self.message_user(request, f"Already disabled: {', '.join(already)}.", messages.INFO)
        self._report_skipped(request, skipped)

    @admin.action(description="New webhook URL (the old one stops working)", permissions=["change"])
    def rotate_webhook_token(self, request: HttpRequest, queryset: QuerySet[Connector]) -> None:
        mine, skipped = self._mine(request, queryset)
        for connector in mine:
            if connector.adapter not in TOKEN_ADAPTERS:
                self.message_user(
                    request, f"{connector.name}: its webhooks are signed, not addressed by a token.", messages.INFO
                )
                continue
            connector_webhook_token_rotate(actor=request.user, connector=connector)
            self.message_user(
                request,
                f"{connector.name}: new webhook URL {self.webhook_url(connector)} — put it in the helpdesk's "
                "webhook settings; the old URL no longer works.",
                messages.SUCCESS,
            )
        self._report_skipped(request, skipped)


# --- Write receipts --------------------------------------------------------------------------------------------------


@admin.register(WriteReceipt)
class WriteReceiptAdmin(admin.ModelAdmin):
    """Outside writes by idempotency key: evidence of what was done (or is unknown), never edited by hand."""

    list_display = ["idempotency_key", "operation", "connector", "state", "created_at"]
    list_filter = ["state"]
    search_fields = ["idempotency_key", "operation"]
    search_help_text = "Idempotency key or operation."
    list_select_related = ["connector"]
    readonly_fields = ["idempotency_key", "connector", "operation", "state", "result", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WriteReceipt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WriteReceipt | None = None) -> bool:
        return False
