"""Demo traffic: days of Brewline customers chatting, played through the real turn loop at simulated times, marked as
demo (``Conversation.is_demo``) and removable (docs/agent/demo-traffic.md).

``demo_traffic_seed`` plans the visits (``traffic_plan``: a few a day in a weekday pattern, deterministic from a
seed), plays them step by step with the clock moved to each step's moment (agent/demo_traffic_visits.py), then rolls
the days up so the dashboard shows them at once. While the traffic plays, and only then:

- the simulated clock is time-machine's, left when the traffic ends (or fails);
- Brewline's demo system is served at the demo connectors' local address by a server thread of this process when
  nothing answers there (``make run`` seeds before it starts daphne);
- e-mail goes to an in-memory inbox: the customers read their one-time codes there, and nothing is sent;
- Celery tasks run in this process (an approved request is executed at its simulated moment, as a worker would).

``demo_traffic_remove`` deletes the demo conversations and what hangs off them, and rolls their days up again. The
audit records stay: the chain is append-only, tamper-evident evidence, and the removal itself is audited.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as replaced
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any
from urllib.parse import urlsplit

import httpx
import time_machine
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import transaction
from django.db.models import Count, Max, Min, QuerySet
from django.test.utils import override_settings
from django.utils import timezone
from helpdesk.models import Ticket, TicketCustomFieldValue

from agent.demo_traffic_cast import Cast
from agent.demo_traffic_scripts import FIRST_SCRIPTS, SCRIPTS, WEIGHTS, Kind
from agent.demo_traffic_visits import Planned, Run, Staff, visit
from agent.models import Conversation
from analytics.models import AnalyticsEvent
from analytics.rollups import rollup_days
from config.celery import app as celery_app
from connectors.models import Connector
from governance.audit import audit_record
from governance.models import ApprovalRequest, EventType
from knowledge.models import FailedRetrieval

DEFAULT_PER_DAY = 5  # visits on an average weekday; `--traffic 14` plays in 20-60 s on two cores
DEFAULT_SEED = 2026
MAX_DAYS, MAX_PER_DAY = 90, 100
# Visits per day relative to --per-day, Monday first: busy early in the week, quiet at the weekend.
WEEKDAY_VOLUME = (1.3, 1.2, 1.1, 1.0, 0.9, 0.55, 0.45)
# When in the day visits start (local time): office hours, a lunch dip, an evening tail.
HOUR_WEIGHTS = {8: 4, 9: 8, 10: 10, 11: 10, 12: 7, 13: 8, 14: 10, 15: 9, 16: 8, 17: 7, 18: 6, 19: 5, 20: 4, 21: 3}
# Who works the demo conversations: governance/demo.py's support agent and support manager.
PERSON, MANAGER = "sam.support", "omar.lead"
DEMO_CONNECTORS = ("demo_crm", "demo_commerce")
# Per-request and per-task lines (hundreds, and the demo's expected 4xx answers); errors still show.
QUIET_LOGGERS = ("httpx", "celery.app.trace", "django.request")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0"}  # noqa: S104 - addresses this process may serve Brewline on


class DemoTrafficError(Exception):
    """The demo traffic cannot be loaded as asked; the message says what to do."""


@dataclass(frozen=True)
class TrafficReport:
    """What a run of the demo traffic made."""

    first: date
    last: date
    conversations: int
    turns: int
    events: dict[str, int]  # analytics events of the demo conversations, by kind
    days_with_events: int
    tally: dict[str, int]  # what the visits did (agent/demo_traffic_visits.py: ``Run.tally``)
    rollup_rows: int
    seconds: float
    removed: dict[str, int] = field(default_factory=dict)  # with ``replace``: the traffic removed first


def demo_traffic_exists() -> bool:
    return Conversation.objects.filter(is_demo=True).exists()


# --- The plan ---------------------------------------------------------------------------------------------------


def traffic_plan(*, days: int, per_day: int, seed: int, today: date) -> list[Planned]:
    """Return the visits of the ``days`` days before ``today``, in time order (pure: the same arguments, the same
    plan). The first visits play ``FIRST_SCRIPTS`` and are rated, so a short run shows every figure; the run's last
    escalation is left waiting for a person (the console's queue is not empty)."""
    rng = random.Random(seed)
    moments: list[datetime] = []
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        count = max(1, round(per_day * WEEKDAY_VOLUME[day.weekday()] + rng.uniform(-1, 1)))
        for _ in range(count):
            hour = rng.choices(list(HOUR_WEIGHTS), weights=list(HOUR_WEIGHTS.values()))[0]
            moment = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)))
            moments.append(timezone.make_aware(moment))
    plan: list[Planned] = []
    for number, at in enumerate(sorted(moments)):
        first = number < len(FIRST_SCRIPTS)
        if first:
            script = FIRST_SCRIPTS[number]
        else:
            script = rng.choice(SCRIPTS[rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]])
        plan.append(
            Planned(
                at=at,
                script=script,
                greets=rng.random() < 0.2,
                thanks=rng.random() < 0.4,
                thumbs=first or rng.random() < 0.35,
                rates=first or rng.random() < 0.5,
                comes_back=first or rng.random() < 0.25,
            )
        )
    return _last_escalation_left_waiting(plan)


