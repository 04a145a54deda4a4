"""``GET /healthz``: the state of the database (and pgvector), Redis and the Celery workers.

200 when every part is up, 503 naming the failing parts otherwise. It never raises: each check turns its own
failure into a reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypedDict

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# A worker that answered within this many seconds counts as up without asking again.
WORKER_FRESH_SECONDS = 60
WORKER_PING_TIMEOUT = 1.0


class Check(TypedDict, total=False):
    ok: bool
    error: str
    version: str
    workers: list[str]
    seconds_since_answer: float


def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def check_database() -> dict[str, Check]:
    """Check the database with a round trip, then whether the pgvector extension is installed in it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    pgvector: Check = {"ok": True, "version": row[0]} if row else {"ok": False, "error": "extension not installed"}
    return {"database": {"ok": True}, "pgvector": pgvector}


def check_redis() -> dict[str, Check]:
    client = _redis_client()
    try:
        client.ping()
    finally:
        client.close()
    return {"redis": {"ok": True}}


def _worker_key() -> str:
    return f"{settings.STEWARD_NAMESPACE}:health:worker_answered_at"


def worker_answered() -> None:
    """Record that a worker answered now (called by the ``steward.heartbeat`` task and after a live ping)."""
    client = _redis_client()
    try:
        client.set(_worker_key(), str(time.time()), ex=WORKER_FRESH_SECONDS * 10)
    finally:
        client.close()


def check_worker() -> dict[str, Check]:
    """Up when a Celery worker answered a ping in the last minute; ask them (1 s at most) when none did."""
    client = _redis_client()
    try:
        raw = client.get(_worker_key())
        last = float(raw) if raw else 0.0
        age = time.time() - last
        if age <= WORKER_FRESH_SECONDS:
            return {"worker": {"ok": True, "seconds_since_answer": round(age, 1)}}
        from config.celery import app

        replies = app.control.ping(timeout=WORKER_PING_TIMEOUT) or []
        if not replies:
            return {
                "worker": {
                    "ok": False,
                    "error": f"no Celery worker answered a ping in the last {WORKER_FRESH_SECONDS} s",
                }
            }
        worker_answered()
        return {"worker": {"ok": True, "seconds_since_answer": 0.0, "workers": sorted(n for r in replies for n in r)}}
    finally:
        client.close()


def _run(name: str, check: Callable[[], dict[str, Check]], dependents: tuple[str, ...] = ()) -> dict[str, Check]:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure, it never raises
        reason = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'failed'}"
        return {part: {"ok": False, "error": reason} for part in (name, *dependents)}


def health_report() -> dict[str, Check]:
    """Return the state of every part; the worker is only asked when Redis (its broker) is up."""
    checks: dict[str, Check] = {}
    checks.update(_run("database", check_database, dependents=("pgvector",)))
    checks.update(_run("redis", check_redis))
    if checks["redis"]["ok"]:
        checks.update(_run("worker", check_worker))
    else:
        checks["worker"] = {"ok": False, "error": "cannot ask the workers: Redis (the broker) is down"}
    return checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health_report()
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
