"""Shared fixtures: a per-run test database, and real daphne and Celery worker processes for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

BASE_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Give this run a test database of its own: two runs on one server would otherwise drop each other's."""
    from django.conf import settings

    suffix = settings.STEWARD_NAMESPACE.replace("-", "_")
    for alias in settings.DATABASES.values():
        alias.setdefault("TEST", {})["NAME"] = f"test_steward_{suffix}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_tests() -> str:
    """Return a DATABASE_URL pointing at this run's test database (for processes the tests start)."""
    from django.conf import settings
    from django.db import connection

    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def test_mail_dir() -> Path:
    """Where the daphne and worker processes the tests start write e-mail (one file per message)."""
    from django.conf import settings

    return Path(tempfile.gettempdir()) / f"steward-mail-{settings.STEWARD_NAMESPACE}"


def service_env(**overrides: str) -> dict[str, str]:
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "STEWARD_NAMESPACE": settings.STEWARD_NAMESPACE,
        "DATABASE_URL": database_url_for_tests(),
        "PYTHONUNBUFFERED": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(test_mail_dir()),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests' allowance is for the test process only
    env.update(overrides)
    return env


@dataclass
class RunningProcess:
    process: subprocess.Popen[bytes]
    log: Path
    name: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _start(name: str, argv: list[str], env: dict[str, str], tmp: Path) -> RunningProcess:
    log = tmp / f"{name}.log"
    handle = open(log, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return RunningProcess(process=process, log=log, name=name)


def _wait_until(check, what: str, running: RunningProcess, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(f"{running.name} exited with {running.process.returncode}:\n{running.log_tail()}")
        if check():
            return
        time.sleep(0.1)
    running.stop()
    pytest.fail(f"{what} within {timeout:.0f} s:\n{running.log_tail()}")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None, django_db_blocker, tmp_path_factory) -> Iterator[RunningProcess]:  # type: ignore[no-untyped-def]
    """A real `celery worker` process on this run's queue and test database."""
    from django.conf import settings

    from config.celery import app

    node = f"{settings.STEWARD_NAMESPACE}@{socket.gethostname()}"
    with django_db_blocker.unblock():
        env = service_env()
    running = _start(
        "celery-worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-n",
            node,
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ],
        env,
        tmp_path_factory.mktemp("worker"),
    )
    _wait_until(
        lambda: bool(app.control.ping(destination=[node], timeout=0.5)), "the Celery worker did not answer", running
    )
    yield running
    running.stop()


@dataclass
class Daphne:
    running: RunningProcess
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def start_daphne(tmp: Path, **env_overrides: str) -> Daphne:
    port = _free_port()
    running = _start(
        "daphne",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        service_env(**env_overrides),
        tmp,
    )

    def answers() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    _wait_until(answers, "daphne did not accept connections", running)
    return Daphne(running=running, port=port)


@pytest.fixture(scope="session")
def daphne_server(django_db_setup: None, django_db_blocker, tmp_path_factory) -> Iterator[Daphne]:  # type: ignore[no-untyped-def]
    """A real daphne serving config.asgi on 127.0.0.1 (a free port), on this run's test database."""
    with django_db_blocker.unblock():
        server = start_daphne(tmp_path_factory.mktemp("daphne"))
    yield server
    server.running.stop()


@pytest.fixture
def demo_company_served(transactional_db, daphne_server, celery_worker_process) -> Iterator[Daphne]:  # type: ignore[no-untyped-def]
    """The demo company in this run's test database, served by the real daphne and answered by the real worker.

    Governance, the 20 intents, the helpdesk queues, the connectors (the demo CRM/commerce system is served by the
    same daphne under /brewline-api/v1), and the help centre's shipping, returns-and-refunds and subscriptions
    articles. The database is flushed after the test (transactional), so each test starts from this state.
    """
    from agent.demo import seed_intents
    from brewline.demo import seed_brewline
    from connectors.demo import seed_connector_rows
    from connectors.helpdesk_schema import ensure_helpdesk_schema, seed_helpdesk_connector
    from connectors.models import Connector
    from governance.demo import seed_governance
    from knowledge.demo import seed_knowledge

    seed_governance()
    seed_intents()
    ensure_helpdesk_schema()
    seed_helpdesk_connector()
    _, token = seed_connector_rows()
    seed_brewline(token, customers=12, orders=40)
    Connector.objects.filter(key__in=["demo_crm", "demo_commerce"]).update(
        base_url=f"{daphne_server.http}/brewline-api/v1"
    )
    seed_knowledge(only=["shipping", "returns-and-refunds", "subscriptions"])
    yield daphne_server
    served_processes_wait_idle()


def served_processes_wait_idle(timeout: float = 30.0) -> None:
    """Wait until the worker has no queued task and no conversation turn in progress (twice in a row, 0.2 s apart).

    The database is flushed (TRUNCATE) after a transactional test; a turn still running in the worker would hold
    locks that deadlock the flush, and its writes would leak into the next test.
    """
    import redis
    from django.conf import settings

    from agent.models import Conversation

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        queued = client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
        turning = Conversation.objects.exclude(turn_claimed_by="").exists()
        quiet = quiet + 1 if not queued and not turning else 0
        time.sleep(0.2)


def mail_codes(email: str) -> list[str]:
    """The one-time codes e-mailed to ``email`` by the served processes, oldest first."""
    import re

    codes: list[str] = []
    folder = test_mail_dir()
    for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.exists() else []:
        text = path.read_text(errors="replace")
        if f"To: {email}" in text:
            codes += re.findall(r"\b(\d{6})\b", text)
    return codes


# --- Personas ----------------------------------------------------------------------------------------------------


@pytest.fixture
def support_admin(db):  # type: ignore[no-untyped-def]
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    return UserFactory(username="ada_admin", roles=[Role.SUPPORT_ADMIN])


@pytest.fixture
def support_manager(db):  # type: ignore[no-untyped-def]
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    return UserFactory(username="mo_manager", roles=[Role.SUPPORT_MANAGER])


@pytest.fixture
def support_agent(db):  # type: ignore[no-untyped-def]
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    return UserFactory(username="sam_agent", roles=[Role.SUPPORT_AGENT])


@pytest.fixture
def qa_reviewer(db):  # type: ignore[no-untyped-def]
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    return UserFactory(username="quinn_reviewer", roles=[Role.QA_REVIEWER])


@pytest.fixture
def outsider(db):  # type: ignore[no-untyped-def]
    """A staff account with no support role."""
    from governance.tests.factories import UserFactory

    return UserFactory(username="olly_outsider")


@pytest.fixture
def verified_customer():  # type: ignore[no-untyped-def]
    from governance.roles import Principal, Verification

    return Principal.customer(verification=Verification.IDENTITY_VERIFIED, customer_id="C-1001")


@pytest.fixture
def email_verified_customer():  # type: ignore[no-untyped-def]
    from governance.roles import Principal, Verification

    return Principal.customer(verification=Verification.EMAIL_VERIFIED, customer_id="C-1002")


@pytest.fixture
def anonymous_visitor():  # type: ignore[no-untyped-def]
    from governance.roles import Principal, Verification

    return Principal.customer(verification=Verification.ANONYMOUS)
