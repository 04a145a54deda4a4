"""Chat latency: websocket message → the agent's final reply, against the floor (query embedding + hybrid search).

    .venv/bin/python -m config.localservices exec -- .venv/bin/python bench/chat_latency.py \
        --corpus /tmp/steward-bench/tau2-banking/corpus [--chunks 100000] [--conversations 1,50,200] \
        [--questions-per-conversation 5] [--min-replies 100] [--workers 1] [--keep-db | --database bench_chat_…] \
        [--json /tmp/steward-bench/chat-latency.json]

1. A throw-away database (bench/throwaway_db.py's server, named ``bench_chat_…``): migrated, the demo company
   seeded with ``manage.py seed_demo`` (governance, intents, connectors, helpdesk, knowledge), plus a *public*
   knowledge source holding the banking corpus ingested with ``document_upsert`` and repeated with variations
   (bench/synth_chunks.py) to ``--chunks``: an anonymous customer's hybrid search runs over all of it.
2. A real daphne and a real Celery worker (prefork, ``--concurrency=2``, as ``make run``; ``--workers`` starts more
   worker processes) on that database and on a fresh STEWARD_NAMESPACE, so that no other worker on the same Redis
   takes these tasks and this worker takes no one else's.
3. Warm-up: every question once, in its own conversation (each worker process builds its intent table on its first
   turn); only the questions the agent answered with citations, without handing over, are kept.
4. Per level N: rounds of N concurrent conversations (enough rounds for ``--min-replies`` replies). Each
   conversation POSTs /api/chat/conversations/ (as its own client address: the endpoint allows 30 a minute per
   address), connects the websocket, then asks its questions one at a time: send, wait for the ``ack``, then for
   the agent's ``message``. Latency = send → that message. A question not answered within ``--timeout`` is lost;
   an agent message beyond one per question is a duplicate.
5. The floor, in this process, against the same database: ``knowledge.retrieval.search`` (hybrid, public audience,
   k = 5, query embedding included) on the same questions, interleaved with the one-conversation level's turns so
   that both see the same machine load; it is measured again, alone, after the last level.
6. The plumbing, at one conversation: after each answer a ``ping`` frame, timed to its ``pong`` — daphne queues the
   ``steward.ping`` task, a worker child runs it and answers through the channel layer (no database): the part of
   a turn that a faster turn cannot remove.
7. From the TurnTrace and Message rows (same clock: one machine), where each turn's time went: reaching the worker
   and reading the conversation, the responder, the rest of the turn, and the reply's transaction and push back.

Processes and the database are removed on exit, Ctrl-C and SIGTERM included (``--keep-db`` keeps the seeded
database for another run with ``--database NAME``; a database given with ``--database`` is never dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "bench"))

from throwaway_db import _admin, _with_database, base_url  # noqa: E402

# Questions a customer asks the demo help centre (shipping, returns and refunds, subscriptions, billing). The
# warm-up keeps those the agent answers from knowledge with citations.
QUESTIONS = (
    "How long does delivery to the UK take?",
    "How much does express delivery cost in the EU?",
    "What is the cut-off time for same-day dispatch?",
    "My parcel says delivered but I can't find it",
    "How do I track my parcel?",
    "Do you deliver to Switzerland?",
    "How long does shipping to the US take?",
    "How do I return an item?",
    "When will I get my refund?",
    "Who pays for return shipping?",
    "How many days do I have to send something back?",
    "Can I return coffee I have opened?",
    "An item was missing from my box",
    "How do I change the grind of my coffee?",
    "How do charge dates work for my subscription?",
    "How much does the coffee subscription cost?",
    "How fresh is the coffee when it arrives?",
    "What is the Office plan?",
    "Which ways can I pay?",
    "How do I get a VAT receipt?",
)
SYNTHETIC_SOURCE = "Synthetic corpus (chat latency benchmark)"
OPENING = 10
PARTS = ("to_store", "to_worker", "responder", "rest_of_turn", "finish_and_push")


# --- Processes ------------------------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    handle = open(log, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    return Process(name, subprocess.Popen(argv, cwd=REPOSITORY, env=env, stdout=handle, stderr=subprocess.STDOUT), log)


def _wait_until(check, what: str, process: Process, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise SystemExit(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} within {timeout:.0f} s:\n{process.tail()}")


@dataclass
class Services:
    port: int
    processes: list[Process] = field(default_factory=list)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextmanager
def services(env: dict[str, str], *, workers: int, concurrency: int, logs: Path) -> Iterator[Services]:
    """Run daphne and ``workers`` prefork Celery workers (as ``make run`` does) until the block ends."""
    from config.celery import app

    running = Services(port=_free_port())
    try:
        daphne = _start(
            "daphne",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(running.port), "config.asgi:application"],
            env,
            logs,
        )
        running.processes.append(daphne)
        nodes = []
        for number in range(workers):
            node = f"{env['STEWARD_NAMESPACE']}-{number}@{socket.gethostname()}"
            worker = _start(
                f"worker-{number}",
                [
                    *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork"),
                    *(f"--concurrency={concurrency}", "-n", node, "--without-mingle", "--without-gossip"),
                    "--loglevel=WARNING",
                ],
                env,
                logs,
            )
            running.processes.append(worker)
            nodes.append((node, worker))

        def answers() -> bool:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                return sock.connect_ex(("127.0.0.1", running.port)) == 0

        _wait_until(answers, "daphne did not accept connections", daphne)
        for node, worker in nodes:
            _wait_until(lambda n=node: bool(app.control.ping(destination=[n], timeout=0.5)), f"{node} silent", worker)
        yield running
    finally:
        for process in reversed(running.processes):
            process.stop()


# --- Database -------------------------------------------------------------------------------------------------------


@contextmanager
def benchmark_database(reuse: str | None, keep: bool) -> Iterator[tuple[str, bool]]:
    """Yield (DATABASE_URL, whether it is new); a new one is created and migrated, and dropped unless ``keep``."""
    server = base_url()
    if reuse:
        if not reuse.startswith("bench_chat_"):
            raise SystemExit("--database takes a database this script kept (bench_chat_…)")
        yield _with_database(server, reuse), False
        return
    name = f"bench_chat_{uuid.uuid4().hex[:10]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    url = _with_database(server, name)
    try:
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true"}
        subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity=0"], cwd=REPOSITORY, env=env, check=True)
        yield url, True
    finally:
        if keep:
            print(f"kept the database: --database {name}", flush=True)
        else:
            from django.db import connections

            connections.close_all()
            _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(env: dict[str, str], corpus: Path, chunks: int) -> dict[str, object]:
    """Seed the demo company, then the synthetic corpus in a public source; return the row counts."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from synth_chunks import synthesize

    from knowledge.management.commands.eval_retrieval import ingest, load_corpus
    from knowledge.models import Audience, KnowledgeSource, SourceKind, SourceStatus

    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=REPOSITORY, env=env, check=True)
    print(f"demo company seeded in {time.perf_counter() - started:.0f} s", flush=True)
    # A benchmark fixture, not governed content: made directly (no audit record), public so that an anonymous
    # customer's search passes every one of its rows.
    owner = get_user_model().objects.create(username="synthetic-corpus-owner", is_active=False)
    source = KnowledgeSource(
        name=SYNTHETIC_SOURCE,
        kind=SourceKind.FAQ,
        owner=owner,
        audience=Audience.PUBLIC,
        status=SourceStatus.APPROVED,
    )
    source.compute_review_dates()
    source.save()
    ingested = ingest(source, load_corpus(corpus))
    print(f"ingested {ingested.documents} documents, {ingested.chunks} chunks in {ingested.seconds:.0f} s", flush=True)
    synthesize(source, source, chunks, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.name, s.audience, count(c.id) FROM knowledge_knowledgesource s"
            " LEFT JOIN knowledge_chunk c ON c.source_id = s.id GROUP BY s.id ORDER BY count(c.id) DESC"
        )
        return {"sources": [list(row) for row in cursor.fetchall()], "seed_s": round(time.perf_counter() - started)}


