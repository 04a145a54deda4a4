"""Is a kept or pooled PostgreSQL connection still usable? Without a round trip when nothing can be wrong.

Django checks a connection before it uses it again (``conn_health_checks``) with ``SELECT 1``: in a Celery worker, a
round trip before every task's first query; in the web process, every time the pool hands a connection out — every
message a customer sends. A connection the server closed (a restart, ``pg_terminate_backend``, an idle timeout) has
something to read on its socket: the server's last message and the end of the stream. So a connection that is open,
idle outside a transaction, with nothing to read, is used as it is; otherwise the round trip decides, as before. (A
connection cut without a word, by a network partition, is found by its first query either way.)
"""

from __future__ import annotations

import select

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool


def quietly_alive(connection: psycopg.Connection) -> bool:
    """True when ``connection`` is open, idle outside a transaction, and the server sent nothing since its last
    result (the socket is not readable): nothing says it is broken. False: check it with a round trip."""
    if connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def check_connection(connection: psycopg.Connection) -> None:
    """The web process's pool check (psycopg_pool's ``check``): raises when the connection cannot be used."""
    if not quietly_alive(connection):
        ConnectionPool.check_connection(connection)
