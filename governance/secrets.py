"""Connector credentials by reference: an environment variable's name, or a value encrypted in the database.

Encrypted values use Fernet (AES-128-CBC with HMAC-SHA256) through ``MultiFernet`` under the keys of
``STEWARD_SECRETS_KEYS``: the first key encrypts, every key decrypts, so an operator rotates keys by putting a new key
first, running ``secret_reencrypt_all`` and then removing the old key
(https://cryptography.io/en/latest/fernet/#cryptography.fernet.MultiFernet).

The plain value exists only in the caller's memory: never in a database row, an audit record, an exception message or
the admin. Every read is audited (who, which secret, for what), never with the value.

Environment secrets are rotated where the variable is set (the deployment's secret store) and take effect when the
processes restart; ``secret_rotate`` refuses them. Pointing a secret at another variable is an ordinary, audited
change of its ``env_var`` through ``secret_update``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_record
from governance.changes import config_object_save
from governance.exceptions import SecretKeysMissing, SecretNotFound, SecretRotationRefused, SecretUnavailable
from governance.models import EventType, SecretKind, SecretReference

ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Steward's own credentials. A connector secret pointing at one of them would hand the keys to everything (the
# database, the encryption keys, the session signing key) to whichever outside system the connector talks to.
RESERVED_ENV_VARS = frozenset(
    {"SECRET_KEY", "STEWARD_SECRETS_KEYS", "DATABASE_URL", "REDIS_URL", "EMAIL_HOST_PASSWORD"}
)


def secrets_encryption_available() -> bool:
    """Return whether encrypted secrets can be created and read here (STEWARD_SECRETS_KEYS holds a key)."""
    return bool(settings.STEWARD_SECRETS_KEYS)


def _fernet() -> MultiFernet:
    keys = settings.STEWARD_SECRETS_KEYS
    if not keys:
        raise SecretKeysMissing(
            "Encrypted secrets need STEWARD_SECRETS_KEYS (comma-separated Fernet keys) in the environment; "
            "it is not set. Environment-variable secrets still work."
        )
    # Keys were validated at start-up (config/settings.py); a bad key here is a programming error and may raise.
    return MultiFernet([Fernet(key) for key in keys])


def _encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def _decrypt(secret: SecretReference) -> str:
    try:
        fernet = _fernet()
    except SecretKeysMissing:
        raise SecretKeysMissing(
            f"Secret {secret.name!r} is encrypted and STEWARD_SECRETS_KEYS is not set, so it cannot be read."
        ) from None
    try:
        return fernet.decrypt(secret.ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            f"Secret {secret.name!r} cannot be decrypted with any key in STEWARD_SECRETS_KEYS: the key it was "
            "encrypted with was removed, or the stored value was altered. Add the old key back (after the new one) "
            "or set the value again."
        ) from None


def _env_value(secret: SecretReference) -> str:
    value = os.environ.get(secret.env_var, "")
    if not value:
        raise SecretUnavailable(
            f"Secret {secret.name!r} is read from the environment variable {secret.env_var}, which is not set "
            "(or empty) in this process."
        )
    return value


def env_var_errors(env_var: str) -> list[str]:
    """Return what is wrong with an environment variable's name for a secret (empty when it is fine)."""
    if not env_var:
        return ["Name the environment variable."]
    if not ENV_VAR_NAME.fullmatch(env_var):
        return ["An environment variable name is letters, digits and _, not starting with a digit."]
    if env_var in RESERVED_ENV_VARS:
        return [f"{env_var} is one of Steward's own credentials; connectors may not read it."]
    return []


def secret_input_errors(*, kind: str, env_var: str, value: str | None) -> dict[str, list[str]]:
    """Return what is wrong with a new secret's kind, variable and value, by field (empty when all is fine)."""
    errors: dict[str, list[str]] = {}
    if kind == SecretKind.ENVIRONMENT:
        if problems := env_var_errors(env_var):
            errors["env_var"] = problems
        if value:
            errors["value"] = ["An environment secret's value lives in the environment, not in Steward."]
    elif kind == SecretKind.ENCRYPTED:
        if env_var:
            errors["env_var"] = ["An encrypted secret is not read from the environment; leave this empty."]
        if not value:
            errors["value"] = ["Give the value to encrypt."]
        elif not secrets_encryption_available():
            errors["value"] = ["Encrypted secrets need STEWARD_SECRETS_KEYS, which is not set on this server."]
    else:
        errors["kind"] = [f"Unknown kind {kind!r}."]
    return errors


@transaction.atomic
def secret_create(
    *,
    actor: Actor,
    name: str,
    kind: str,
    owner: AbstractBaseUser,
    env_var: str = "",
    value: str | None = None,
    description: str = "",
) -> SecretReference:
    """Create a secret: an environment variable's name, or ``value`` encrypted under the first key.

    Audited as a configuration creation, without the value or its ciphertext.
    """
    if errors := secret_input_errors(kind=kind, env_var=env_var, value=value):
        raise ValidationError(errors)
    secret = SecretReference(name=name, kind=kind, owner=owner, env_var=env_var, description=description)
    if kind == SecretKind.ENCRYPTED and value:  # an encrypted secret always has a value (checked above)
        secret.ciphertext = _encrypt(value)
    # governance.changes never copies `ciphertext` into the audit record.
    config_object_save(actor=actor, instance=secret)
    return secret


