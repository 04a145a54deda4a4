"""Secrets: values encrypted under rotatable keys or read from the environment, never stored or shown in plain text,
every read and rotation audited without the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from governance.exceptions import SecretKeysMissing, SecretNotFound, SecretRotationRefused, SecretUnavailable
from governance.models import AuditRecord, EventType, SecretKind, SecretReference
from governance.roles import ActorKind, Principal
from governance.secrets import (
    secret_create,
    secret_read,
    secret_reencrypt_all,
    secret_rotate,
    secret_update,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VALUE = "sk_live_brewline_4242_do_not_leak"
NEW_VALUE = "sk_live_brewline_9999_rotated"

pytestmark = pytest.mark.django_db


def _key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def keys(settings: Settings) -> list[str]:
    """One fresh key in use."""
    settings.STEWARD_SECRETS_KEYS = [_key()]
    return settings.STEWARD_SECRETS_KEYS


def _stripe_key(owner: User, value: str = VALUE) -> SecretReference:
    return secret_create(
        actor=owner, name="stripe_api_key", kind=SecretKind.ENCRYPTED, owner=owner, value=value, description="Refunds"
    )


def _table_text(table: str) -> str:
    """Every row of a table as JSON text, straight from the database."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(string_agg(row_to_json(t)::text, '\n'), '') FROM {table} t")
        return cursor.fetchone()[0]


# --- Encrypted secrets -----------------------------------------------------------------------------------------------


def test_an_encrypted_secret_reads_back_its_value(keys: list[str], support_admin: User) -> None:
    secret = _stripe_key(support_admin)
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund BL-10042") == VALUE
    assert secret_read(actor=None, secret_or_name=secret, purpose="refund BL-10042") == VALUE


def test_the_plain_value_is_never_stored_in_the_database(keys: list[str], support_admin: User) -> None:
    secret = _stripe_key(support_admin)
    row = _table_text("governance_secretreference")
    assert VALUE not in row
    assert secret.ciphertext and secret.ciphertext in row
    assert Fernet(keys[0]).decrypt(secret.ciphertext.encode()).decode() == VALUE


