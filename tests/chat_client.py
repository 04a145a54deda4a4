"""The customer's side of Steward's chat, for end-to-end tests against a served Steward (docs/chat-protocol.md).

Synchronous on purpose (``websockets.sync``): the tests look at the database between frames, and the ORM may not be
used while an event loop runs in the thread. The sync client reads frames on a thread of its own, so nothing the
server sends is lost while a test checks the database.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

# The worker is one solo-pool process: a reply may wait behind other turns, and the first turn loads the embedding
# model. Waits poll for a frame; this is only how long they give up after.
REPLY_TIMEOUT = 60.0

Frame = dict[str, Any]
Predicate = Callable[[Frame], bool]


@dataclass(frozen=True)
class ChatConversation:
    id: str
    token: str
    websocket: str  # the path, with the token


def conversation_open(http: str) -> ChatConversation:
    """Start a conversation the way the widget does: POST /api/chat/conversations/ over HTTP."""
    response = httpx.post(f"{http}/api/chat/conversations/", json={}, timeout=30)
    assert response.status_code == 201, response.text
    body = response.json()
    return ChatConversation(id=body["id"], token=body["token"], websocket=body["websocket"])


# --- Predicates ------------------------------------------------------------------------------------------------------


def is_ack(client_id: str) -> Predicate:
    return lambda frame: frame["type"] == "ack" and frame["client_id"] == client_id


def is_agent_message(after_seq: int = 0) -> Predicate:
    return lambda frame: frame["type"] == "message" and frame["author"] == "agent" and frame["seq"] > after_seq


def is_state(owner: str) -> Predicate:
    return lambda frame: frame["type"] == "state" and frame["owner"] == owner


def is_error(code: str) -> Predicate:
    return lambda frame: frame["type"] == "error" and frame["code"] == code


class CustomerSocket:
    """One websocket connection of a conversation: sends frames, and keeps every frame it received, in order."""

    def __init__(self, server: Any, conversation: ChatConversation) -> None:
        self.conversation = conversation
        self.frames: list[Frame] = []
        self._matched = 0  # frames before this index were passed over by an earlier wait
        # websockets 17 wants its connection used as a context manager; this object is one, around it.
        self.socket = connect(
            f"{server.ws}{conversation.websocket}", origin=server.http, open_timeout=30, proxy=None, max_queue=None
        ).__enter__()
        self.hello = self.wait_for(lambda frame: frame["type"] == "hello", timeout=30, what="hello")

    def __enter__(self) -> CustomerSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.socket.__exit__(None, None, None)

    # --- sending ---------------------------------------------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        self.socket.send(json.dumps(frame))

    def say(self, text: str, *, client_id: str | None = None) -> str:
        """Send a customer message; return its client id."""
        client_id = client_id or str(uuid.uuid4())
        self.send({"type": "message", "client_id": client_id, "text": text})
        return client_id

    def ask(self, text: str) -> Frame:
        """Say ``text``, wait for its ack, then for the agent's next message; return that message."""
        ack = self.wait_for(is_ack(self.say(text)), what=f"the ack of {text!r}")
        return self.wait_for(is_agent_message(after_seq=ack["seq"]), what=f"the agent's answer to {text!r}")

    # --- receiving -------------------------------------------------------------------------------------------------

    def wait_for(self, predicate: Predicate, *, timeout: float = REPLY_TIMEOUT, what: str = "a frame") -> Frame:
        """Return the first frame, not passed over by an earlier wait, that matches; fail after ``timeout``."""
        for index in range(self._matched, len(self.frames)):
            if predicate(self.frames[index]):
                self._matched = index + 1
                return self.frames[index]
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.socket.recv(timeout=remaining))
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                raise AssertionError(f"the connection closed ({exc}) before {what}.\n{self.transcript()}") from None
            self.frames.append(frame)
            if predicate(frame):
                self._matched = len(self.frames)
                return frame
        raise AssertionError(f"no {what} within {timeout:.0f} s.\n{self.transcript()}")

    def receive_until_closed(self, *, timeout: float = 30.0) -> int | None:
        """Keep every frame until the server closes the connection; return the close code."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.frames.append(json.loads(self.socket.recv(timeout=remaining)))
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
        raise AssertionError(f"the server did not close the connection within {timeout:.0f} s.\n{self.transcript()}")

    def message_seqs(self) -> list[int]:
        """The seq of every message this connection has, in the order received (duplicates kept): its own messages
        by their ``ack`` (the sender gets no ``message`` frame of them), the others' by their ``message`` frame."""
        return [frame["seq"] for frame in self.frames if frame["type"] in ("message", "ack")]

    def transcript(self) -> str:
        return "frames received:\n" + "\n".join(json.dumps(frame, ensure_ascii=False)[:400] for frame in self.frames)
