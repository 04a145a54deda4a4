"""The base of every governed admin: saves and deletes go through the audited services, never raw saves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.forms import SimpleArrayField
from django.db import models, transaction
from django.http import HttpRequest

from governance.changes import config_object_delete, config_object_save
from governance.roles import Role, Verification

_CUSTOMER_VERIFICATION = {
    Verification.ANONYMOUS: "any visitor",
    Verification.EMAIL_VERIFIED: "email verified",
    Verification.IDENTITY_VERIFIED: "identity verified",
}


def describe_scope(roles: Sequence[str], min_verification: int) -> str:
    """Return who may do something as a support admin says it: "Customer (identity verified), Support agent"."""
    if not roles:
        return "Nobody"
    parts = []
    for role in roles:
        if role == Role.CUSTOMER:
            parts.append(f"Customer ({_CUSTOMER_VERIFICATION.get(min_verification, 'verification unknown')})")
        else:
            parts.append(Role(role).label if role in Role.values else role)
    return ", ".join(parts)


class LinesArrayField(SimpleArrayField):
    """A list edited one item a line (items may contain commas, e.g. allowed values); blank lines are ignored."""

    def __init__(self, base_field: forms.Field, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "cols": 60}))
        super().__init__(base_field, delimiter="\n", **kwargs)

    def to_python(self, value: Any) -> list[Any]:
        if isinstance(value, str):
            value = "\n".join(line.strip() for line in value.splitlines() if line.strip())
        return super().to_python(value)


class GovernedAdmin(admin.ModelAdmin):
    """save_model / delete_model / delete_queryset delegate to governance.changes (the bulk delete of the stock
    admin would skip Model.delete() and the audit).

    Lists are edited as a person would: a list of choices (roles) as checkboxes, any other list one item a line.
    """

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest, **kwargs: Any) -> forms.Field | None:
        if isinstance(db_field, ArrayField):
            if db_field.base_field.choices:
                return forms.TypedMultipleChoiceField(
                    choices=db_field.base_field.choices,
                    widget=forms.CheckboxSelectMultiple,
                    required=not db_field.blank,
                    label=db_field.verbose_name.capitalize(),
                    help_text=db_field.help_text,
                )
            return db_field.formfield(form_class=LinesArrayField, **kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        config_object_save(actor=request.user, instance=obj)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        config_object_delete(actor=request.user, instance=obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        # All or nothing: the admin's bulk delete runs outside a transaction, and a failure on row 5 must not leave
        # rows 1-4 deleted.
        with transaction.atomic():
            for obj in queryset:
                config_object_delete(actor=request.user, instance=obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            config_object_delete(actor=request.user, instance=obj)
        for obj in instances:
            config_object_save(actor=request.user, instance=obj)
        formset.save_m2m()
