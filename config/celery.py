"""The Celery app: JSON only, late acks, one task prefetched at a time, time limits on every task.

Tasks are thin and idempotent (../shared/STYLE.md rule 5): a redelivered task (acks_late + reject on worker lost)
must neither answer nor act twice.
"""

from __future__ import annotations

import os
import socket
import time

from celery import Celery, signals
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("steward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    timezone="UTC",
    # Nobody reads a turn's result (the reply goes to the conversation's group). Storing it cost the worker a Redis
    # SET and PUBLISH after every turn, and with the Redis result backend every .delay() first SUBSCRIBEs to the
    # task's result channel (RedisBackend.on_task_call): one more round trip in daphne before the turn is queued.
    task_annotations={"agent.run_turn": {"ignore_result": True}},
)


# Database connections in the worker. Celery's Django fixup closes every connection before and after every task
# (celery 5.6 went back to that: close_if_unusable_or_obsolete() cannot see a connection a time limit interrupted
# mid-query), so DATABASE_CONN_MAX_AGE meant nothing here and each turn opened a new PostgreSQL connection: 5-11 ms
# plus a cold catalog cache, a quarter of a turn (docs/benchmarks.md, "Chat latency"). The fixup's closing is turned
# off (it closes once every 2 x this many tasks) and the worker follows Django's rules instead, made safe for that
# case: before a task, connections past DATABASE_CONN_MAX_AGE or with errors are closed, and the first query checks
# the connection (conn_health_checks; config/postgresql: no round trip while its socket is quiet); after a task that
# did not succeed (an exception, a time limit) every connection is closed.
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000_000


@signals.task_prerun.connect
def _connections_before_task(**kwargs: object) -> None:
    from django.db import close_old_connections

    close_old_connections()


@signals.task_postrun.connect
def _connections_after_task(state: str | None = None, **kwargs: object) -> None:
    from django.db import close_old_connections, connections

    if state == "SUCCESS":
        close_old_connections()
    else:
        connections.close_all()


app.autodiscover_tasks()
# Code-defined schedules; django-celery-beat's DatabaseScheduler copies them into its tables at start, where admins
# see them (and may pause them) under "Periodic tasks".
app.conf.beat_schedule = {
    "worker-heartbeat": {"task": "steward.heartbeat", "schedule": 30.0, "options": {"expires": 25}},
    "approval-requests-expire": {"task": "governance.approval_requests_expire", "schedule": 60.0},
    # Quiet conversations with the AI end (the customer is asked for a rating): STEWARD_IDLE_CLOSE_MINUTES.
    "conversations-close-idle": {
        "task": "agent.conversations_close_idle",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    # Rolls back at once, promotes when metrics and sign-offs allow (docs/governance/rollout-and-readiness.md).
    "rollout-gates-evaluate": {
        "task": "governance.rollout_gates_evaluate",
        "schedule": 900.0,
        "options": {"expires": 600},
    },
    # Fills the QA review queue from the sampling rules and closes fix requests whose source was reviewed (docs/qa.md).
    # Recomputes the last days' metric rollups the dashboard reads (docs/analytics.md, "Daily rollups").
    "analytics-rollup": {
        "task": "analytics.rollup",
        "schedule": crontab(hour=2, minute=10),
        "options": {"expires": 3600},
    },
    "qa-daily": {"task": "qa.daily", "schedule": crontab(hour=4, minute=30), "options": {"expires": 3600}},
    # Applies retention rules and prunes old audit evidence (docs/governance/pii-and-retention.md).
    "retention-apply": {
        "task": "governance.retention_apply",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 3600},
    },
}


@app.task(name="steward.ping", soft_time_limit=5, time_limit=10)
def ping(reply_channel: str | None = None) -> dict[str, object]:
    """Prove the loop: answer with who ran the task, and push a ``pong`` to a websocket channel if one is given."""
    answer: dict[str, object] = {"pong": True, "hostname": socket.gethostname(), "pid": os.getpid(), "at": time.time()}
    if reply_channel:
        from agent.messages import layer_call

        layer_call("send", reply_channel, {"type": "pong", "worker": answer})  # the way a turn's reply goes
    return answer


@app.task(name="steward.database_backend", soft_time_limit=5, time_limit=10)
def database_backend() -> int:
    """The PostgreSQL backend PID of the worker's connection (diagnostics: does the worker keep its connection?)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@app.task(name="steward.heartbeat", soft_time_limit=5, time_limit=10)
def heartbeat() -> None:
    """Record that a worker ran a task just now; ``/healthz`` reads it (config/health.py)."""
    from config.health import worker_answered

    worker_answered()
