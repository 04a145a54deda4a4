"""The chat widget on the demo page, in headless Chromium, against the real daphne and Celery worker.

What a customer sees: a cited answer, the hand-over to a person, and a transcript that survives a reload, a lost
network and a dropped socket without a gap or a duplicate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from agent import messages
from agent.messages import message_store_reply
from agent.models import Author, Conversation, Message, Owner
from agent.services import conversation_close

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "widget.png"
UK_QUESTION = "How long does delivery to the UK take?"
REPLY_TIMEOUT = 90_000  # the worker's first turn loads the embedder and builds the intent table

# Installed before the page's own scripts: records every WebSocket the widget opens (so a test can drop one) and,
# while window.__blockChat is set, sends new chat connections to a path that refuses them (the server is "away").
# While window.__dropAfterMessage is set, the socket closes right after the next `message` frame leaves (before its
# ack can arrive), so the widget has to send it again after reconnecting.
SOCKET_SPY = """
(() => {
  const Native = window.WebSocket;
  window.__chatSockets = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(window.__blockChat ? String(url).replace("/ws/chat/", "/ws/blocked/") : url, protocols);
      window.__chatSockets.push(this);
    }
    send(data) {
      super.send(data);
      if (window.__dropAfterMessage && JSON.parse(data).type === "message") {
        window.__dropAfterMessage = false;
        this.close();
      }
    }
  };
})();
"""


def from_another_thread(work: Callable[[], object]) -> None:
    """Run a service that pushes frames to the channel layer.

    Playwright's sync API keeps an asyncio loop in the test's thread, where async_to_sync (used by messages.push)
    refuses to run; the channel layer is reached from a plain thread instead, as a worker or the console would.
    """
    from django.db import connection

    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread below
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not failures, failures


def open_widget(page: Page, site_url: str) -> Locator:
    """Load the demo page, open the widget with the keyboard and return its dialog."""
    page.goto(f"{site_url}/")
    launcher = page.get_by_role("button", name="Brewline help")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    dialog = page.get_by_role("dialog", name="Brewline help")
    expect(dialog).to_be_visible()
    return dialog


def ask(dialog: Locator, text: str) -> None:
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill(text)
    box.press("Enter")


def transcript(dialog: Locator) -> list[tuple[int, str]]:
    """(seq, text) of every message bubble shown, in page order."""
    rows = dialog.locator(".msg[data-seq]").evaluate_all(
        "nodes => nodes.map(n => [Number(n.dataset.seq), n.querySelector('.text').dataset.text])"
    )
    return [(seq, text) for seq, text in rows]


def stored(conversation: Conversation) -> list[tuple[int, str]]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "text"))


def assert_shows_each_stored_message_once(dialog: Locator) -> None:
    conversation = Conversation.objects.get()
    shown = transcript(dialog)
    assert shown == stored(conversation), "the widget shows exactly the stored messages, in seq order, once each"


def test_a_visitor_asks_about_uk_delivery_and_gets_a_cited_answer(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    dialog = open_widget(page, demo_company_served.http)
    expect(dialog.get_by_role("textbox", name="Your message")).to_be_focused()

    ask(dialog, UK_QUESTION)

    log = dialog.get_by_role("log")
    expect(log.locator(".msg.customer .text")).to_have_text([UK_QUESTION])
    answer = log.locator(".msg.agent").last
    expect(answer).to_contain_text("2–3 business days", timeout=REPLY_TIMEOUT)
    expect(answer.locator(".author")).to_have_text("Brewline assistant")
    # The quoted table of delivery options is shown as a table, its header row as column headers.
    expect(answer.get_by_role("columnheader", name="Option")).to_be_visible()
    expect(answer.get_by_role("cell", name="Standard", exact=True)).to_be_visible()
    link = answer.locator(".citations a").first
    expect(link).to_have_attribute("href", "https://help.brewline.example/shipping/uk-delivery-times")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")
    expect(dialog).to_contain_text("Brewline assistant (AI) is answering")
    assert_shows_each_stored_message_once(dialog)

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Brewline help")).to_be_focused()


def test_talk_to_a_person_shows_the_waiting_state(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    dialog = open_widget(page, demo_company_served.http)

    dialog.get_by_role("button", name="Talk to a person").click()

    expect(dialog).to_contain_text("You asked to talk to a person.")
    expect(dialog).to_contain_text("Waiting for a person from our team", timeout=REPLY_TIMEOUT)
    expect(dialog.get_by_role("button", name="Talk to a person")).to_be_disabled()
    assert Conversation.objects.get().owner == Owner.WAITING


def test_a_reload_continues_the_conversation_without_duplicates(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    dialog = open_widget(page, demo_company_served.http)
    ask(dialog, UK_QUESTION)
    expect(dialog.locator(".msg.agent")).to_contain_text(["2–3 business days"], timeout=REPLY_TIMEOUT)
    before = transcript(dialog)

    page.reload()

    dialog = page.get_by_role("dialog", name="Brewline help")
    expect(dialog).to_be_visible()  # it was open before the reload
    expect(dialog.locator(".msg[data-seq]")).to_have_count(len(before))
    expect(dialog.get_by_role("button", name="Talk to a person")).to_be_enabled()  # connected again (hello)
    assert transcript(dialog) == before
    ask(dialog, "Thanks!")
    expect(dialog.locator(".msg.customer[data-seq]")).to_have_count(2)
    expect(dialog.locator(".msg.agent[data-seq]")).to_have_count(2, timeout=REPLY_TIMEOUT)  # "Thanks!" is answered
    assert Conversation.objects.count() == 1, "the reload continued the same conversation"
    assert_shows_each_stored_message_once(dialog)


def test_going_offline_queues_a_message_and_sends_it_once_back_online(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    dialog = open_widget(page, demo_company_served.http)
    ask(dialog, UK_QUESTION)
    expect(dialog.locator(".msg.agent")).to_contain_text(["2–3 business days"], timeout=REPLY_TIMEOUT)

    page.context.set_offline(True)
    expect(dialog.get_by_role("status")).to_contain_text("You're offline")
    ask(dialog, "Do you deliver on Saturdays?")
    expect(dialog.locator(".msg.customer.pending .text")).to_have_text(["Do you deliver on Saturdays?"])
    page.context.set_offline(False)

    expect(dialog.locator(".msg.customer.pending")).to_have_count(0, timeout=REPLY_TIMEOUT)
    expect(dialog.get_by_role("status")).to_be_hidden()
    expect(dialog.locator(".msg.agent")).to_have_count(2, timeout=REPLY_TIMEOUT)
    expect(dialog.locator(".msg.customer .text")).to_have_text([UK_QUESTION, "Do you deliver on Saturdays?"])
    assert_shows_each_stored_message_once(dialog)


def test_a_dropped_socket_reconnects_and_resumes_what_it_missed(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(SOCKET_SPY)
    dialog = open_widget(page, demo_company_served.http)
    ask(dialog, UK_QUESTION)
    expect(dialog.locator(".msg.agent")).to_contain_text(["2–3 business days"], timeout=REPLY_TIMEOUT)

    # The server goes away: the socket drops and reconnecting fails until it is back.
    page.evaluate("window.__blockChat = true; window.__chatSockets.at(-1).close()")
    expect(dialog.get_by_role("status")).to_contain_text("Reconnecting")
    # Meanwhile a message is stored that this client was never sent live.
    conversation = Conversation.objects.get()
    message_store_reply(conversation_id=conversation.pk, author=Author.SYSTEM, text="Missed while you were away.")
    page.evaluate("window.__blockChat = false")

    expect(dialog.get_by_role("status")).to_be_hidden(timeout=30_000)
    expect(dialog.locator(".msg.system .text")).to_have_text(["Missed while you were away."])
    assert_shows_each_stored_message_once(dialog)


def test_message_text_is_shown_as_text_never_as_markup(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    text = '<img src=x onerror="window.__xss=1">'
    dialog = open_widget(page, demo_company_served.http)
    ask(dialog, text)
    expect(dialog.locator(".msg.customer[data-seq] .text")).to_have_text([text])
    assert dialog.locator(".log img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_a_message_lost_with_its_socket_is_sent_again_and_stored_once(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(SOCKET_SPY)
    dialog = open_widget(page, demo_company_served.http)
    expect(dialog.get_by_role("button", name="Talk to a person")).to_be_enabled()  # connected

    page.evaluate("window.__dropAfterMessage = true")
    ask(dialog, UK_QUESTION)

    expect(dialog.locator(".msg.agent")).to_contain_text(["2–3 business days"], timeout=REPLY_TIMEOUT)
    assert page.evaluate("window.__chatSockets.length") >= 2, "the socket was dropped and opened again"
    conversation = Conversation.objects.get()
    assert conversation.messages.filter(author=Author.CUSTOMER).count() == 1
    assert conversation.messages.filter(author=Author.AGENT).count() == 1, "the resent message was answered once"
    assert_shows_each_stored_message_once(dialog)


def test_a_streamed_reply_grows_and_its_choices_send_their_value(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    dialog = open_widget(page, demo_company_served.http)
    expect(dialog.get_by_role("button", name="Talk to a person")).to_be_enabled()
    conversation = Conversation.objects.get()

    def stream() -> None:
        for chunk in ("Which grind ", "would you like"):
            messages.push(conversation.pk, {"type": "delta", "turn": "t1", "text": chunk})

    from_another_thread(stream)
    expect(dialog.locator(".msg.streaming .text")).to_have_text("Which grind would you like")

    def final() -> None:
        reply = message_store_reply(
            conversation_id=conversation.pk,
            author=Author.AGENT,
            text="Which grind would you like?",
            choices=[{"label": "Whole bean", "value": "whole bean"}, {"label": "Espresso", "value": "espresso"}],
        )
        messages.push(conversation.pk, messages.serialize(reply))

    from_another_thread(final)
    expect(dialog.locator(".msg.streaming")).to_have_count(0)
    expect(dialog.locator(".msg.agent .text")).to_have_text(["Which grind would you like?"])

    dialog.get_by_role("button", name="Espresso").click()

    expect(dialog.locator(".msg.customer[data-seq] .text")).to_have_text(["espresso"])
    expect(dialog.get_by_role("button", name="Whole bean")).to_be_disabled()
    assert conversation.messages.filter(author=Author.CUSTOMER).get().text == "espresso"


def test_a_closed_conversation_asks_for_a_rating_and_records_it(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    dialog = open_widget(page, demo_company_served.http)
    expect(dialog.get_by_role("button", name="Talk to a person")).to_be_enabled()
    conversation = Conversation.objects.get()

    from_another_thread(lambda: conversation_close(conversation_id=conversation.pk, actor=None))

    expect(dialog).to_contain_text("This conversation has ended")
    expect(dialog.get_by_role("textbox", name="Your message")).to_be_disabled()
    dialog.get_by_role("button", name="4 out of 5").click()
    expect(dialog).to_contain_text("Thanks for your feedback!")
    conversation.refresh_from_db()
    assert conversation.csat_score == 4


def test_a_thumbs_up_is_shown_pressed_recorded_and_changed_by_keyboard(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    from analytics.models import AnalyticsEvent, EventKind

    dialog = open_widget(page, demo_company_served.http)
    expect(dialog.get_by_role("button", name="Talk to a person")).to_be_enabled()
    conversation = Conversation.objects.get()

    def reply() -> None:
        message = message_store_reply(conversation_id=conversation.pk, author=Author.AGENT, text="We ship on Mondays.")
        messages.push(conversation.pk, messages.serialize(message))

    from_another_thread(reply)
    answer = dialog.locator(".msg.agent[data-seq]")
    expect(answer.locator(".text")).to_have_text(["We ship on Mondays."])
    rating = answer.get_by_role("group", name="Was this reply helpful?")
    helpful = rating.get_by_role("button", name="Helpful", exact=True)
    not_helpful = rating.get_by_role("button", name="Not helpful", exact=True)
    expect(helpful).to_have_attribute("aria-pressed", "false")

    helpful.click()

    expect(helpful).to_have_attribute("aria-pressed", "true")
    expect(not_helpful).to_have_attribute("aria-pressed", "false")
    not_helpful.focus()
    page.keyboard.press("Space")
    expect(not_helpful).to_have_attribute("aria-pressed", "true")
    expect(helpful).to_have_attribute("aria-pressed", "false")
    events = AnalyticsEvent.objects.filter(conversation_id=str(conversation.pk), kind=EventKind.REPLY_FEEDBACK)
    assert [e.data["helpful"] for e in events.order_by("pk")] == [True, False]


def test_a_conversation_gone_from_the_server_is_replaced_and_nothing_is_lost(page: Page, demo_company_served) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(SOCKET_SPY)
    dialog = open_widget(page, demo_company_served.http)
    ask(dialog, UK_QUESTION)
    expect(dialog.locator(".msg.agent")).to_contain_text(["2–3 business days"], timeout=REPLY_TIMEOUT)
    old = Conversation.objects.get()

    # The saved conversation disappears (a database reset): every reconnect is refused at the handshake.
    Conversation.objects.all().delete()
    page.context.set_offline(True)
    expect(dialog.get_by_role("status")).to_contain_text("You're offline")
    ask(dialog, "Do you deliver on Saturdays?")
    page.context.set_offline(False)

    # After a few refusals the widget asks over HTTP, learns the conversation is gone and opens a new one, where the
    # message written meanwhile is sent and answered.
    expect(dialog.locator(".msg.customer[data-seq] .text")).to_have_text(
        ["Do you deliver on Saturdays?"], timeout=60_000
    )
    expect(dialog.locator(".msg.agent[data-seq]")).to_have_count(1, timeout=REPLY_TIMEOUT)
    new = Conversation.objects.get()
    assert new.pk != old.pk
    assert_shows_each_stored_message_once(dialog)
