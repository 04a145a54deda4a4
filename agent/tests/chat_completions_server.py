"""A scripted OpenAI-compatible Chat Completions server for tests: real HTTP on 127.0.0.1, replies from a script.

``POST /v1/chat/completions`` answers with the next scripted ``Scripted`` reply, as a chat completion object
(``stream: false``) or as server-sent events (``stream: true``): ``data: {chunk}`` lines, then ``data: [DONE]``. The
shapes follow the API reference (platform.openai.com/docs/api-reference/chat/streaming) and the ``openai`` package's
types: the first chunk carries ``delta.role``; text arrives as ``delta.content`` pieces; a tool call's first delta
carries its ``index``, ``id``, ``type`` and ``function.name`` with empty arguments, and the arguments follow in pieces
under the same ``index``; the last chunk has an empty delta and the ``finish_reason``; with
``stream_options.include_usage`` a final chunk with no choices carries the usage. Errors are
``{"error": {"message", "type", "param", "code"}}`` with their HTTP status.

Every request body is recorded (``server.requests``), so a test can check exactly what left for the model.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARGUMENT_PIECE = 7  # tool-call arguments are streamed in pieces of this many characters


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    arguments: str  # the JSON text as the model writes it (not necessarily valid)
    id: str = ""


@dataclass(frozen=True)
class Scripted:
    """One scripted reply: text and/or tool calls, an HTTP error, a raw body, or a stall."""

    content: str = ""
    tool_calls: tuple[ScriptedCall, ...] = ()
    finish_reason: str = ""  # default: "tool_calls" with tool calls, else "stop"
    status: int = 200
    error: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None  # sent as it is (a malformed body)
    delay: float = 0.0  # seconds before answering (a timeout)
    stop_after: int | None = None  # streaming: close the connection after this many chunks (no [DONE])


def text(content: str, **kwargs: Any) -> Scripted:
    return Scripted(content=content, **kwargs)


def tool_call(name: str, arguments: dict[str, Any] | str, *, call_id: str = "", content: str = "") -> Scripted:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Scripted(content=content, tool_calls=(ScriptedCall(name, raw, call_id),))


def tool_calls(*calls: tuple[str, dict[str, Any] | str]) -> Scripted:
    return Scripted(
        tool_calls=tuple(ScriptedCall(name, a if isinstance(a, str) else json.dumps(a)) for name, a in calls)
    )


def error(status: int, message: str, *, kind: str = "server_error", code: str | None = None) -> Scripted:
    return Scripted(status=status, error={"message": message, "type": kind, "param": None, "code": code})


def raw(body: bytes, *, status: int = 200) -> Scripted:
    return Scripted(raw=body, status=status)


def stalled(seconds: float) -> Scripted:
    return Scripted(content="too late", delay=seconds)


class ChatCompletionsServer:
    """The server; use as a context manager. ``url`` is the base URL to give the client (ends in ``/v1``)."""

    def __init__(self, *script: Scripted, model: str = "scripted-model") -> None:
        self.model = model
        self.script: deque[Scripted] = deque(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="chat-completions", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def add(self, *replies: Scripted) -> None:
        with self._lock:
            self.script.extend(replies)

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> Scripted | None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            return self.script.popleft() if self.script else None

    def start(self) -> ChatCompletionsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ChatCompletionsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sent_text(self) -> str:
        """Return every request body as one JSON text: what left for the model, to search for personal data."""
        return "\n".join(json.dumps(body, ensure_ascii=False) for body in self.requests)


# --- Rendering ------------------------------------------------------------------------------------------------------


def _pieces(content: str) -> list[str]:
    """Split text the way a model streams it: a word with the space before it per piece."""
    pieces: list[str] = []
    for index, word in enumerate(content.split(" ")):
        pieces.append(word if index == 0 else " " + word)
    return [piece for piece in pieces if piece]


def _finish_reason(reply: Scripted) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _call_id(number: int, index: int, call: ScriptedCall) -> str:
    return call.id or f"call_{number}_{index}"


def completion_object(reply: Scripted, model: str, number: int) -> dict[str, Any]:
    """The non-streaming response body (``object: "chat.completion"``)."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(number, index, call),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-scripted{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_scripted",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(reply)}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def completion_chunks(reply: Scripted, model: str, number: int, *, usage: bool = False) -> list[dict[str, Any]]:
    """The streamed response's chunks (``object: "chat.completion.chunk"``), in order."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-scripted{number}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    chunks = [chunk({"role": "assistant", "content": "" if not reply.tool_calls else None, "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in _pieces(reply.content)]
    for index, call in enumerate(reply.tool_calls):
        opening = {
            "index": index,
            "id": _call_id(number, index, call),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [opening]}))
        for start in range(0, len(call.arguments), ARGUMENT_PIECE):
            piece = call.arguments[start : start + ARGUMENT_PIECE]
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, _finish_reason(reply)))
    if usage:
        chunks.append(
            {
                "id": f"chatcmpl-scripted{number}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )
    return chunks


def _handler_for(server: ChatCompletionsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, a streamed body ends when the connection closes.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                return
            reply = server.next_reply(body, {key.lower(): value for key, value in self.headers.items()})
            if reply is None:
                self._json(500, {"error": {"message": "the test's script is exhausted", "type": "server_error"}})
                return
            if reply.delay:
                time.sleep(reply.delay)
            if reply.raw is not None:
                self._send(reply.status, "text/event-stream" if body.get("stream") else "application/json", reply.raw)
            elif reply.status != 200:
                self._json(reply.status, {"error": reply.error})
            elif body.get("stream"):
                self._stream(reply, body)
            else:
                self._json(200, completion_object(reply, body.get("model", server.model), len(server.requests)))

        def _stream(self, reply: Scripted, body: dict[str, Any]) -> None:
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = completion_chunks(reply, body.get("model", server.model), len(server.requests), usage=usage)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for number, chunk in enumerate(chunks):
                if reply.stop_after is not None and number >= reply.stop_after:
                    return  # the connection closes mid-stream
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(payload).encode())

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
