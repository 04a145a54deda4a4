"""Connector configuration: create, update, enable, delete and check connectors.

Every change is saved and audited through governance.changes in one transaction (STYLE.md rule 1). Who may change a
connector: a user with the model permission ``connectors.change_connector`` (support admins) changes every one; a
connector's owner holds that permission on their own row (a django-guardian object permission, moved when the owner
changes) and changes only that one. ``actor=None`` is the system (the demo seed) and is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from connectors.base import ADAPTERS, ConnectorError
from connectors.gateway import adapter_for, call
from connectors.models import Connector
from governance.audit import Actor, audit_record
from governance.changes import config_object_delete, config_object_save
from governance.exceptions import GovernanceError, NotPermitted
from governance.models import EventType, SecretReference
from governance.roles import Principal

CHANGE_PERMISSION = "connectors.change_connector"
# What an owner holds on their own connector.
OWNER_PERMISSIONS = ("connectors.view_connector", "connectors.change_connector")
# What connector_update may change; the key is fixed (field mappings name it), health is the gateway's, and
# enabling/disabling has services of its own.
EDITABLE_FIELDS = (
    "name",
    "family",
    "adapter",
    "is_primary",
    "base_url",
    "credential",
    "config",
    "timeout_seconds",
    "owner",
    "fallback_owner",
)


# What only a user with the model permission may change: what the connector is, and who owns it. An owner changes how
# their connector reaches its system (name, base URL, credential, timeout, config).
ADMIN_ONLY_FIELDS = ("family", "adapter", "is_primary", "owner", "fallback_owner")


def connector_may_change(user: AbstractBaseUser, connector: Connector) -> bool:
    """Whether ``user`` may change this connector: every connector with the model permission, else only their own."""
    return bool(user.is_active and (user.has_perm(CHANGE_PERMISSION) or user.has_perm(CHANGE_PERMISSION, connector)))


def _require_change(actor: Actor, connector: Connector) -> None:
    if isinstance(actor, AbstractBaseUser) and not connector_may_change(actor, connector):
        raise NotPermitted(f"You may not change the connector {connector.name}: it is not yours.")


def connector_config_errors(*, adapter: str, family: str, config: Any) -> dict[str, list[str]]:
    """Return what is wrong with an adapter, family and config together, by form field (empty when all is fine)."""
    adapter_class = ADAPTERS.get(adapter)
    if adapter_class is None:
        return {"adapter": [f"No adapter is called {adapter!r}; these are: {', '.join(sorted(ADAPTERS))}."]}
    errors: dict[str, list[str]] = {}
    if adapter_class.family != family:
        errors["family"] = [f"The {adapter} adapter speaks to {adapter_class.family} systems, not {family}."]
    # Adapters configured by Connector.config (the REST adapters) say what is wrong with it.
    config_errors = getattr(adapter_class, "config_errors", None)
    if config_errors is not None and (problems := config_errors(config)):
        errors["config"] = problems
    return errors


def _validate(connector: Connector) -> None:
    if errors := connector_config_errors(adapter=connector.adapter, family=connector.family, config=connector.config):
        raise ValidationError(errors)


def _grant_owner(connector: Connector, owner: AbstractBaseUser) -> None:
    for permission in OWNER_PERMISSIONS:
        assign_perm(permission, owner, connector)


def _revoke_owner(connector: Connector, owner: AbstractBaseUser) -> None:
    for permission in OWNER_PERMISSIONS:
        remove_perm(permission, owner, connector)


@transaction.atomic
def connector_create(
    *,
    actor: Actor,
    key: str,
    name: str,
    family: str,
    adapter: str,
    owner: AbstractBaseUser,
    base_url: str = "",
    credential: SecretReference | None = None,
    config: dict[str, Any] | None = None,
    is_primary: bool = False,
    fallback_owner: AbstractBaseUser | None = None,
    timeout_seconds: float = 10.0,
) -> Connector:
    """Create a connector (validated, audited); its owner may edit it from now on."""
    if isinstance(actor, AbstractBaseUser) and not actor.has_perm("connectors.add_connector"):
        raise NotPermitted("You may not add connectors.")
    connector = Connector(
        key=key,
        name=name,
        family=family,
        adapter=adapter,
        owner=owner,
        base_url=base_url,
        credential=credential,
        config=config if config is not None else {},
        is_primary=is_primary,
        fallback_owner=fallback_owner,
        timeout_seconds=timeout_seconds,
    )
    _validate(connector)
    config_object_save(actor=actor, instance=connector)
    _grant_owner(connector, owner)
    return connector


@transaction.atomic
def connector_update(*, actor: Actor, connector: Connector, **changes: Any) -> Connector:
    """Change a connector's settings (see EDITABLE_FIELDS); audited with old and new values. A new owner takes over
    the object permission from the old one."""
    if unknown := sorted(set(changes) - set(EDITABLE_FIELDS)):
        raise TypeError(f"connector_update cannot change {', '.join(unknown)}")
    locked = Connector.objects.select_for_update().get(pk=connector.pk)
    _require_change(actor, locked)
    admin_only = sorted(name for name in changes if name in ADMIN_ONLY_FIELDS)
    if admin_only and isinstance(actor, AbstractBaseUser) and not actor.has_perm(CHANGE_PERMISSION):
        raise NotPermitted(f"Only a support admin may change {', '.join(admin_only)} of a connector.")
    previous_owner = locked.owner
    for name, value in changes.items():
        setattr(locked, name, value)
    _validate(locked)
    config_object_save(actor=actor, instance=locked)
    if locked.owner_id != previous_owner.pk:
        _revoke_owner(locked, previous_owner)
        _grant_owner(locked, locked.owner)
    return locked


@transaction.atomic
def connector_enable(*, actor: Actor, connector: Connector) -> bool:
    """Enable a disabled connector and clear why it was disabled (audited); return whether this call enabled it."""
    locked = Connector.objects.select_for_update().get(pk=connector.pk)
    _require_change(actor, locked)
    if locked.enabled:
        return False
    Connector.objects.filter(pk=locked.pk).update(enabled=True, disabled_reason="")
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_CHANGED,
        subject=locked,
        fields=["disabled_reason", "enabled"],
        changes={"enabled": {"old": False, "new": True}, "disabled_reason": {"old": locked.disabled_reason, "new": ""}},
        reason="enabled again",
    )
    return True


@transaction.atomic
def connector_delete(*, actor: Actor, connector: Connector) -> None:
    """Delete a connector (audited with its last values) and its owner's object permissions."""
    if isinstance(actor, AbstractBaseUser) and not actor.has_perm("connectors.delete_connector"):
        raise NotPermitted("You may not delete connectors.")
    _revoke_owner(connector, connector.owner)
    config_object_delete(actor=actor, instance=connector)


@dataclass(frozen=True)
class HealthCheck:
    ok: bool
    message: str


def connector_check_health(*, actor: Actor, connector: Connector) -> HealthCheck:
    """Ask the outside system whether it answers with this credential, now; the outcome is recorded on the connector
    (gateway.call), and a refused credential disables it and tells its owners. Runs on a disabled connector too, so
    that a fix can be confirmed before enabling it."""
    _require_change(actor, connector)
    if isinstance(actor, AbstractBaseUser):
        principal = Principal.staff(actor)
    else:
        principal = Principal.system("connector health check")
    try:
        adapter = adapter_for(connector, principal=principal, purpose="connector health check")
        call(connector, adapter.health_check)
    except (ConnectorError, GovernanceError) as exc:  # GovernanceError: the credential's value cannot be read
        return HealthCheck(ok=False, message=str(exc))
    return HealthCheck(ok=True, message="answered")