def corpus_counts() -> dict[str, object]:
    from django.db import connection

    from knowledge.retrieval import _serving_sources_sql

    sql, params = _serving_sources_sql(audience="public", products=None, source_ids=None, stale="exclude")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM knowledge_chunk WHERE source_id IN ({sql})", params)
        public = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM knowledge_chunk")
        total = cursor.fetchone()[0]
    return {"chunks": total, "chunks_public_search_passes": public}


# --- The floor ------------------------------------------------------------------------------------------------------


def floor_once(question: str) -> float:
    """Time the agent's search alone: query embedding and hybrid search, as the embedded responder calls it."""
    from knowledge.retrieval import search

    started = time.perf_counter()
    search(question, audience="public", k=5, record_failure=False)
    return (time.perf_counter() - started) * 1000.0


# --- Conversations --------------------------------------------------------------------------------------------------


@dataclass
class Turn:
    conversation: str
    question: str
    sent_at: float  # time.time(), to line up with the database's timestamps
    latency_ms: float | None = None  # None: lost
    seq: int | None = None


class Gate:
    """Hold the conversations of a round until all of them are open (or failed to open), then let them ask."""

    def __init__(self, expected: int) -> None:
        self.expected, self.arrived, self.open = expected, 0, asyncio.Event()

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.open.set()


