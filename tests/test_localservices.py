"""The project's own commands bring up PostgreSQL and Redis, and tell clearly when they cannot."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from config import localservices

BASE_DIR = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_stale_postmaster_pid_is_not_taken_for_a_running_server(tmp_path: Path) -> None:
    # The PID of this very test process is alive but is not a postgres serving that data directory.
    (tmp_path / "postmaster.pid").write_text(
        f"{os.getpid()}\n{tmp_path}\n1700000000\n5432\n{tmp_path}\n\n  1234 5678\nready\n"
    )
    assert localservices._read_postmaster(tmp_path) is None


def test_a_missing_or_garbled_postmaster_pid_means_not_running(tmp_path: Path) -> None:
    assert localservices._read_postmaster(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text("not a pid file\n")
    assert localservices._read_postmaster(tmp_path) is None


def test_the_embedded_server_starts_is_shared_survives_kill_9_and_stops(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    url, started = localservices.embedded_pg_ensure_running(pgdata)
    try:
        assert started is True
        assert url.startswith("postgresql://postgres@%2F")  # the socket directory is the host, percent-encoded
        localservices.check_database(url)  # reachable, and pgvector is available
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("steward",)

        again, started_again = localservices.embedded_pg_ensure_running(pgdata)
        assert (again, started_again) == (url, False)  # attached to the running server

        # A kill -9 leaves postmaster.pid behind: it must not be taken for a running server.
        pid = localservices._read_postmaster(pgdata).pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while localservices._read_postmaster(pgdata) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert localservices._read_postmaster(pgdata) is None
        assert (pgdata / "postmaster.pid").exists()

        restarted, started = localservices.embedded_pg_ensure_running(pgdata)
        assert started is True
        localservices.check_database(restarted)
    finally:
        assert localservices.embedded_pg_stop(pgdata) is True
    assert localservices.embedded_pg_url(pgdata) is None


def test_an_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(
        localservices.ServiceError, match=r"PostgreSQL at postgresql://u:\*\*\*@127.0.0.1:1/x cannot be"
    ):
        localservices.check_database("postgresql://u:secret@127.0.0.1:1/x")


def test_a_local_redis_is_started_when_none_answers_and_stopped_after(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    pidfile = tmp_path / "redis.pid"
    assert localservices.redis_ensure_running(url, pidfile=pidfile) is True
    try:
        client = redis.Redis.from_url(url)
        assert client.set("steward-probe", "1") and client.get("steward-probe") == b"1"
        client.close()
        assert localservices.redis_ensure_running(url, pidfile=pidfile) is False  # already answering
    finally:
        assert localservices.redis_stop_ours(url, pidfile=pidfile) is True
    assert localservices.redis_ping(url) is False


def test_a_remote_redis_that_does_not_answer_is_not_started_here() -> None:
    with pytest.raises(localservices.ServiceError, match="Redis at redis://redis.invalid:6379/0 does not answer"):
        localservices.redis_ensure_running("redis://redis.invalid:6379/0")


def test_the_command_line_fails_with_a_message_not_a_traceback() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://steward@127.0.0.1:1/steward"}
    result = subprocess.run(
        [sys.executable, "-m", "config.localservices", "up"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: PostgreSQL at postgresql://steward@127.0.0.1:1/steward cannot be reached")
    assert "Traceback" not in result.stderr


def test_exec_runs_the_command_with_the_services_up_and_returns_its_exit_code() -> None:
    probe = (
        "import sys; from config import localservices as s; "
        "s.check_database(s.embedded_pg_url() or __import__('os').environ['DATABASE_URL']); "
        "print(s.redis_ping(s._redis_url())); sys.exit(3)"
    )
    result = subprocess.run(
        [sys.executable, "-m", "config.localservices", "exec", "--", sys.executable, "-c", probe],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip().endswith("True")


def test_the_chromium_command_names_a_wrong_steward_chromium(tmp_path: Path) -> None:
    not_executable = tmp_path / "chromium"
    not_executable.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "config.localservices", "chromium"],
        env={**os.environ, "STEWARD_CHROMIUM": str(not_executable)},
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: STEWARD_CHROMIUM={not_executable} is not an executable file."


def test_the_chromium_command_prints_a_configured_executable(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.setenv("STEWARD_CHROMIUM", str(browser))
    assert localservices.chromium_path() == str(browser)
