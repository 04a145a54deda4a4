"""Admin for secrets: connector credentials by reference. A value can be typed in (it is encrypted at once) but never
shown again, not even to the person who typed it; every change goes through governance.secrets and is audited."""

from __future__ import annotations

import os
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from governance.admin.base import GovernedAdmin
from governance.exceptions import GovernanceError
from governance.models import SecretKind, SecretReference
from governance.secrets import (
    env_var_errors,
    secret_create,
    secret_input_errors,
    secret_reencrypt_all,
    secret_rotate,
    secret_update,
    secrets_encryption_available,
)

_NEW_VALUE_HELP = (
    "Leave empty to keep the current value. A new value replaces it at once (a rotation): connectors use it from "
    "their next call, and the audit log records who rotated it, never the value."
)


class SecretReferenceForm(forms.ModelForm):
    # Write-only: PasswordInput(render_value=False) never puts a value back into the page, and the form has no
    # initial value to put there anyway.
    value = forms.CharField(
        label="Value",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="For an encrypted secret: the credential. It is encrypted when you save and never shown again.",
    )

    class Meta:
        model = SecretReference
        fields = ["name", "description", "kind", "env_var", "owner"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "value" in self.fields:
            self.fields["value"].label = "New value"
            self.fields["value"].help_text = _NEW_VALUE_HELP

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is None:
            errors = secret_input_errors(
                kind=cleaned.get("kind") or "", env_var=cleaned.get("env_var") or "", value=cleaned.get("value")
            )
        else:
            errors = {}
            if "env_var" in self.changed_data and (problems := env_var_errors(cleaned.get("env_var") or "")):
                errors["env_var"] = problems
            if cleaned.get("value") and not secrets_encryption_available():
                errors["value"] = ["Encrypted secrets need STEWARD_SECRETS_KEYS, which is not set on this server."]
        for field, problems in errors.items():
            self.add_error(field if field in self.fields else None, problems)
        return cleaned


@admin.register(SecretReference)
class SecretReferenceAdmin(GovernedAdmin):
    form = SecretReferenceForm
    list_display = ["name", "kind", "value_status", "owner", "last_read_at"]
    list_filter = ["kind"]
    search_fields = ["name", "description", "env_var"]
    search_help_text = "Name, description or environment variable."
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]

    # --- Permissions ---------------------------------------------------------------------------------------------

    def has_rotate_permission(self, request: HttpRequest, obj: SecretReference | None = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.rotate_secretreference")

    # --- Forms -----------------------------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: SecretReference | None = None) -> list[Any]:
        if obj is None:
            return [
                ("Secret", {"fields": ["name", "description", "kind", "owner"]}),
                (
                    "Where the value is",
                    {
                        "fields": ["env_var", "value"],
                        "description": "An environment variable: give its name; the value stays in the server's "
                        "environment. Encrypted in the database: type the value; it is encrypted at once and never "
                        "shown again.",
                    },
                ),
            ]
        where = ["kind", "value_status"]
        if obj.kind == SecretKind.ENVIRONMENT:
            where.append("env_var")
        elif self.has_rotate_permission(request, obj):
            where.append("value")
        return [
            ("Secret", {"fields": ["name", "description", "owner"]}),
            ("Where the value is", {"fields": where}),
            ("History", {"fields": ["created_at", "rotated_at", "last_read_at"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: SecretReference | None = None) -> list[str]:
        if obj is None:
            return []
        # Connectors refer to the name, and another kind is another secret: both are fixed once created.
        return ["name", "kind", "value_status", "created_at", "rotated_at", "last_read_at"]

    # --- Saving through governance.secrets ---------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: SecretReference, form: Any, change: bool) -> None:
        value = form.cleaned_data.get("value") or None
        if not change:
            created = secret_create(
                actor=request.user,
                name=obj.name,
                kind=obj.kind,
                owner=obj.owner,
                env_var=obj.env_var,
                value=value,
                description=obj.description,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        secret_update(
            actor=request.user,
            secret=obj,
            description=obj.description,
            owner=obj.owner,
            env_var=obj.env_var if obj.kind == SecretKind.ENVIRONMENT else None,
        )
        if value:
            if not self.has_rotate_permission(request, obj):
                raise PermissionDenied
            secret_rotate(actor=request.user, secret=obj, new_value=value)
            self.message_user(request, f"The value of “{obj.name}” was rotated.", messages.SUCCESS)
        obj.refresh_from_db()

    # --- Display ---------------------------------------------------------------------------------------------------

    @admin.display(description="Value")
    def value_status(self, secret: SecretReference) -> str:
        if secret.kind == SecretKind.ENVIRONMENT:
            # Whether the variable is set says nothing about its value; workers may see a different environment.
            present = "set" if os.environ.get(secret.env_var) else "not set"
            return f"Read from the environment variable {secret.env_var} ({present} in this web process)"
        if secret.rotated_at:
            return f"Set, rotated at {_when(secret.rotated_at)}"
        if secret.created_at:
            return f"Set on {_when(secret.created_at)}, never rotated"
        return "Set"

    # --- Re-encrypting under a new key ------------------------------------------------------------------------------

    def _admin_url(self, name: str) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}")

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("reencrypt/", self.admin_site.admin_view(self.reencrypt_view), name=f"{prefix}_reencrypt"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "has_rotate_permission": self.has_rotate_permission(request)}
        return super().changelist_view(request, extra_context)

    def reencrypt_view(self, request: HttpRequest) -> HttpResponse:
        """Confirm, then re-encrypt every encrypted secret under the first key of STEWARD_SECRETS_KEYS."""
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        changelist = self._admin_url("changelist")
        if request.method == "POST":
            try:
                count = secret_reencrypt_all(actor=request.user)
            except GovernanceError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Re-encrypted {count} secret{'s' if count != 1 else ''} under the first key of "
                    "STEWARD_SECRETS_KEYS. Older keys can now be removed from it.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": "Re-encrypt secrets under the newest key",
            "opts": self.opts,
            "encrypted_count": SecretReference.objects.filter(kind=SecretKind.ENCRYPTED).count(),
            "key_count": len(settings.STEWARD_SECRETS_KEYS),
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/governance/secretreference/reencrypt.html", context)


def _when(moment: Any) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"
