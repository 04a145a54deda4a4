"""Analytics at scale: the daily rollup and the dashboard's load time at 100,000 conversations.

    DEBUG=true .venv/bin/python bench/throwaway_db.py -- .venv/bin/python bench/analytics_scale.py \
        --conversations 100000 --days 90 --json /tmp/steward-bench/analytics-scale.json

Run it in a throw-away database (bench/throwaway_db.py): it writes the conversations and their analytics events
(about ten per conversation, the kinds and data the real code records) with COPY, spread over ``--days`` days with a
weekday pattern, then measures side by side in one run:

- the rollup of the whole range (``rollup_days``, what ``manage.py analytics_rollup --from --to`` does) and the
  nightly task (``rollup_recent``, the last STEWARD_ROLLUP_REFRESH_DAYS days);
- the dashboard page (``/dashboard/``, as a signed-in manager, through Django's test client: the page's queries and
  rendering, not the browser) over 30 and 90 days, served from the rollups, against the same page with the rollups
  deleted (every day computed live from the events), and one metric series of the DRF API;
- ``analytics_report`` over 30 days (every provider live over one window), for comparison.

Each page is loaded ``--repeat`` times; the table gives the median and the slowest, with the machine's load average.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

INTENTS = [
    "where_is_my_order",
    "subscription_status",
    "pause_subscription",
    "cancel_subscription",
    "change_address",
    "refund_request",
    "shipping_info",
    "returns_info",
    "billing_help",
    "account_help",
    "product_troubleshooting",
    "warranty_info",
]
CHANNELS = ["web_chat", "web_chat", "web_chat", "email"]
EVENT_COLUMNS = ("conversation_id", "kind", "channel", "intent", "data", "created_at")


def _moment(rng: random.Random, first: date, days: int) -> datetime:
    """A start time: weekdays busier than weekends, office hours busier than nights."""
    while True:
        day = first + timedelta(days=rng.randrange(days))
        if day.weekday() < 5 or rng.random() < 0.45:
            break
    hour = min(23, max(0, int(rng.gauss(13, 4))))
    naive = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60))
    return timezone.make_aware(naive)


def _conversation_events(rng: random.Random, cid: str, start: datetime) -> tuple[list[tuple], dict]:
    """One conversation's events, as the real code records them (kinds and data keys: docs/analytics.md)."""
    channel = rng.choice(CHANNELS)
    intent = rng.choice(INTENTS)
    events: list[tuple] = []
    at = start

    def add(kind: str, data: dict, *, about: str = "", seconds: float = 5.0) -> None:
        nonlocal at
        at = at + timedelta(seconds=seconds)
        events.append((cid, kind, channel, about, json.dumps(data), at))

    if rng.random() < 0.04:  # outside the AI's traffic share
        add("traffic_to_person", {"stage": 3, "ticket": True})
        add("closed", {"reason": "resolved", "from": "human", "seconds_since_handoff": 900.0}, seconds=1200)
        return events, {"channel": channel, "closed": at, "escalated": True}
    for _ in range(rng.randint(1, 4)):
        add(
            "turn_answered",
            {
                "turn": None,
                "status": "answered",
                "confidence": round(rng.random(), 2),
                "responder": "embedded",
                "prompt_version": "",
                "stage": rng.choice([2, 3, 3]),
                "total_ms": rng.randint(40, 400),
            },
            about=intent,
            seconds=rng.uniform(5, 90),
        )
        if rng.random() < 0.55:
            add("knowledge_unknown" if rng.random() < 0.12 else "knowledge_answered", {}, about=intent, seconds=0.01)
        if rng.random() < 0.2:
            action = {"action": "order_lookup", "decision": "allow", "reason": "read-only lookup", "tier": "read_only"}
            add("action_proposed", action, about=intent, seconds=0.01)
            add(
                rng.choice(["action_executed", "action_executed", "action_denied", "approval_requested"]),
                action,
                about=intent,
                seconds=0.01,
            )
    escalated = rng.random() < 0.15
    if escalated:
        add("escalated", {"reason": "customer asked for a person", "ticket": True}, seconds=10)
        wait = rng.uniform(30, 1800)
        add("human_took_over", {"user": 1, "from": "waiting", "seconds_waiting": round(wait, 1)}, seconds=wait)
        add(
            "human_replied",
            {"user": 1, "seq": 5, "first": True, "seconds_since_handoff": round(wait + 40, 1)},
            seconds=40,
        )
        add(
            "ticket_first_reply",
            {
                "ticket": cid[:8],
                "source": "embedded",
                "connector": "",
                "status": "open",
                "at": None,
                "seconds_since_ticket": round(wait + 40, 1),
            },
            seconds=1,
        )
        handle = rng.uniform(120, 3600)
        add(
            "closed",
            {
                "reason": "resolved",
                "by": 1,
                "from": "human",
                "assignee": 1,
                "seconds_since_handoff": round(wait + handle, 1),
            },
            seconds=handle,
        )
        add(
            "ticket_solved",
            {
                "ticket": cid[:8],
                "source": "embedded",
                "connector": "",
                "status": "solved",
                "at": None,
                "seconds_since_ticket": round(wait + handle, 1),
            },
            seconds=60,
        )
        if rng.random() < 0.08:
            add(
                "ticket_reopened",
                {
                    "ticket": cid[:8],
                    "source": "embedded",
                    "connector": "",
                    "status": "open",
                    "at": None,
                    "seconds_since_ticket": None,
                },
                seconds=rng.uniform(3600, 4 * 86400),
            )
    else:
        add("closed", {"reason": "inactive", "by": None, "from": "agent", "seconds_open": 600.0}, seconds=1800)
    closed = at
    if rng.random() < 0.25:
        add("csat", {"score": rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 4, 6])[0]}, seconds=30)
    if rng.random() < 0.2:
        add(
            "reply_feedback",
            {"seq": 2, "helpful": rng.random() < 0.8, "turn": None, "changed": False},
            about=intent,
            seconds=5,
        )
    if rng.random() < 0.04:
        later = rng.uniform(3600, 6 * 86400)
        add(
            "returned_on_topic",
            {"by": str(uuid.uuid4()), "seconds_after_close": round(later, 1), "reached_person": rng.random() < 0.5},
            about=intent,
            seconds=later,
        )
    return events, {"channel": channel, "closed": closed, "escalated": escalated}


