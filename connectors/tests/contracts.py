"""Contract harness: an httpx transport that plays a vendor from canned responses and validates, with openapi-core,
every request the adapter sends and every response it is given against the vendor's own OpenAPI document
(../shared/contracts). A request or response outside the contract fails the test.

Where the contracts folder is absent (a checkout elsewhere), tests using it skip with a message naming what is
missing (``contract_or_skip``); everything else still runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

CONTRACTS_DIR = Path(
    os.environ.get("STEWARD_CONTRACTS_DIR", Path(__file__).resolve().parents[3] / "shared" / "contracts")
)


def contract_or_skip(relative: str) -> Any:
    """Return the openapi-core OpenAPI object for a vendor spec, or skip the test when the file is not here."""
    path = CONTRACTS_DIR / relative
    if not path.exists():
        pytest.skip(f"vendor contract {path} is missing (set STEWARD_CONTRACTS_DIR to the shared/contracts folder)")
    return _load(relative)


@cache
def _load(relative: str) -> Any:
    from openapi_core import OpenAPI

    tools = str(CONTRACTS_DIR / "_tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    from compat import load_spec  # the contracts' own in-memory fixes for openapi-core (see USAGE.md there)

    return OpenAPI.from_dict(load_spec(relative))


@dataclass
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


Responder = Callable[[Exchange], tuple[int, Any] | tuple[int, Any, dict[str, str]]]


@dataclass
class ContractTransport(httpx.BaseTransport):
    """Validate each request against ``api``, answer it with ``responder``, and validate the answer too.

    ``path_rewrite`` maps the URL path the adapter uses to the spec's path (e.g. Zendesk's ``.json`` suffix, which
    its spec omits). ``validate_response=False`` is for deliberately broken answers (malformed JSON, drift).
    """

    api: Any
    server: str
    responder: Responder
    path_rewrite: Callable[[str], str] = lambda path: path
    validate_response: bool = True
    exchanges: list[Exchange] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from openapi_core.testing import MockRequest, MockResponse

        path = self.path_rewrite(request.url.path)
        content_type = request.headers.get("content-type", "")
        raw = request.content
        if raw and "json" in content_type:
            body: Any = json.loads(raw)
        elif raw and "x-www-form-urlencoded" in content_type:
            body = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        else:
            body = raw.decode() if raw else None
        query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        headers = {k.title(): v for k, v in request.headers.items()}
        mock_request = MockRequest(
            self.server,
            request.method.lower(),
            path,
            headers=headers,
            args=query,
            data=raw or None,
            content_type=content_type.split(";")[0] or "application/json",
        )
        self.api.validate_request(mock_request)  # raises on any violation of the vendor contract
        exchange = Exchange(request.method, path, query, body, headers)
        self.exchanges.append(exchange)
        answer = self.responder(exchange)
        status, payload = answer[0], answer[1]
        extra_headers = answer[2] if len(answer) > 2 else {}
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if self.validate_response:
            self.api.validate_response(
                mock_request, MockResponse(content, status_code=status, content_type="application/json")
            )
        return httpx.Response(status, content=content, headers={"content-type": "application/json", **extra_headers})
