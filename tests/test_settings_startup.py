"""Start-up with a bad environment stops with one line naming the variable; production settings pass --deploy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "support.example.com"}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    from django.conf import settings

    base = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    # Point at the already-running database so the check does not depend on how this run got one.
    full_env = {**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": settings.DATABASE_URL, **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_production_mode_refuses_the_default_secret_key() -> None:
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="support.example.com")
    assert result.returncode == 2
    assert result.stderr.startswith("Configuration error: SECRET_KEY must be set when DEBUG is off")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "perhaps", "DEBUG must be a boolean"),
        ("DATABASE_URL", "mysql://db/steward", "DATABASE_URL must be a URL starting with postgres:// or postgresql://"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL must be a URL starting with redis://"),
        ("STEWARD_RESPONDER", "gpt", "STEWARD_RESPONDER must be one of embedded, openai"),
        ("CELERY_TASK_TIME_LIMIT", "1", "CELERY_TASK_TIME_LIMIT must be at least 2"),
        ("CSRF_TRUSTED_ORIGINS", "support.example.com", "CSRF_TRUSTED_ORIGINS must list origins with a scheme"),
        ("DATABASE_POOL_MAX_SIZE", "ten", "DATABASE_POOL_MAX_SIZE must be a whole number"),
        ("DATABASE_POOL_MAX_SIZE", "8", "DATABASE_POOL_MAX_SIZE needs DATABASE_CONN_MAX_AGE=0"),
    ],
)
def test_a_malformed_variable_stops_start_up_with_its_name(name: str, value: str, message: str) -> None:
    result = manage("check", **{**PRODUCTION, name: value})
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_openai_responder_needs_its_endpoint() -> None:
    result = manage("check", **PRODUCTION, STEWARD_RESPONDER="openai", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert "OPENAI_API_KEY must be set when STEWARD_RESPONDER=openai" in result.stderr


def test_production_settings_pass_the_deployment_check() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