def test_audit_records_never_contain_the_value_nor_its_ciphertext(
    keys: list[str], support_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = _stripe_key(support_admin)
    ciphertexts = [secret.ciphertext]
    secret_read(actor=None, secret_or_name=secret, purpose="refund")
    secret_update(actor=support_admin, secret=secret, description="Refunds and pauses")
    ciphertexts.append(secret_rotate(actor=support_admin, secret=secret, new_value=NEW_VALUE).ciphertext)
    secret_read(actor=None, secret_or_name=secret, purpose="refund")
    secret_reencrypt_all(actor=support_admin)
    ciphertexts.append(SecretReference.objects.get(pk=secret.pk).ciphertext)

    events = list(AuditRecord.objects.order_by("seq").values_list("event_type", flat=True))
    assert events == [
        EventType.CONFIG_CREATED,
        EventType.SECRET_READ,
        EventType.CONFIG_CHANGED,
        EventType.SECRET_ROTATED,
        EventType.SECRET_READ,
        EventType.SECRET_ROTATED,
    ]
    audit = _table_text("governance_auditrecord")
    for leaked in (VALUE, NEW_VALUE, *ciphertexts):
        assert leaked not in audit
    assert "ciphertext" not in audit


def test_a_read_is_audited_with_who_which_secret_and_why(keys: list[str], support_admin: User) -> None:
    secret = _stripe_key(support_admin)
    agent = Principal(kind=ActorKind.AGENT, label="AI agent")

    secret_read(actor=agent, secret_or_name="stripe_api_key", purpose="refund BL-10042", conversation_id="conv-7")

    record = AuditRecord.objects.get(event_type=EventType.SECRET_READ)
    assert (record.actor_kind, record.actor_label) == (ActorKind.AGENT, "AI agent")
    assert (record.subject_type, record.subject_id) == ("governance.secretreference", str(secret.pk))
    assert record.reason == "refund BL-10042"
    assert record.conversation_id == "conv-7"
    secret.refresh_from_db()
    assert secret.last_read_at is not None


def test_a_read_needs_a_purpose(keys: list[str], support_admin: User) -> None:
    _stripe_key(support_admin)
    with pytest.raises(ValueError, match="needs a purpose"):
        secret_read(actor=None, secret_or_name="stripe_api_key", purpose=" ")
    assert not AuditRecord.objects.filter(event_type=EventType.SECRET_READ).exists()


def test_reading_an_unknown_name_raises_secret_not_found(keys: list[str]) -> None:
    with pytest.raises(SecretNotFound, match="'shopify_token'"):
        secret_read(actor=None, secret_or_name="shopify_token", purpose="order lookup")


def test_an_encrypted_secret_needs_a_value(keys: list[str], support_admin: User) -> None:
    with pytest.raises(ValidationError) as error:
        secret_create(actor=support_admin, name="empty", kind=SecretKind.ENCRYPTED, owner=support_admin, value="")
    assert "value" in error.value.message_dict
    assert not SecretReference.objects.exists()


# --- Rotation ---------------------------------------------------------------------------------------------------


def test_rotation_replaces_the_value_and_is_audited(keys: list[str], support_admin: User) -> None:
    secret = _stripe_key(support_admin)
    old_ciphertext = secret.ciphertext

    rotated = secret_rotate(actor=support_admin, secret=secret, new_value=NEW_VALUE)

    assert rotated.ciphertext != old_ciphertext
    assert rotated.rotated_at is not None
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund") == NEW_VALUE
    record = AuditRecord.objects.get(event_type=EventType.SECRET_ROTATED)
    assert (record.actor_user_id, record.decision) == (support_admin.pk, "value_rotated")
    assert record.data == {"value_changed": True}


def test_a_read_through_an_instance_loaded_before_a_rotation_gets_the_new_value(
    keys: list[str], support_admin: User
) -> None:
    stale = _stripe_key(support_admin)
    secret_rotate(actor=support_admin, secret=SecretReference.objects.get(pk=stale.pk), new_value=NEW_VALUE)
    assert secret_read(actor=None, secret_or_name=stale, purpose="refund") == NEW_VALUE


def test_a_new_key_put_first_still_reads_values_encrypted_under_the_old_one(
    settings: Settings, support_admin: User
) -> None:
    old, new = _key(), _key()
    settings.STEWARD_SECRETS_KEYS = [old]
    _stripe_key(support_admin)

    settings.STEWARD_SECRETS_KEYS = [new, old]

    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund") == VALUE


def test_reencrypting_moves_every_secret_to_the_first_key_so_the_old_one_can_go(
    settings: Settings, support_admin: User
) -> None:
    old, new = _key(), _key()
    settings.STEWARD_SECRETS_KEYS = [old]
    _stripe_key(support_admin)
    secret_create(actor=support_admin, name="helpdesk_token", kind=SecretKind.ENCRYPTED, owner=support_admin, value="h")
    settings.STEWARD_SECRETS_KEYS = [new, old]

    assert secret_reencrypt_all(actor=support_admin) == 2

    settings.STEWARD_SECRETS_KEYS = [new]
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund") == VALUE
    assert secret_read(actor=None, secret_or_name="helpdesk_token", purpose="ticket") == "h"
    reencrypted = AuditRecord.objects.filter(event_type=EventType.SECRET_ROTATED, decision="reencrypted")
    assert reencrypted.count() == 2
    assert SecretReference.objects.filter(rotated_at__isnull=False).count() == 0  # the values did not change


def test_a_value_no_key_decrypts_raises_an_error_naming_the_secret_not_the_value(
    settings: Settings, support_admin: User
) -> None:
    settings.STEWARD_SECRETS_KEYS = [_key()]
    _stripe_key(support_admin)
    settings.STEWARD_SECRETS_KEYS = [_key()]

    with pytest.raises(SecretUnavailable, match="'stripe_api_key' cannot be decrypted") as error:
        secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund")
    assert VALUE not in str(error.value)
    assert not AuditRecord.objects.filter(event_type=EventType.SECRET_READ).exists()


def test_reencrypting_changes_nothing_when_one_secret_cannot_be_decrypted(
    settings: Settings, support_admin: User
) -> None:
    lost, kept = _key(), _key()
    settings.STEWARD_SECRETS_KEYS = [kept]
    readable = _stripe_key(support_admin)
    settings.STEWARD_SECRETS_KEYS = [lost]
    secret_create(actor=support_admin, name="orphan", kind=SecretKind.ENCRYPTED, owner=support_admin, value="o")
    settings.STEWARD_SECRETS_KEYS = [_key(), kept]

    with pytest.raises(SecretUnavailable, match="'orphan'.*nothing was re-encrypted"):
        secret_reencrypt_all(actor=support_admin)

    assert SecretReference.objects.get(pk=readable.pk).ciphertext == readable.ciphertext


# --- Environment secrets ---------------------------------------------------------------------------------------


def _env_secret(owner: User, env_var: str = "BREWLINE_STRIPE_KEY") -> SecretReference:
    return secret_create(actor=owner, name="stripe_api_key", kind=SecretKind.ENVIRONMENT, owner=owner, env_var=env_var)


def test_an_environment_secret_reads_its_variable(support_admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREWLINE_STRIPE_KEY", VALUE)
    secret = _env_secret(support_admin)

    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund") == VALUE
    assert secret.ciphertext == ""
    record = AuditRecord.objects.get(event_type=EventType.SECRET_READ)
    assert record.data == {"kind": "env", "env_var": "BREWLINE_STRIPE_KEY"}
    assert VALUE not in _table_text("governance_auditrecord")


def test_a_missing_environment_variable_raises_an_error_naming_the_secret(
    support_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BREWLINE_STRIPE_KEY", raising=False)
    _env_secret(support_admin)

    with pytest.raises(SecretUnavailable, match="'stripe_api_key'.*BREWLINE_STRIPE_KEY, which is not set"):
        secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund")


def test_an_environment_secret_is_rotated_where_the_variable_is_set_not_here(support_admin: User) -> None:
    secret = _env_secret(support_admin)
    with pytest.raises(SecretRotationRefused, match="rotate it where that variable is set"):
        secret_rotate(actor=support_admin, secret=secret, new_value=NEW_VALUE)
    assert not AuditRecord.objects.filter(event_type=EventType.SECRET_ROTATED).exists()


def test_pointing_a_secret_at_another_variable_is_an_audited_change(
    support_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREWLINE_STRIPE_KEY_2026", NEW_VALUE)
    secret = _env_secret(support_admin)

    secret_update(actor=support_admin, secret=secret, env_var="BREWLINE_STRIPE_KEY_2026")

    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund") == NEW_VALUE
    record = AuditRecord.objects.get(event_type=EventType.CONFIG_CHANGED)
    assert record.changes == {"env_var": {"old": "BREWLINE_STRIPE_KEY", "new": "BREWLINE_STRIPE_KEY_2026"}}


@pytest.mark.parametrize("env_var", ["SECRET_KEY", "STEWARD_SECRETS_KEYS", "DATABASE_URL", "1_NOT_A_NAME", ""])
def test_a_secret_cannot_point_at_stewards_own_credentials_or_a_malformed_name(
    support_admin: User, env_var: str
) -> None:
    with pytest.raises(ValidationError) as error:
        _env_secret(support_admin, env_var=env_var)
    assert "env_var" in error.value.message_dict


def test_an_environment_secret_takes_no_value(support_admin: User) -> None:
    with pytest.raises(ValidationError) as error:
        secret_create(
            actor=support_admin,
            name="stripe_api_key",
            kind=SecretKind.ENVIRONMENT,
            owner=support_admin,
            env_var="BREWLINE_STRIPE_KEY",
            value=VALUE,
        )
    assert "value" in error.value.message_dict


# --- Production without keys -------------------------------------------------------------------------------------


def test_without_keys_encrypted_secrets_cannot_be_created_or_read(settings: Settings, support_admin: User) -> None:
    settings.STEWARD_SECRETS_KEYS = [_key()]
    _stripe_key(support_admin)
    settings.STEWARD_SECRETS_KEYS = []

    with pytest.raises(SecretKeysMissing, match="'stripe_api_key' is encrypted and STEWARD_SECRETS_KEYS is not set"):
        secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund")
    with pytest.raises(ValidationError, match="STEWARD_SECRETS_KEYS"):
        secret_create(actor=support_admin, name="other", kind=SecretKind.ENCRYPTED, owner=support_admin, value="v")
    with pytest.raises(SecretKeysMissing):
        secret_reencrypt_all(actor=support_admin)


def test_without_keys_environment_secrets_still_work(
    settings: Settings, support_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.STEWARD_SECRETS_KEYS = []
    monkeypatch.setenv("BREWLINE_STRIPE_KEY", VALUE)
    _env_secret(support_admin)
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="refund") == VALUE


def _settings_in_a_new_process(**env: str) -> subprocess.CompletedProcess[str]:
    from django.conf import settings

    inherited = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "STEWARD_SECRETS_KEYS"}}
    code = "from django.conf import settings; print('keys:', ','.join(settings.STEWARD_SECRETS_KEYS))"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": settings.DATABASE_URL, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_malformed_key_stops_start_up_naming_the_variable_but_not_the_key() -> None:
    result = _settings_in_a_new_process(DEBUG="true", STEWARD_SECRETS_KEYS=f"{_key()},almost-a-key-but-not")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "STEWARD_SECRETS_KEYS item 2 is not a Fernet key" in result.stderr
    assert "almost-a-key-but-not" not in result.stderr
    assert "Traceback" not in result.stderr


def test_development_mode_derives_one_stable_key_and_production_mode_defaults_none() -> None:
    production = {"DEBUG": "false", "SECRET_KEY": "p" * 50, "ALLOWED_HOSTS": "support.example.com"}
    first, second = _settings_in_a_new_process(DEBUG="true"), _settings_in_a_new_process(DEBUG="true")
    prod = _settings_in_a_new_process(**production)

    derived = first.stdout.split("keys: ", 1)[1].strip()
    Fernet(derived)  # a valid key
    assert derived == second.stdout.split("keys: ", 1)[1].strip()
    assert "keys: \n" in prod.stdout, prod.stdout + prod.stderr


# --- Admin -----------------------------------------------------------------------------------------------------------


def _change_url(secret: SecretReference) -> str:
    return reverse("admin:governance_secretreference_change", args=[secret.pk])


def test_the_admin_never_renders_the_value(keys: list[str], support_admin: User, client: Client) -> None:
    secret = _stripe_key(support_admin)
    client.force_login(support_admin)

    pages = [
        client.get(reverse("admin:governance_secretreference_changelist")),
        client.get(_change_url(secret)),
        client.get(reverse("admin:governance_secretreference_add")),
        client.get(reverse("admin:governance_secretreference_history", args=[secret.pk])),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert VALUE not in html
        assert secret.ciphertext not in html
    assert "Set on " in pages[0].content.decode() and "never rotated" in pages[0].content.decode()
    assert 'type="password" name="value"' in pages[1].content.decode()


def test_adding_an_encrypted_secret_in_the_admin_stores_only_its_ciphertext(
    keys: list[str], support_admin: User, client: Client
) -> None:
    client.force_login(support_admin)
    response = client.post(
        reverse("admin:governance_secretreference_add"),
        {"name": "stripe_api_key", "kind": "encrypted", "env_var": "", "owner": support_admin.pk, "value": VALUE},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="check") == VALUE
    assert VALUE not in _table_text("governance_secretreference")
    assert VALUE not in _table_text("django_admin_log") + _table_text("governance_auditrecord")
    assert AuditRecord.objects.filter(event_type=EventType.CONFIG_CREATED, actor_user_id=support_admin.pk).exists()


def test_the_admin_refuses_an_encrypted_secret_without_a_value(
    keys: list[str], support_admin: User, client: Client
) -> None:
    client.force_login(support_admin)
    response = client.post(
        reverse("admin:governance_secretreference_add"),
        {"name": "stripe_api_key", "kind": "encrypted", "env_var": "", "owner": support_admin.pk, "value": ""},
    )
    assert response.status_code == 200
    assert "Give the value to encrypt." in response.content.decode()
    assert not SecretReference.objects.exists()


def test_a_new_value_in_the_admin_rotates_the_secret_and_a_blank_one_keeps_it(
    keys: list[str], support_admin: User, client: Client
) -> None:
    secret = _stripe_key(support_admin)
    client.force_login(support_admin)
    form = {"description": "Refunds", "owner": support_admin.pk}

    kept = client.post(_change_url(secret), {**form, "value": ""})
    assert kept.status_code == 302
    assert SecretReference.objects.get(pk=secret.pk).ciphertext == secret.ciphertext

    rotated = client.post(_change_url(secret), {**form, "value": NEW_VALUE})
    assert rotated.status_code == 302
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="check") == NEW_VALUE
    assert AuditRecord.objects.filter(event_type=EventType.SECRET_ROTATED, actor_user_id=support_admin.pk).count() == 1
    assert NEW_VALUE not in _table_text("django_admin_log") + _table_text("governance_auditrecord")


def test_a_manager_sees_a_secret_but_cannot_change_or_rotate_it(
    keys: list[str], support_admin: User, support_manager: User, client: Client
) -> None:
    secret = _stripe_key(support_admin)
    client.force_login(support_manager)

    page = client.get(_change_url(secret))
    assert page.status_code == 200
    assert 'name="value"' not in page.content.decode()
    assert (
        client.post(_change_url(secret), {"description": "x", "owner": support_manager.pk, "value": "x"}).status_code
        == 403
    )
    assert client.get(reverse("admin:governance_secretreference_reencrypt")).status_code == 403
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="check") == VALUE


def test_a_support_admin_reencrypts_every_secret_from_the_admin(
    settings: Settings, support_admin: User, client: Client
) -> None:
    old, new = _key(), _key()
    settings.STEWARD_SECRETS_KEYS = [old]
    _stripe_key(support_admin)
    settings.STEWARD_SECRETS_KEYS = [new, old]
    client.force_login(support_admin)
    url = reverse("admin:governance_secretreference_reencrypt")

    confirm = client.get(url)
    assert confirm.status_code == 200 and "Re-encrypt 1 secret" in confirm.content.decode()
    done = client.post(url, follow=True)

    assert "Re-encrypted 1 secret under the first key" in done.content.decode()
    settings.STEWARD_SECRETS_KEYS = [new]
    assert secret_read(actor=None, secret_or_name="stripe_api_key", purpose="check") == VALUE