def _last_escalation_left_waiting(plan: list[Planned]) -> list[Planned]:
    for index in range(len(plan) - 1, len(FIRST_SCRIPTS) - 1, -1):
        if plan[index].script.kind == Kind.ESCALATION:
            plan[index] = replaced(plan[index], picked_up=False)
            break
    return plan


# --- Loading and removing -------------------------------------------------------------------------------------------


def demo_traffic_seed(
    *, days: int, per_day: int = DEFAULT_PER_DAY, seed: int = DEFAULT_SEED, replace: bool = False
) -> TrafficReport:
    """Play ``days`` days of demo traffic ending yesterday; roll the days up. Refuse when demo traffic is loaded
    already, unless ``replace`` (it is removed first): running twice must not silently double it."""
    if not 1 <= days <= MAX_DAYS or not 1 <= per_day <= MAX_PER_DAY:
        raise DemoTrafficError(f"Days must be 1 to {MAX_DAYS} and visits per day 1 to {MAX_PER_DAY}.")
    removed: dict[str, int] = {}
    if demo_traffic_exists():
        if not replace:
            raise DemoTrafficError(
                "Demo traffic is already loaded; loading it again would double it. Remove it first "
                "(seed_demo --remove-traffic) or replace it (seed_demo --traffic DAYS --replace)."
            )
        removed = demo_traffic_remove()
    staff = _staff()
    today = timezone.localdate()
    plan = traffic_plan(days=days, per_day=per_day, seed=seed, today=today)
    until = timezone.now() - timedelta(minutes=5)  # nothing is simulated in the present
    rng = random.Random(f"{seed}:visits")
    started = monotonic()
    with ExitStack() as stack:
        stack.enter_context(_quiet_logs())
        stack.enter_context(_brewline_served())
        stack.enter_context(_inbox())
        stack.enter_context(_tasks_in_process())
        traveller = stack.enter_context(time_machine.travel(plan[0].at, tick=True))
        run = Run(traveller=traveller, rng=rng, cast=Cast(rng), staff=staff, until=until)
        for planned in plan:
            run.schedule(planned.at, visit(run, planned))
        run.play()
    first, last = today - timedelta(days=days), today - timedelta(days=1)
    rows = rollup_days(first, last)
    return _report(first, last, run, rows, monotonic() - started, removed)


