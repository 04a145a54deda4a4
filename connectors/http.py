"""HTTP for adapters: httpx with a timeout on every call, bounded retries with exponential backoff and full jitter,
Retry-After honoured on 429/503, and responses classified into ConnectorError at the boundary."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from connectors.base import ConnectorError, NotFound

MAX_ATTEMPTS = 3
BACKOFF_BASE = 0.25  # seconds; attempt n sleeps uniform(0, base * 2**n) ("full jitter", AWS architecture blog)
MAX_RETRY_AFTER = 10.0  # a longer Retry-After is not waited for inside a turn: the call fails as transient


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: treated as "unknown", the normal backoff applies


def classify(
    response: httpx.Response, *, what: str, describe: Callable[[httpx.Response], str] | None = None
) -> ConnectorError | None:
    """Return the error a response means, or None for success. ``describe`` pulls the vendor's own error message out
    of an error response (empty when it finds none); by default the first 200 characters of the body are quoted."""
    status = response.status_code
    if status < 400:
        return None
    detail = (describe(response) if describe else "") or response.text[:200].strip()
    if status == 401:
        return ConnectorError(f"{what}: credential refused ({status})", auth=True, status=status)
    if status == 403:
        # Forbidden for this request (a restricted record, a missing scope): permanent, but not a dead credential —
        # disabling the whole connector over one restricted record would stop every other conversation.
        return ConnectorError(f"{what}: forbidden ({status}) {detail}", permanent=True, status=status)
    if status == 404:
        return NotFound(f"{what}: not found")
    if status == 429 or status >= 500:
        return ConnectorError(f"{what}: {status} {detail}", status=status, retry_after=_retry_after(response))
    return ConnectorError(f"{what}: refused ({status}) {detail}", permanent=True, status=status)


class HttpClient:
    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        describe_error: Callable[[httpx.Response], str] | None = None,
    ) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout, headers=headers or {}, transport=transport)
        self._sleep = sleep
        self._describe_error = describe_error

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, what: str, retry: bool, **kwargs: Any) -> Any:
        """Send a request and return its parsed JSON (None for an empty body).

        ``retry``: whether a transient failure may be retried — reads always, writes only when the remote side
        honours the idempotency key sent with them.
        """
        attempts = MAX_ATTEMPTS if retry else 1
        last: ConnectorError | None = None
        for attempt in range(attempts):
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                last = ConnectorError(f"{what}: timed out")
            except httpx.HTTPError as exc:
                last = ConnectorError(f"{what}: {exc.__class__.__name__}: {exc}")
            else:
                error = classify(response, what=what, describe=self._describe_error)
                if error is None:
                    return _json(response, what=what)
                if error.permanent:
                    raise error
                last = error
                if error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER:
                    break
            if attempt + 1 < attempts:
                wait = (
                    last.retry_after if last.retry_after is not None else random.uniform(0, BACKOFF_BASE * 2**attempt)
                )
                self._sleep(wait)
        assert last is not None
        raise last


def _json(response: httpx.Response, *, what: str) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConnectorError(f"{what}: the response is not valid JSON") from None


def require(data: Any, path: str, kind: type | tuple[type, ...], *, what: str) -> Any:
    """Return ``data[path]`` (dotted) checked against ``kind``; schema drift is a clear ConnectorError."""
    value = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConnectorError(f"{what}: the response has no {path!r} (the system's API may have changed)")
        value = value[part]
    if not isinstance(value, kind):
        raise ConnectorError(f"{what}: {path!r} is {type(value).__name__}, expected {kind}")
    return value
