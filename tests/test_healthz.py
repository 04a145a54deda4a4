"""/healthz reports each part and never raises."""

from __future__ import annotations

import pytest
from django.test import Client

from config import health


@pytest.fixture
def no_worker_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """This run's namespace has no worker until the end-to-end fixtures start one; forget any earlier answer."""
    from django.core.cache import cache  # noqa: F401 - settings loaded

    client = health._redis_client()
    client.delete(health._worker_key())
    client.close()
    monkeypatch.setattr(health, "WORKER_PING_TIMEOUT", 0.3)


@pytest.mark.django_db
def test_it_names_the_worker_when_no_worker_answers(client: Client, no_worker_answer: None) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["pgvector"]["ok"] is True and body["checks"]["pgvector"]["version"].startswith("0.8")
    assert body["checks"]["redis"] == {"ok": True}
    assert "no Celery worker answered" in body["checks"]["worker"]["error"]


@pytest.mark.django_db
def test_a_recent_worker_answer_counts_as_up(client: Client, no_worker_answer: None) -> None:
    health.worker_answered()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_redis_down_names_redis_and_the_worker_without_raising(
    client: Client, settings, no_worker_answer: None
) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis", "worker"]
    assert body["checks"]["redis"]["error"].startswith("ConnectionError")


@pytest.mark.django_db
def test_only_get_is_allowed(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
