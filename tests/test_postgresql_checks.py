"""A connection is reused without a round trip only while nothing says it is broken (config/postgresql)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from config.postgresql.checks import quietly_alive

pytestmark = pytest.mark.django_db(transaction=True)


def _own_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def test_an_idle_connection_passes_without_a_round_trip_and_a_terminated_one_fails() -> None:  # type: ignore[no-untyped-def]
    with _own_connection() as mine, _own_connection() as other:
        pid = mine.info.backend_pid
        assert quietly_alive(mine)
        with mine.transaction():
            assert not quietly_alive(mine)  # inside a transaction: the round trip decides
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 5
        while quietly_alive(mine) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not quietly_alive(mine)  # the server said goodbye: the socket is readable
        with pytest.raises(psycopg.OperationalError):
            mine.execute("SELECT 1")  # what the round trip then finds


def test_djangos_connection_is_replaced_after_the_server_ends_it() -> None:  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    assert connection.is_usable()
    with _own_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not connection.is_usable()
    # What a worker does before a task (config/celery.py): the next query checks the connection, finds it unusable
    # and opens a new one.
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_the_pool_hands_out_a_new_connection_for_one_the_server_ended() -> None:  # type: ignore[no-untyped-def]
    from config.postgresql.base import DatabaseWrapper
    from config.postgresql.checks import check_connection

    settings_dict = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1, "timeout": 5}},
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool_check_test")
    try:
        pool = wrapper.pool
        assert pool._check is check_connection  # Django's pool, with this check instead of a round trip
        pool.open(wait=True)
        with pool.connection() as first:
            pid = first.info.backend_pid
        with pool.connection() as again:
            assert again.info.backend_pid == pid  # quiet: reused without a check query
        with _own_connection() as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        time.sleep(0.2)
        with pool.connection() as replaced:
            assert replaced.info.backend_pid != pid
            assert replaced.execute("SELECT 1").fetchone() == (1,)
    finally:
        wrapper.close_pool()
