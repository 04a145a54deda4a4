"""The customer chat websocket.

Until the chat protocol lands (docs/chat-protocol.md, the agent issue) this consumer speaks a minimal, non-echoing
protocol that proves the whole path a turn will take: a ``ping`` frame is queued as a Celery task, the worker answers
on this connection's channel through the Redis channel layer, and the consumer pushes ``pong`` to the client.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

MAX_FRAME_BYTES = 8 * 1024
PROTOCOL_VERSION = 0


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.conversation = str(self.scope["url_route"]["kwargs"]["conversation"])
        await self.accept()
        await self._send({"type": "hello", "protocol": PROTOCOL_VERSION, "conversation": self.conversation})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self._error("binary_not_supported", "Send JSON text frames.")
            return
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            await self._error("too_large", f"A frame may be at most {MAX_FRAME_BYTES} bytes.")
            return
        try:
            frame = json.loads(text_data)
        except json.JSONDecodeError:
            await self._error("bad_json", "The frame is not valid JSON.")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._error("bad_frame", 'A frame is a JSON object with a string "type".')
            return
        if frame["type"] == "ping":
            await self._enqueue_ping()
            return
        await self._error("unsupported_type", f"Unsupported frame type {frame['type'][:40]!r}.")

    async def _enqueue_ping(self) -> None:
        from config.celery import ping

        try:
            await sync_to_async(ping.delay, thread_sensitive=False)(self.channel_name)
        except Exception:  # noqa: BLE001 - process boundary: the broker is down; tell the client, keep the socket
            await self._error("unavailable", "The task queue is not reachable; try again shortly.")

    async def pong(self, event: dict[str, Any]) -> None:
        """Push a worker's answer (sent to this connection's channel by ``steward.ping``)."""
        await self._send({"type": "pong", "worker": event["worker"]})

    async def _error(self, code: str, message: str) -> None:
        await self._send({"type": "error", "code": code, "message": message})

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload))
