"""Real processes: a Celery worker and daphne on 127.0.0.1, talking through Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from config.celery import database_backend, heartbeat, ping

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_task_round_trip_runs_in_the_worker_process(celery_worker_process) -> None:  # type: ignore[no-untyped-def]
    answer = ping.delay().get(timeout=20)
    assert answer["pong"] is True
    # The answer comes from the worker subprocess, not from this test process.
    assert answer["pid"] == celery_worker_process.process.pid


def test_the_worker_keeps_its_database_connection_between_tasks_and_drops_it_after_a_failure(  # type: ignore[no-untyped-def]
    celery_worker_process,
) -> None:
    """A new PostgreSQL connection costs 5-11 ms and a cold catalog cache: tasks share one (DATABASE_CONN_MAX_AGE).
    A task that fails (an exception, a time limit, perhaps mid-query) leaves nothing behind for the next one."""
    first = database_backend.delay().get(timeout=20)
    assert database_backend.delay().get(timeout=20) == first

    with pytest.raises(TypeError, match="[Cc]hannel name"):  # fails in the worker: no such channel name
        ping.delay("not a channel name!").get(timeout=20)

    assert database_backend.delay().get(timeout=20) not in {first, None}


def test_healthz_over_daphne_is_green_with_a_worker(daphne_server, celery_worker_process) -> None:  # type: ignore[no-untyped-def]
    heartbeat.delay().get(timeout=20)
    response = httpx.get(f"{daphne_server.http}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "pgvector", "redis", "worker"}


def test_healthz_names_an_unreachable_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import start_daphne

    server = start_daphne(
        tmp_path, DATABASE_URL="postgresql://steward@127.0.0.1:1/steward", DATABASE_CONNECT_TIMEOUT="1"
    )
    try:
        response = httpx.get(f"{server.http}/healthz", timeout=15)
    finally:
        server.running.stop()
    assert response.status_code == 503
    body = response.json()
    assert body["failing"][:2] == ["database", "pgvector"]
    assert body["checks"]["database"]["error"].startswith("OperationalError")


async def _receive(socket: websockets.ClientConnection) -> dict:  # type: ignore[type-arg]
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=20))


def _conversation() -> tuple[str, str]:
    from agent.messages import conversation_start, conversation_token

    conversation = conversation_start()
    return str(conversation.id), conversation_token(conversation)


def test_a_websocket_ping_goes_through_the_worker_and_comes_back(daphne_server, celery_worker_process) -> None:  # type: ignore[no-untyped-def]
    conversation, token = _conversation()

    async def scenario() -> tuple[dict, dict, dict]:  # type: ignore[type-arg]
        async with websockets.connect(
            f"{daphne_server.ws}/ws/chat/{conversation}/?token={token}", origin=f"http://127.0.0.1:{daphne_server.port}"
        ) as socket:
            hello = await _receive(socket)
            await socket.send(json.dumps({"type": "ping"}))
            pong = await _receive(socket)
            await socket.send("{not json")
            error = await _receive(socket)
            return hello, pong, error

    hello, pong, error = asyncio.run(scenario())
    assert (hello["type"], hello["conversation"], hello["owner"]) == ("hello", conversation, "agent")
    assert pong["type"] == "pong"
    assert pong["worker"]["pid"] == celery_worker_process.process.pid
    assert error["type"] == "error" and error["code"] == "bad_json"


def test_a_websocket_with_another_conversations_token_is_refused(daphne_server) -> None:  # type: ignore[no-untyped-def]
    conversation, _ = _conversation()
    _, other_token = _conversation()

    async def scenario() -> None:
        async with websockets.connect(
            f"{daphne_server.ws}/ws/chat/{conversation}/?token={other_token}",
            origin=f"http://127.0.0.1:{daphne_server.port}",
        ):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus) as excinfo:
        asyncio.run(scenario())
    assert excinfo.value.response.status_code == 403


def test_a_websocket_from_a_foreign_origin_is_refused(daphne_server) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with websockets.connect(
            f"{daphne_server.ws}/ws/chat/6f1c2f3e-2b7a-4c55-9f59-2d3f1f6f4a10/", origin="https://evil.example"
        ):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus) as excinfo:
        asyncio.run(scenario())
    assert excinfo.value.response.status_code == 403