@transaction.atomic
def secret_update(
    *,
    actor: Actor,
    secret: SecretReference,
    description: str | None = None,
    owner: AbstractBaseUser | None = None,
    env_var: str | None = None,
) -> SecretReference:
    """Change a secret's description, owner or (for an environment secret) variable name; None leaves it as it is.

    Only these columns are written, so an edit never overwrites a value rotated meanwhile. Name and kind are fixed:
    connectors refer to the name, and a different kind is a different secret.
    """
    locked = SecretReference.objects.select_for_update().get(pk=secret.pk)
    wanted: dict[str, Any] = {}
    if description is not None:
        wanted["description"] = description
    if owner is not None:
        wanted["owner"] = owner.pk
    if env_var is not None and env_var != locked.env_var:
        if locked.kind != SecretKind.ENVIRONMENT:
            raise ValidationError({"env_var": "An encrypted secret is not read from the environment."})
        if problems := env_var_errors(env_var):
            raise ValidationError({"env_var": problems})
        wanted["env_var"] = env_var
    # Audited in governance.changes' shape: {field: {old, new}}, a foreign key as its id.
    attnames = {field: SecretReference._meta.get_field(field).attname for field in wanted}
    changes = {
        field: {"old": getattr(locked, attnames[field]), "new": new}
        for field, new in wanted.items()
        if getattr(locked, attnames[field]) != new
    }
    if changes:
        for field, change in changes.items():
            setattr(locked, attnames[field], change["new"])
        locked.save(update_fields=[attnames[field] for field in changes])
        audit_record(
            actor=actor, event_type=EventType.CONFIG_CHANGED, subject=locked, fields=sorted(changes), changes=changes
        )
    return locked


@transaction.atomic
def secret_rotate(*, actor: Actor, secret: SecretReference, new_value: str, reason: str = "") -> SecretReference:
    """Replace an encrypted secret's value; refuse an environment secret (rotate it where the variable is set)."""
    locked = SecretReference.objects.select_for_update().get(pk=secret.pk)
    if locked.kind == SecretKind.ENVIRONMENT:
        raise SecretRotationRefused(
            f"Secret {locked.name!r} is read from the environment variable {locked.env_var}: rotate it where that "
            "variable is set and restart Steward, or point the secret at another variable."
        )
    if not new_value:
        raise ValidationError({"value": "Give the new value."})
    locked.ciphertext = _encrypt(new_value)
    locked.rotated_at = timezone.now()
    locked.save(update_fields=["ciphertext", "rotated_at"])
    audit_record(
        actor=actor,
        event_type=EventType.SECRET_ROTATED,
        subject=locked,
        decision="value_rotated",
        reason=reason or "New value set.",
        data={"value_changed": True},
    )
    return locked


@transaction.atomic
def secret_reencrypt_all(*, actor: Actor) -> int:
    """Re-encrypt every encrypted secret under the first key of STEWARD_SECRETS_KEYS; return how many.

    Run it after putting a new key first; once it has run, the old keys can be removed. Values do not change. If one
    secret cannot be decrypted, nothing is re-encrypted and the error names it.
    """
    fernet = _fernet()
    count = 0
    for secret in SecretReference.objects.select_for_update().filter(kind=SecretKind.ENCRYPTED).order_by("pk"):
        try:
            secret.ciphertext = fernet.rotate(secret.ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                f"Secret {secret.name!r} cannot be decrypted with any key in STEWARD_SECRETS_KEYS, so nothing was "
                "re-encrypted. Add its key back, or set its value again, then retry."
            ) from None
        secret.save(update_fields=["ciphertext"])
        audit_record(
            actor=actor,
            event_type=EventType.SECRET_ROTATED,
            subject=secret,
            decision="reencrypted",
            reason="Re-encrypted under the first key of STEWARD_SECRETS_KEYS; the value did not change.",
            data={"value_changed": False},
        )
        count += 1
    return count


@transaction.atomic
def secret_read(*, actor: Actor, secret_or_name: SecretReference | str, purpose: str, conversation_id: str = "") -> str:
    """Return a secret's plain value for ``purpose``; audit the read (never the value) and note when it happened.

    Raise SecretNotFound for an unknown name and SecretUnavailable when the value cannot be had.
    """
    if not purpose.strip():
        raise ValueError("secret_read needs a purpose: say what the value is for (it goes into the audit record).")
    # Loaded afresh even when given an instance: a value rotated since it was loaded must not read as the old one.
    if isinstance(secret_or_name, SecretReference):
        secret = SecretReference.objects.filter(pk=secret_or_name.pk).first()
    else:
        secret = SecretReference.objects.filter(name=secret_or_name).first()
    if secret is None:
        raise SecretNotFound(f"No secret is named {str(secret_or_name)!r}.")
    value = _env_value(secret) if secret.kind == SecretKind.ENVIRONMENT else _decrypt(secret)
    now = timezone.now()
    # Only this column: a full save() could write back a ciphertext that was rotated since `secret` was loaded.
    SecretReference.objects.filter(pk=secret.pk).update(last_read_at=now)
    secret.last_read_at = now
    audit_record(
        actor=actor,
        event_type=EventType.SECRET_READ,
        subject=secret,
        conversation_id=conversation_id,
        reason=purpose,
        data={"kind": secret.kind, "env_var": secret.env_var} if secret.env_var else {"kind": secret.kind},
    )
    return value
