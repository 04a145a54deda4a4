"""POST /api/chat/conversations/: who may start a chat, and how often."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from django.core.cache import cache

from agent.models import Conversation

pytestmark = pytest.mark.django_db

URL = "/api/chat/conversations/"


@pytest.fixture
def address() -> Iterator[str]:
    """A client address of this test's own, so its start limit is fresh (never cache.clear(): it flushes Redis)."""
    address = f"198.51.100.{random.randint(1, 254)}"
    cache.delete(f"throttle_anon_{address}")
    yield address
    cache.delete(f"throttle_anon_{address}")


def test_a_page_steward_served_itself_may_start_a_chat_whatever_site_url_says(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SITE_URL = "https://support.example.com"
    response = client.post(URL, {}, content_type="application/json", headers={"Origin": "http://testserver"})
    assert response.status_code == 201
    assert response.json()["websocket"].startswith(f"/ws/chat/{response.json()['id']}/?token=")


def test_a_foreign_origin_is_refused_and_nothing_is_stored(client) -> None:  # type: ignore[no-untyped-def]
    for origin in ("http://evil.example", "http://testserver:81"):
        response = client.post(URL, {}, content_type="application/json", headers={"Origin": origin})
        assert response.status_code == 403
        assert "may not embed this chat" in response.json()["detail"]
    assert not Conversation.objects.exists()


def test_an_allowed_widget_origin_gets_cors_headers(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_WIDGET_ORIGINS = ["https://shop.example.com"]
    response = client.post(URL, {}, content_type="application/json", headers={"Origin": "https://shop.example.com"})
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"


def test_a_client_cannot_dodge_the_start_limit_with_its_own_forwarded_for_header(client, address) -> None:  # type: ignore[no-untyped-def]
    answers = [
        client.post(
            URL, {}, content_type="application/json", headers={"X-Forwarded-For": f"10.0.0.{n}"}, REMOTE_ADDR=address
        ).status_code
        for n in range(31)
    ]
    assert answers[:30] == [201] * 30
    assert answers[30] == 429


def test_a_saved_conversation_can_be_checked_with_its_token_only(client, address) -> None:  # type: ignore[no-untyped-def]
    started = client.post(URL, {}, content_type="application/json", REMOTE_ADDR=address).json()
    status = client.get(f"{URL}{started['id']}/", {"token": started["token"]}, REMOTE_ADDR=address)
    assert status.status_code == 200 and status.json() == {"id": started["id"], "owner": "agent", "last_seq": 0}

    other = client.post(URL, {}, content_type="application/json", REMOTE_ADDR=address).json()
    for conversation_id, token in ((started["id"], other["token"]), (started["id"], "junk"), ("no-such-id", "junk")):
        answer = client.get(f"{URL}{conversation_id}/", {"token": token}, REMOTE_ADDR=address)
        assert answer.status_code == 404
        assert answer.json() == {"detail": "No such conversation for this token."}

    Conversation.objects.filter(pk=started["id"]).delete()
    gone = client.get(f"{URL}{started['id']}/", {"token": started["token"]}, REMOTE_ADDR=address)
    assert gone.status_code == 404
