"""The customer chat websocket (protocol: docs/chat-protocol.md).

Small and defensive: every frame is validated (size, JSON, type, fields); a bad frame gets an ``error`` frame and the
connection stays open; a flood hits the rate limit; a wrong conversation token closes with 4403. ORM work goes
through ``database_sync_to_async``; the turn itself runs in a Celery worker, which answers on the conversation's
group.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from agent import messages
from agent.models import Message

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 8 * 1024
# Per connection: a burst of BURST frames, refilled at RATE frames a second (token bucket).
BURST, RATE = 8, 1.0
CLOSE_FORBIDDEN = 4403
CLOSE_FLOOD = 4429


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise FrameError("bad_frame", f"{name} must be a UUID.") from None


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FrameError("bad_frame", f"{name} must be non-empty text.")
    if len(value) > limit:
        raise FrameError("too_long", f"{name} may be at most {limit} characters.")
    return value.strip()


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FrameError("bad_frame", f"{name} must be a whole number from {low} to {high}.")
    return value


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        conversation_id = str(self.scope["url_route"]["kwargs"]["conversation"])
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        conversation = await database_sync_to_async(messages.conversation_from_token)(conversation_id, token)
        if conversation is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.conversation_id = conversation.id
        self.group = messages.group_name(conversation.id)
        self.tokens, self.refilled_at, self.flood_strikes = float(BURST), time.monotonic(), 0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "conversation": str(conversation.id),
                "owner": conversation.owner,
                "verification": conversation.verification,
                "last_seq": conversation.last_seq,
            }
        )

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if not self._take_token():
                self.flood_strikes += 1
                if self.flood_strikes > 3 * BURST:
                    await self.close(code=CLOSE_FLOOD)  # a client that ignores rate_limited errors
                    return
                raise FrameError("rate_limited", "Too many frames; slow down.")
            frame = self._parse(text_data, bytes_data)
            handler = getattr(self, f"on_{frame['type']}", None)
            if handler is None:
                raise FrameError("unsupported_type", f"Unsupported frame type {frame['type'][:40]!r}.")
            await handler(frame)
        except FrameError as exc:
            await self._send({"type": "error", "code": exc.code, "message": str(exc)})

    # --- frames from the client ---------------------------------------------------------------------------------

    async def on_message(self, frame: dict[str, Any]) -> None:
        client_id = _uuid(frame.get("client_id"), "client_id")
        text = _text(frame.get("text"), "text", messages.MAX_TEXT)
        message = await database_sync_to_async(self._receive_message)(client_id, text)
        if message is None:
            raise FrameError("rate_limited", "Too many messages in this conversation; please wait a minute.")
        await self._send({"type": "ack", "client_id": str(client_id), "seq": message.seq})

    async def on_resume(self, frame: dict[str, Any]) -> None:
        last_seq = _int(frame.get("last_seq", 0), "last_seq", 0, 2**31)
        for payload in await database_sync_to_async(messages.messages_after)(self.conversation_id, last_seq):
            await self._send(payload)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "conversation.frame",
                "frame": {"type": "typing", "author": "customer"},
                "skip": self.channel_name,
            },
        )

    async def on_csat(self, frame: dict[str, Any]) -> None:
        score = _int(frame.get("score"), "score", 1, 5)
        comment = frame.get("comment", "")
        if not isinstance(comment, str) or len(comment) > 2000:
            raise FrameError("bad_frame", "comment must be text of at most 2000 characters.")
        from agent.services import conversation_rate

        await database_sync_to_async(conversation_rate)(
            conversation_id=self.conversation_id, score=score, comment=comment
        )
        await self._send({"type": "csat_thanks"})

    async def on_feedback(self, frame: dict[str, Any]) -> None:
        """A thumbs up or down on one of the agent's replies, named by its ``seq``."""
        seq = _int(frame.get("seq"), "seq", 1, 2**31)
        helpful = frame.get("helpful")
        if not isinstance(helpful, bool):
            raise FrameError("bad_frame", "helpful must be true or false.")
        from agent.services import ReplyNotRateable, reply_feedback_record

        try:
            await database_sync_to_async(reply_feedback_record)(
                conversation_id=self.conversation_id, seq=seq, helpful=helpful
            )
        except ReplyNotRateable as exc:
            raise FrameError(exc.code, str(exc)) from None
        await self._send({"type": "feedback_thanks", "seq": seq, "helpful": helpful})

    async def on_request_human(self, frame: dict[str, Any]) -> None:
        from agent.services import conversation_request_human

        await database_sync_to_async(conversation_request_human)(conversation_id=self.conversation_id)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        """Diagnostic: a Celery worker answers on this connection's channel (proves broker, worker and layer)."""
        from config.celery import ping

        try:
            await sync_to_async(ping.delay, thread_sensitive=False)(self.channel_name)
        except Exception:  # noqa: BLE001 - process boundary: the broker is down; tell the client, keep the socket
            raise FrameError("unavailable", "The task queue is not reachable; try again shortly.") from None

    # --- events from the channel layer ---------------------------------------------------------------------------

    async def conversation_frame(self, event: dict[str, Any]) -> None:
        if event.get("skip") != self.channel_name:
            await self._send(event["frame"])

    async def pong(self, event: dict[str, Any]) -> None:
        await self._send({"type": "pong", "worker": event["worker"]})

    # --- helpers ---------------------------------------------------------------------------------------------------

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError("binary_not_supported", "Send JSON text frames.")
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            raise FrameError("too_large", f"A frame may be at most {MAX_FRAME_BYTES} bytes.")
        try:
            frame = json.loads(text_data)
        except json.JSONDecodeError:
            raise FrameError("bad_json", "The frame is not valid JSON.") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("bad_frame", 'A frame is a JSON object with a string "type".')
        return frame

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(BURST), self.tokens + (now - self.refilled_at) * RATE)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def _receive_message(self, client_id: uuid.UUID, text: str) -> Message | None:
        """Store the message (None: the conversation is over its per-minute limit).

        Storing queues the turn and shows the message on the conversation's other connections, once committed.
        """
        try:
            message, _ = messages.message_receive_customer(
                conversation_id=self.conversation_id,
                client_id=client_id,
                text=text,
                connection_channel=self.channel_name,
                embed_ahead=True,
            )
        except messages.MessageRateLimited:
            return None
        return message

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload))