def populate(conversations: int, days: int, seed: int) -> tuple[int, date, date]:
    """Write the conversations and their events; return (events written, first day, last day)."""
    from agent.models import Conversation, Owner

    rng = random.Random(seed)
    last = timezone.localdate() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    written = 0
    batch = 10_000
    for offset in range(0, conversations, batch):
        rows, buffer = [], io.StringIO()
        for _ in range(min(batch, conversations - offset)):
            cid = str(uuid.uuid4())
            start = _moment(rng, first, days)
            events, facts = _conversation_events(rng, cid, start)
            rows.append((cid, start, facts))
            for event in events:
                written += 1
                buffer.write("\t".join(_copy_value(value) for value in event) + "\n")
        Conversation.objects.bulk_create(
            [Conversation(id=cid, channel=facts["channel"], owner=Owner.CLOSED) for cid, _, facts in rows],
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY analytics_analyticsevent ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            times = io.StringIO()
            for cid, start, facts in rows:
                times.write(f"{cid}\t{start.isoformat()}\t{facts['closed'].isoformat()}\n")
            cursor.execute("CREATE TEMP TABLE bench_times (id uuid, started timestamptz, closed timestamptz)")
            with cursor.cursor.copy("COPY bench_times FROM STDIN") as copy:
                copy.write(times.getvalue())
            cursor.execute(
                "UPDATE agent_conversation c SET created_at = t.started, updated_at = t.closed, closed_at = t.closed "
                "FROM bench_times t WHERE c.id = t.id"
            )
            cursor.execute("DROP TABLE bench_times")
        print(f"  {offset + len(rows):,} conversations, {written:,} events", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return written, first, last


def _copy_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _timed(label: str, fn, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - began)
    if hasattr(result, "status_code") and result.status_code != 200:
        raise SystemExit(f"{label}: HTTP {result.status_code}")
    return {"what": label, "median_s": statistics.median(samples), "max_s": max(samples), "runs": repeat}


def profile(url: str, client: Client, top: int = 12) -> None:
    """Print the page's slowest SQL statements (``--profile``): where its time goes."""
    timings: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.append((time.perf_counter() - began, " ".join(sql.split())))

    with connection.execute_wrapper(timed):
        client.get(url)
    total = sum(seconds for seconds, _ in timings)
    print(f"\n{url}: {len(timings)} statements, {total:.3f} s in the database; the slowest:")
    for seconds, sql in sorted(timings, reverse=True)[:top]:
        print(f"  {seconds:7.3f} s  {sql[:220]}")


def measure(first: date, last: date, repeat: int, *, profiled: bool = False) -> list[dict]:
    from django.contrib.auth import get_user_model

    from analytics.models import MetricRollup
    from analytics.report import analytics_report
    from analytics.rollups import rollup_days, rollup_recent

    rows = []
    rows.append(
        _timed(f"rollup {(last - first).days + 1} days (analytics_rollup)", lambda: rollup_days(first, last), 1)
    )
    rows.append(_timed("nightly rollup (rollup_recent)", rollup_recent, 1))
    manager = get_user_model().objects.create_superuser("bench-manager", "bench@example.com", "x")
    client = Client()
    client.force_login(manager)
    today = timezone.localdate()
    pages = {
        "30": f"/dashboard/?from={today - timedelta(days=29)}&to={today}",
        "90": f"/dashboard/?from={today - timedelta(days=89)}&to={today}",
    }
    series = f"/api/analytics/series/containment_rate/?from={today - timedelta(days=29)}&to={today}"
    with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        for days, url in pages.items():
            rows.append(_timed(f"dashboard {days} days, rollups + today", lambda url=url: client.get(url), repeat))
        rows.append(_timed("API series containment_rate 30 days", lambda: client.get(series), repeat))
        if profiled:
            profile(pages["30"], client)
        rows.append(
            _timed(
                "analytics_report 30 days (live)",
                lambda: analytics_report(start=today - timedelta(days=29), end=today),
                repeat,
            )
        )
        kept = list(MetricRollup.objects.values())
        MetricRollup.objects.all().delete()
        for days, url in pages.items():
            rows.append(_timed(f"dashboard {days} days, every day live", lambda url=url: client.get(url), 1))
        MetricRollup.objects.bulk_create([MetricRollup(**row) for row in kept])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--profile", action="store_true", help="print the dashboard's slowest SQL statements")
    args = parser.parse_args()
    if "bench_" not in connection.settings_dict["NAME"]:
        raise SystemExit("run it in a throw-away database: bench/throwaway_db.py -- ... (see the docstring)")
    began = time.perf_counter()
    events, first, last = populate(args.conversations, args.days, args.seed)
    print(f"wrote {args.conversations:,} conversations and {events:,} events in {time.perf_counter() - began:.0f} s")
    rows = measure(first, last, args.repeat, profiled=args.profile)
    load = os.getloadavg()
    print(f"\n{'what':<48} {'median s':>9} {'max s':>8} {'runs':>5}")
    for row in rows:
        print(f"{row['what']:<48} {row['median_s']:>9.3f} {row['max_s']:>8.3f} {row['runs']:>5}")
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.conversations:,} conversations, "
        f"{events:,} events"
    )
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(
            json.dumps({"conversations": args.conversations, "events": events, "load": load, "rows": rows}, indent=2)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
