"""Django's PostgreSQL backend, whose connection checks cost no round trip when nothing can be wrong (checks.py).

Django checks a kept connection before a Celery task's first query (``is_usable``) and a pooled one as the web
process's pool hands it out (psycopg_pool's ``check``, which Django sets itself when it builds the pool): both are a
``SELECT 1`` round trip in Django. Here both ask ``checks.quietly_alive`` first.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

from config.postgresql.checks import check_connection, quietly_alive


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        return self.connection is not None and (quietly_alive(self.connection) or super().is_usable())

    @property
    def pool(self) -> Any:
        """Django's pool (``OPTIONS["pool"]``), built as Django builds it but with ``checks.check_connection``."""
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options or not self.settings_dict["CONN_HEALTH_CHECKS"]:
            return super().pool
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            from psycopg_pool import ConnectionPool

            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django: it sets autocommit itself later
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check_connection,
                **({} if options is True else options),
            )
            self._connection_pools.setdefault(self.alias, pool)  # the first thread to build one wins, as in Django
        return self._connection_pools[self.alias]
