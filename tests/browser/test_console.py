"""The handoff console in a real browser: a customer on the real websocket asks for a person, a support agent signs
in, takes the conversation over in the console and replies; the customer receives it, and the console shows the
customer's next message live."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "console.png"
PASSWORD = "correct horse battery staple"  # governance.tests.factories.UserFactory


class Customer:
    """The widget's side of one conversation, over the real websocket."""

    def __init__(self, server: Any) -> None:
        from agent.messages import conversation_start, conversation_token

        conversation = conversation_start()
        self.id = str(conversation.id)
        self.url = f"{server.ws}/ws/chat/{self.id}/?token={conversation_token(conversation)}"
        self.origin = f"http://127.0.0.1:{server.port}"
        self.socket: ClientConnection | None = None
        self.frames: list[dict[str, Any]] = []

    def __enter__(self) -> Customer:
        self.socket = connect(self.url, origin=self.origin).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.socket is not None
        self.socket.__exit__(*exc)

    def send(self, frame: dict[str, Any]) -> None:
        self.socket.send(json.dumps(frame))

    def say(self, text: str) -> None:
        self.send({"type": "message", "client_id": str(uuid.uuid4()), "text": text})

    def wait_for(self, wanted, timeout: float = 45.0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            self.frames.append(frame)
            if wanted(frame):
                return frame
        raise AssertionError(f"no such frame within {timeout:.0f} s; got {[f.get('type') for f in self.frames]}")


def test_a_support_agent_takes_over_a_waiting_customer_and_replies_live(demo_company_served, page) -> None:  # type: ignore[no-untyped-def]
    from agent.models import Conversation, Owner
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    server = demo_company_served
    UserFactory(username="sam_agent", first_name="Sam", roles=[Role.SUPPORT_AGENT])
    with Customer(server) as customer:
        customer.wait_for(lambda f: f["type"] == "hello")
        customer.say("How long does delivery to the UK take?")
        answer = customer.wait_for(lambda f: f["type"] == "message" and f["author"] == "agent")
        assert "business days" in answer["text"]
        customer.send({"type": "request_human"})
        customer.wait_for(lambda f: f["type"] == "state" and f["owner"] == "waiting")

        page.goto(f"{server.http}/admin/login/?next=/console/")
        page.fill("#id_username", "sam_agent")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{server.http}/console/")
        waiting = page.locator("section[aria-labelledby=waiting-heading]")
        assert "customer asked for a person" in waiting.inner_text()
        waiting.get_by_role("link").first.click()
        page.wait_for_url(f"{server.http}/console/{customer.id}/")
        assert "How long does delivery to the UK take?" in page.locator("[data-console-transcript]").inner_text()

        page.get_by_role("button", name="Take over").click()
        page.wait_for_selector("text=You have the conversation")
        customer.wait_for(lambda f: f["type"] == "state" and f["owner"] == "human" and f["assignee"] == "Sam")
        page.get_by_label("Reply to the customer").fill("Hi, I'm Sam from Brewline. How can I help?")
        page.get_by_role("button", name="Send").click()
        reply = customer.wait_for(lambda f: f["type"] == "message" and f["author"] == "human")
        assert (reply["text"], reply["author_name"]) == ("Hi, I'm Sam from Brewline. How can I help?", "Sam")

        # The customer answers; the console shows it without a reload (console.js polls events.json).
        customer.say("My order BL-10041 arrived with a broken bag.")
        page.locator("[data-console-transcript]").get_by_text("arrived with a broken bag").wait_for(timeout=10_000)
        assert Conversation.objects.get(pk=customer.id).owner == Owner.HUMAN

        page.locator("details.console-trace > summary").first.click()  # show a turn trace in the screenshot
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
