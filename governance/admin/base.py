"""The base of every governed admin: saves and deletes go through the audited services, never raw saves."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from governance.changes import config_object_delete, config_object_save


class GovernedAdmin(admin.ModelAdmin):
    """save_model / delete_model / delete_queryset delegate to governance.changes (the bulk delete of the stock
    admin would skip Model.delete() and the audit)."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        config_object_save(actor=request.user, instance=obj)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        config_object_delete(actor=request.user, instance=obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        for obj in queryset:
            config_object_delete(actor=request.user, instance=obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            config_object_delete(actor=request.user, instance=obj)
        for obj in instances:
            config_object_save(actor=request.user, instance=obj)
        formset.save_m2m()