@dataclass
class Outcome:
    turns: list[Turn] = field(default_factory=list)
    duplicates: int = 0
    handed_over: int = 0
    not_started: int = 0  # conversations whose start (POST or websocket handshake) failed
    errors: list[str] = field(default_factory=list)
    cited: dict[str, bool] = field(default_factory=dict)  # question → answered with citations (warm-up)


async def conversation(
    server: Services,
    http,  # type: ignore[no-untyped-def]
    questions: list[str],
    outcome: Outcome,
    *,
    timeout: float,
    opening: asyncio.Semaphore,
    gate: Gate | None = None,
    between=None,  # type: ignore[no-untyped-def]
    pings: list[float] | None = None,
) -> None:
    """One customer: start a conversation, connect, ask ``questions`` one at a time.

    With ``pings``, each answered question is followed by a ``ping`` frame; the time to its ``pong`` (daphne → a
    Celery task → the channel layer → daphne, no database) is appended: the plumbing a turn cannot avoid.
    """
    import websockets

    client = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    try:
        async with opening:
            response = await http.post(
                f"{server.http}/api/chat/conversations/",
                json={},
                headers={"Origin": server.http, "X-Forwarded-For": client},
            )
            response.raise_for_status()
            started = response.json()
            ws = await websockets.connect(f"{server.ws}{started['websocket']}", origin=server.http, max_queue=None)
    except Exception as exc:  # noqa: BLE001 - a benchmark client: count it (its questions are never asked)
        outcome.errors.append(f"start: {exc!r}"[:300])
        outcome.not_started += 1
        if gate is not None:
            gate.arrive()
        return
    async with ws:
        frames: asyncio.Queue[dict] = asyncio.Queue()  # type: ignore[type-arg]

        async def read() -> None:
            async for raw in ws:
                frames.put_nowait(json.loads(raw))

        reader = asyncio.create_task(read())
        answered_seqs: set[int] = set()
        try:
            if gate is not None:
                gate.arrive()
                await gate.open.wait()
            for question in questions:
                client_id = str(uuid.uuid4())
                turn = Turn(conversation=started["id"], question=question, sent_at=time.time())
                outcome.turns.append(turn)
                t0 = time.perf_counter()
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": question}))
                deadline = t0 + timeout
                while (frame := await _next_frame(frames, deadline)) is not None:
                    kind = frame.get("type")
                    if kind == "ack" and frame.get("client_id") == client_id:
                        turn.seq = frame["seq"]
                    elif kind == "state" and frame.get("owner") != "agent":
                        outcome.handed_over += 1
                    elif kind == "error":
                        outcome.errors.append(f"{frame.get('code')}: {frame.get('message')}")
                    elif kind == "message" and frame.get("author") == "agent":
                        if frame["seq"] in answered_seqs:
                            outcome.duplicates += 1
                            continue
                        answered_seqs.add(frame["seq"])
                        if turn.seq is not None and frame["seq"] > turn.seq and turn.latency_ms is None:
                            turn.latency_ms = (time.perf_counter() - t0) * 1000.0
                            outcome.cited[question] = bool(frame.get("citations"))
                            break
                        outcome.duplicates += 1  # an agent message before this question's ack: not asked for
                if turn.latency_ms is None:
                    continue  # lost: the next question still goes (the customer would ask again)
                if pings is not None:
                    await _ping(ws, frames, pings, timeout)
                if between is not None:
                    await between(question)
            # Grace for a late second answer to the last question.
            await asyncio.sleep(0.5)
            while not frames.empty():
                frame = frames.get_nowait()
                if frame.get("type") == "message" and frame.get("author") == "agent":
                    outcome.duplicates += 1
        finally:
            reader.cancel()


