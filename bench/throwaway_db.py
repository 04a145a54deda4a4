"""Run a command against a fresh, migrated database that is dropped afterwards, whatever happens.

    python bench/throwaway_db.py -- python manage.py eval_retrieval --corpus ... --queries ...

The database lives on the same server as DATABASE_URL (or the embedded PostgreSQL of config/localservices.py) under
a unique name; the command gets it as DATABASE_URL. Benchmarks that write many rows (bench/synth_chunks.py puts
100k chunks in one) use it so that the development database never holds them, nor the dead index entries that
deleting them would leave.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPOSITORY = Path(__file__).resolve().parent.parent


def base_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    sys.path.insert(0, str(REPOSITORY))
    from config import localservices

    url, _ = localservices.embedded_pg_ensure_running()
    return url


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def throwaway_database(label: str = "bench") -> Iterator[str]:
    """Create and migrate a database, yield its URL, then drop it (connections still open are terminated)."""
    url = base_url()
    name = f"{label}_{uuid.uuid4().hex[:10]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    database_url = _with_database(url, name)
    try:
        env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": os.environ.get("DEBUG", "true")}
        subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity=0"], cwd=REPOSITORY, env=env, check=True)
        yield database_url
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (and SIGINT, which a background job ignores) end the run through the `finally` that drops the database.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print(__doc__)
        return 2
    with throwaway_database() as database_url:
        env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": os.environ.get("DEBUG", "true")}
        return subprocess.run(argv, cwd=REPOSITORY, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
