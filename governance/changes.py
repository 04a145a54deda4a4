"""Governed configuration changes: one service saves or deletes a configuration row and audits it, old and new values,
in the same transaction. Admin forms, APIs and commands all come through here (STYLE.md rule 1)."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.forms.models import model_to_dict

from governance.audit import Actor, audit_record
from governance.models import EventType

# Never copied into audit records.
_SECRET_FIELDS = {"ciphertext", "password", "webhook_token"}  # webhook_token: a URL that authenticates


def _snapshot(instance: models.Model) -> dict[str, Any]:
    data = model_to_dict(instance)
    for field in instance._meta.concrete_fields:
        if not field.editable and field.name not in _SECRET_FIELDS:
            data[field.attname] = getattr(instance, field.attname)
    return {key: value for key, value in data.items() if key not in _SECRET_FIELDS}


def _service_owned_fields(instance: models.Model) -> list[models.Field]:
    return [
        field
        for field in instance._meta.concrete_fields
        if not field.editable and not field.primary_key and not getattr(field, "auto_now", False)
    ]


@transaction.atomic
def config_object_save(*, actor: Actor, instance: models.Model, reason: str = "") -> models.Model:
    """Validate and save a configuration row; audit what changed (or that it was created).

    Columns no form sets (``editable=False`` and not ``auto_now``: a rule's ``last_applied_at``, a secret's
    ``ciphertext``) keep their stored values: services own them, and an admin form loaded before a service wrote one
    must not put the old value back.
    """
    instance.full_clean()
    before: dict[str, Any] = {}
    if instance.pk is not None:
        previous = type(instance)._default_manager.select_for_update().filter(pk=instance.pk).first()
        before = _snapshot(previous) if previous is not None else {}
        if previous is not None:
            for field in _service_owned_fields(instance):
                setattr(instance, field.attname, getattr(previous, field.attname))
    creating = not before
    instance.save()
    after = _snapshot(instance)
    changes = {key: {"old": before.get(key), "new": value} for key, value in after.items() if before.get(key) != value}
    if creating or changes:
        audit_record(
            actor=actor,
            event_type=EventType.CONFIG_CREATED if creating else EventType.CONFIG_CHANGED,
            subject=instance,
            fields=sorted(changes),
            changes=changes,
            reason=reason,
        )
    return instance


@transaction.atomic
def config_object_delete(*, actor: Actor, instance: models.Model, reason: str = "") -> None:
    """Delete a configuration row; audit its last values."""
    snapshot = _snapshot(instance)
    subject_type, subject_id = instance._meta.label_lower, str(instance.pk)
    instance.delete()
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_DELETED,
        subject_type=subject_type,
        subject_id=subject_id,
        changes={key: {"old": value, "new": None} for key, value in snapshot.items()},
        reason=reason,
    )