async def _next_frame(frames: asyncio.Queue, deadline: float) -> dict | None:  # type: ignore[type-arg]
    """The next frame received, or None once ``deadline`` (perf_counter) has passed."""
    try:
        return await asyncio.wait_for(frames.get(), max(0.0, deadline - time.perf_counter()))
    except TimeoutError:
        return None


async def _ping(ws, frames: asyncio.Queue, pings: list[float], timeout: float) -> None:  # type: ignore[no-untyped-def,type-arg]
    t0 = time.perf_counter()
    await ws.send(json.dumps({"type": "ping"}))
    while (frame := await _next_frame(frames, t0 + timeout)) is not None:
        if frame.get("type") == "pong":
            pings.append((time.perf_counter() - t0) * 1000.0)
            return


async def run_level(
    server: Services,
    n: int,
    questions: list[str],
    per_conversation: int,
    min_replies: int,
    *,
    timeout: float,
    between=None,  # type: ignore[no-untyped-def]
    pings: list[float] | None = None,
) -> tuple[Outcome, float]:
    """Run rounds of ``n`` concurrent conversations; return what happened and the seconds spent asking."""
    import httpx

    outcome = Outcome()
    rounds = max(1, math.ceil(min_replies / (n * per_conversation)))
    rng = random.Random(n)
    busy = 0.0
    limits = httpx.Limits(max_connections=n + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for _ in range(rounds):
            gate = Gate(n)
            # Conversations open OPENING at a time: 200 simultaneous POSTs are a burst of 200 request threads in
            # daphne, each holding a database connection (CONN_MAX_AGE under ASGI), beyond max_connections.
            opening = asyncio.Semaphore(OPENING)
            tasks = [
                asyncio.create_task(
                    conversation(
                        server,
                        http,
                        rng.sample(questions, min(per_conversation, len(questions))),
                        outcome,
                        timeout=timeout,
                        opening=opening,
                        gate=gate,
                        between=between,
                        pings=pings,
                    )
                )
                for _ in range(n)
            ]
            await gate.open.wait()
            t0 = time.perf_counter()
            await asyncio.gather(*tasks)
            busy += time.perf_counter() - t0
    return outcome, busy


# --- Where the time went --------------------------------------------------------------------------------------------


def breakdown(turns: list[Turn]) -> dict[str, float]:
    """Split each answered turn at the database's timestamps; return the median of each part, in milliseconds.

    to_store: send → the customer message's row is built (daphne; its ``created_at``); to_worker: → the pass
    begins (``TurnTrace.created_at``: the store, the Celery publish and hand-over, the claim and the opening reads);
    responder: responder_ms (without the question's embedding when daphne embedded it ahead, agent/query_vectors.py,
    but with the wait for it); rest_of_turn: the rest of the pass up to the reply's row (identity, escalation rules);
    finish_and_push: → received (the reply's transaction, the channel layer, daphne).
    """
    from agent.models import Author, Message, TurnTrace

    answered = [t for t in turns if t.latency_ms is not None and t.seq is not None]
    if not answered:
        return {}
    ids = {t.conversation for t in answered}
    customer = {
        (str(c), s): at
        for c, s, at in Message.objects.filter(conversation_id__in=ids, author=Author.CUSTOMER).values_list(
            "conversation_id", "seq", "created_at"
        )
    }
    traces = {}
    for trace in TurnTrace.objects.filter(conversation_id__in=ids).select_related("reply"):
        for seq in trace.message_seqs:
            traces[(str(trace.conversation_id), seq)] = trace
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    for turn in answered:
        key = (turn.conversation, turn.seq)
        trace = traces.get(key)
        if key not in customer or trace is None or trace.reply is None:
            continue
        received = turn.sent_at + turn.latency_ms / 1000.0
        stored = customer[key].timestamp()
        begun = trace.created_at.timestamp()
        replied = trace.reply.created_at.timestamp()
        responder = float(trace.timings.get("responder_ms", 0.0))
        parts["to_store"].append((stored - turn.sent_at) * 1000)
        parts["to_worker"].append((begun - stored) * 1000)
        parts["responder"].append(responder)
        parts["rest_of_turn"].append((replied - begun) * 1000 - responder)
        parts["finish_and_push"].append((received - replied) * 1000)
    return {part: round(statistics.median(values), 1) for part, values in parts.items() if values}


# --- Report ---------------------------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * pct / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def row(level: str, latencies: list[float], *, seconds: float | None, lost: int, duplicates: int) -> dict[str, object]:
    return {
        "level": level,
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "replies_per_s": round(len(latencies) / seconds, 1) if seconds else None,
        "lost": lost,
        "duplicates": duplicates,
    }


def print_table(rows: list[dict[str, object]], floor_p95: float) -> None:
    header = f"{'level':<14}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'replies/s':>11}{'lost':>6}{'dup':>5}"
    print(header + f"{'p95/floor':>11}")
    for r in rows:
        rate = "—" if r["replies_per_s"] is None else f"{r['replies_per_s']:.1f}"
        ratio = r["p95_ms"] / floor_p95 if floor_p95 else float("nan")  # type: ignore[operator]
        print(
            f"{r['level']!s:<14}{r['n']:>6}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{rate:>11}"
            f"{r['lost']:>6}{r['duplicates']:>5}{ratio:>10.2f}×"
        )


# --- Main -----------------------------------------------------------------------------------------------------------


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # through every `finally`: processes stopped, database dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="the banking corpus (bench/prepare_tau2_banking.py OUT/corpus)")
    parser.add_argument("--chunks", type=int, default=100_000, help="synthetic chunks in the public source")
    parser.add_argument("--conversations", default="1,50,200", help="concurrency levels, comma-separated")
    parser.add_argument("--questions-per-conversation", type=int, default=3, help="at most 8: the per-socket burst")
    parser.add_argument("--min-replies", type=int, default=100, help="rounds are repeated until this many per level")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before an unanswered question is lost")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children per worker (make run: 2)")
    parser.add_argument("--keep-db", action="store_true", help="keep the seeded database (prints its name)")
    parser.add_argument("--database", help="reuse a database kept by --keep-db (skips seeding; never dropped)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    levels = [int(part) for part in args.conversations.split(",") if part.strip()]
    if not args.database and not args.corpus:
        parser.error("--corpus is needed to seed a new database")
    # SIGINT too: a job started in the background ignores it by default, and either way the same exit path runs.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    namespace = f"chatbench-{uuid.uuid4().hex[:8]}"
    logs = Path(tempfile.mkdtemp(prefix=f"steward-{namespace}-"))
    with benchmark_database(args.database, args.keep_db) as (database_url, new):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "true",
            "STEWARD_NAMESPACE": namespace,
            "PYTHONUNBUFFERED": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(logs / "mail"),
            # Each simulated customer comes "through a proxy" with its own X-Forwarded-For address, so that the
            # per-address conversation-start limit (30 a minute) counts customers, as it would in production.
            "STEWARD_NUM_PROXIES": "1",
        }
        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "STEWARD_NAMESPACE")})
        import django

        django.setup()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        report: dict[str, object] = {"namespace": namespace, "logs": str(logs)}
        try:
            if new:
                report["seed"] = seed(env, args.corpus, args.chunks)
            report["corpus"] = corpus_counts()
            print(f"corpus: {report['corpus']}", flush=True)
            with services(env, workers=args.workers, concurrency=args.concurrency, logs=logs) as server:
                report.update(asyncio.run(measure(server, levels, args)))
        finally:
            _forget_namespace(namespace)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