def _report(first: date, last: date, run: Run, rows: int, seconds: float, removed: dict[str, int]) -> TrafficReport:
    ids = _demo_ids()
    events = AnalyticsEvent.objects.filter(conversation_id__in=ids)
    by_kind = dict(events.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    days = {timezone.localdate(at) for at in events.values_list("created_at", flat=True)}
    return TrafficReport(
        first=first,
        last=last,
        conversations=len(ids),
        turns=Conversation.objects.filter(is_demo=True).aggregate(n=Count("turns"))["n"],
        events=by_kind,
        days_with_events=len(days),
        tally=dict(run.tally),
        rollup_rows=rows,
        seconds=round(seconds, 1),
        removed=removed,
    )


def demo_traffic_remove() -> dict[str, int]:
    """Delete the demo conversations and everything hanging off them — messages, turn traces, e-mail challenges, QA
    items (cascades), their analytics events, failed retrievals, approval requests and helpdesk tickets — then roll
    their days up again; return the counts. Audit records stay (append-only evidence); the removal is audited."""
    ids = _demo_ids()
    if not ids:
        return {}
    span = AnalyticsEvent.objects.filter(conversation_id__in=ids).aggregate(
        first=Min("created_at"), last=Max("created_at")
    )
    with transaction.atomic():
        removed = {
            "helpdesk tickets": _deleted(Ticket.objects.filter(pk__in=_ticket_ids(ids))),
            "approval requests": _deleted(ApprovalRequest.objects.filter(conversation_id__in=ids)),
            "failed retrievals": _deleted(FailedRetrieval.objects.filter(conversation_id__in=ids)),
            "analytics events": _deleted(AnalyticsEvent.objects.filter(conversation_id__in=ids)),
        }
        _, cascade = Conversation.objects.filter(pk__in=ids).delete()
        removed |= {
            "conversations": cascade.get("agent.Conversation", 0),
            "messages": cascade.get("agent.Message", 0),
            "turn traces": cascade.get("agent.TurnTrace", 0),
        }
        audit_record(
            actor=None,
            event_type=EventType.SYSTEM,
            decision="demo_traffic_removed",
            reason="seed_demo --remove-traffic: the demo conversations and what hangs off them were deleted; their "
            "audit records stay.",
            data=removed,
        )
    if span["first"] is not None:
        first, last = timezone.localdate(span["first"]), min(timezone.localdate(span["last"]), _yesterday())
        removed["rollup rows"] = rollup_days(first, last) if first <= last else 0
    return removed


def _deleted(rows: QuerySet[Any]) -> int:
    """Delete ``rows`` (and what cascades from them); return how many of ``rows`` themselves went."""
    return rows.delete()[1].get(rows.model._meta.label, 0)


def _yesterday() -> date:
    return timezone.localdate() - timedelta(days=1)


def _demo_ids() -> list[str]:
    return [str(pk) for pk in Conversation.objects.filter(is_demo=True).values_list("pk", flat=True)]


def _ticket_ids(ids: list[str]) -> set[int]:
    """The helpdesk tickets of the demo conversations: named by the conversation, or carrying its id."""
    named = Conversation.objects.filter(pk__in=ids).exclude(ticket_id="").values_list("ticket_id", flat=True)
    carrying = TicketCustomFieldValue.objects.filter(field__name="conversation_id", value__in=ids)
    return {int(ticket) for ticket in named if ticket.isdigit()} | set(carrying.values_list("ticket_id", flat=True))


def _staff() -> Staff:
    users = {user.get_username(): user for user in get_user_model().objects.filter(username__in=[PERSON, MANAGER])}
    missing = [name for name in (PERSON, MANAGER) if name not in users]
    if missing:
        raise DemoTrafficError(f"The demo staff {', '.join(missing)} do not exist: run seed_demo first.")
    return Staff(person=users[PERSON], manager=users[MANAGER])


# --- While the traffic plays ------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature of http.server's method
        return


def _base_urls() -> set[str]:
    return set(Connector.objects.filter(key__in=DEMO_CONNECTORS).values_list("base_url", flat=True))


def _local_addresses() -> set[tuple[str, int]]:
    """The local addresses of the demo connectors that nothing answers on yet."""
    addresses = set()
    for base_url in _base_urls():
        parts = urlsplit(base_url)
        if parts.hostname in LOCAL_HOSTS:
            addresses.add((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return {address for address in addresses if not _answers(*address)}


def _check_brewline(base_url: str) -> None:
    """Refuse to play when what answers at ``base_url`` is not a Brewline API (it asks for its token): every
    lookup and action would fail, and the connectors would record the failures."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/health", timeout=5)
    except httpx.HTTPError as exc:
        raise DemoTrafficError(f"The Brewline demo system does not answer at {base_url}: {exc}") from exc
    if response.status_code != 401 or not response.headers.get("WWW-Authenticate", "").startswith("Token"):
        raise DemoTrafficError(
            f"What answers at {base_url} is not the Brewline demo system (HTTP {response.status_code} to /health "
            "without a token). Stop it, or point SITE_URL at a free local port."
        )


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def _brewline_served() -> Iterator[None]:
    """Serve this process's WSGI application (Brewline's API is part of it) where the demo connectors expect it and
    nothing answers yet, for as long as the traffic plays."""
    servers: list[tuple[ThreadedWSGIServer, threading.Thread]] = []
    try:
        for host, port in sorted(_local_addresses()):
            try:
                server = ThreadedWSGIServer((host, port), _QuietHandler)
            except OSError as exc:
                raise DemoTrafficError(f"Could not serve the Brewline demo system on {host}:{port}: {exc}") from exc
            # Django's WSGI handler as config/wsgi.py builds it, without django.setup() again (which would redo the
            # logging configuration).
            server.set_app(WSGIHandler())
            thread = threading.Thread(target=server.serve_forever, name="demo-traffic-brewline", daemon=True)
            thread.start()
            servers.append((server, thread))
        for base_url in sorted(_base_urls()):
            _check_brewline(base_url)
        yield
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@contextmanager
def _inbox() -> Iterator[None]:
    """Deliver e-mail to ``django.core.mail.outbox`` (the locmem backend) while the traffic plays."""
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        yield


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Leave out ``QUIET_LOGGERS``' lines below ERROR while the traffic plays."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _tasks_in_process() -> Iterator[None]:
    """Run the Celery tasks queued while the traffic plays in this process, when queued (Celery's
    ``task_always_eager``): their rows carry the simulated moment, and no worker finds them later."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates = saved