async def measure(server: Services, levels: list[int], args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {"load_start": os.getloadavg()}
    pool = ThreadPoolExecutor(1)  # the floor's ORM work, off the event loop, on one connection
    loop = asyncio.get_running_loop()
    for question in QUESTIONS[:5]:
        await loop.run_in_executor(pool, floor_once, question)  # model and connection loaded outside the timings

    # Warm-up: each question in its own conversation, four at a time (every worker process gets its first turns).
    warm = Outcome()
    import httpx

    async with httpx.AsyncClient(timeout=60) as http:
        opening = asyncio.Semaphore(OPENING)
        for start in range(0, len(QUESTIONS), 4):
            batch = QUESTIONS[start : start + 4]
            await asyncio.gather(
                *(conversation(server, http, [q], warm, timeout=args.timeout, opening=opening) for q in batch)
            )
    questions = [q for q in QUESTIONS if warm.cited.get(q)]
    dropped = [q for q in QUESTIONS if not warm.cited.get(q)]
    print(f"warm-up: {len(questions)} questions answered with citations; left out: {dropped}", flush=True)
    if warm.handed_over or warm.errors:
        print(f"warm-up: handed over {warm.handed_over}, errors {warm.errors[:5]}", flush=True)
    out["questions"], out["questions_left_out"] = questions, dropped
    if not questions:
        raise SystemExit(f"no question was answered with citations in the warm-up; see {out.get('logs', 'the logs')}")

    floor: list[float] = []

    async def floor_between(question: str) -> None:
        floor.append(await loop.run_in_executor(pool, floor_once, question))

    rows: list[dict[str, object]] = []
    details: dict[str, object] = {}
    pings: list[float] = []
    for n in levels:
        out[f"load_before_{n}"] = os.getloadavg()
        outcome, seconds = await run_level(
            server,
            n,
            questions,
            args.questions_per_conversation,
            args.min_replies,
            timeout=args.timeout,
            between=floor_between if n == 1 else None,
            pings=pings if n == 1 else None,
        )
        latencies = [t.latency_ms for t in outcome.turns if t.latency_ms is not None]
        # A conversation that could not start never asked its questions: they count as lost.
        lost = sum(1 for t in outcome.turns if t.latency_ms is None) + outcome.not_started * min(
            args.questions_per_conversation, len(questions)
        )
        rows.append(row(str(n), latencies, seconds=seconds, lost=lost, duplicates=outcome.duplicates))
        parts = await loop.run_in_executor(pool, breakdown, outcome.turns)
        details[str(n)] = {
            "parts_p50_ms": parts,
            "handed_over": outcome.handed_over,
            "conversations_not_started": outcome.not_started,
            "errors": outcome.errors[:20],
            "error_count": len(outcome.errors),
            "seconds": round(seconds, 1),
        }
        print(f"level {n}: {rows[-1]} parts(p50 ms) {parts} {details[str(n)]['error_count']} errors", flush=True)
    alone: list[float] = []
    for _ in range(max(1, math.ceil(args.min_replies / len(questions)))):
        for question in questions:
            alone.append(await loop.run_in_executor(pool, floor_once, question))
    await loop.run_in_executor(pool, _close_connection)
    pool.shutdown()
    out["load_end"] = os.getloadavg()
    floor_row = row("floor", floor, seconds=None, lost=0, duplicates=0) if floor else None
    alone_row = row("floor (alone)", alone, seconds=None, lost=0, duplicates=0)
    ping_row = row("ping → pong", pings, seconds=None, lost=0, duplicates=0) if pings else None
    table = [r for r in (floor_row, alone_row, ping_row) if r is not None] + rows
    reference = float((floor_row or alone_row)["p95_ms"])  # type: ignore[arg-type]
    print()
    print_table(table, reference)
    print(f"load average: start {out['load_start']}, end {out['load_end']}")
    for level, detail in details.items():
        print(f"level {level}: median parts (ms) {detail['parts_p50_ms']}, handed over {detail['handed_over']}")
    out["table"], out["details"] = table, details
    one = next((r for r in rows if r["level"] == "1"), None)
    if one is not None:
        ratio = float(one["p95_ms"]) / reference  # type: ignore[arg-type]
        met = ratio <= 2.0 and float(one["p95_ms"]) <= 60.0  # type: ignore[arg-type]
        out["p95_ratio_1_conversation"] = round(ratio, 2)
        print(f"p95 at 1 conversation = {ratio:.2f}× the floor; target (≤ 2× and ≤ 60 ms) {'met' if met else 'MISSED'}")
    return out


def _close_connection() -> None:
    from django.db import connection

    connection.close()


def _forget_namespace(namespace: str) -> None:
    """Delete what the run left in Redis under its own namespace (Celery's queue bindings, cache and layer keys)."""
    try:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL)
        for pattern in (f"*{namespace}*",):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
    except Exception as exc:  # noqa: BLE001 - best effort at exit; the keys expire or are harmless
        print(f"could not clean Redis keys of {namespace}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
