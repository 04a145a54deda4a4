"""QA review in a real browser: a customer asks the demo agent a question over the real websocket; a support
agent flags the conversation and the daily queue fill samples it for the demo reviewer, who signs in, opens the
queue, opens the conversation and reviews it by keyboard only. Prints how long the keyboard review took and how many
keys it needed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.browser.test_console import PASSWORD, Customer

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _answered_demo_conversation(server) -> str:  # type: ignore[no-untyped-def]
    with Customer(server) as customer:
        customer.wait_for(lambda f: f["type"] == "hello")
        customer.say("How long does delivery to the UK take?")
        answer = customer.wait_for(lambda f: f["type"] == "message" and f["author"] == "agent")
        assert "business days" in answer["text"]
        return customer.id


def test_a_reviewer_reviews_a_sampled_demo_conversation_by_keyboard_in_under_a_minute(
    demo_company_served, page
) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from agent.models import Conversation
    from agent.services import conversation_close
    from qa.demo import seed_qa
    from qa.models import ItemStatus, Review, ReviewItem
    from qa.services import conversation_flag, qa_queue_fill

    server = demo_company_served
    seed_qa()
    conversation_id = _answered_demo_conversation(server)
    # A support agent flags it from the console, and it ends: the "Flagged by a person" rule samples it.
    support_agent = get_user_model().objects.get(username="sam.support")
    conversation_flag(conversation=Conversation.objects.get(pk=conversation_id), actor=support_agent, note="check")
    conversation_close(conversation_id=conversation_id, actor=support_agent)
    reviewer = get_user_model().objects.get(username="quinn.qa")  # the demo company's QA reviewer
    reviewer.set_password(PASSWORD)
    reviewer.save(update_fields=["password"])
    qa_queue_fill()
    item = ReviewItem.objects.get(conversation_id=conversation_id)
    assert item.assignments.filter(reviewer=reviewer).exists()

    page.goto(f"{server.http}/admin/login/?next=/qa/")
    page.fill("#id_username", "quinn.qa")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.http}/qa/")
    row = page.locator("tr", has_text=conversation_id[:8])
    assert "Flagged by a person" in row.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "qa-queue.png"), full_page=True)

    row.locator("[data-qa-item]").click()
    page.wait_for_url(f"{server.http}/qa/items/{item.pk}/")
    page.wait_for_selector(".qa-criterion--current")
    assert "How long does delivery to the UK take?" in page.locator(".qa-transcript").inner_text()

    # Keyboard only from here: every applicable criterion passes (p moves on by itself), then the labels:
    # escalation needed no (1, 1), policy breach no (2, 2), resolved yes (3), and Ctrl+Enter.
    judged = page.locator("[data-criterion] input[type=radio][value=pass]").count()
    keys = ["p"] * judged + ["1", "1", "2", "2", "3"]
    started = time.monotonic()
    for key in keys:
        page.keyboard.press(key)
    assert page.locator("[data-qa-score]").inner_text() == "100"
    assert page.locator("[data-qa-verdict]").inner_text() == "passes"
    page.evaluate("window.scrollTo(0, 0)")  # the transcript's top beside the scorecard
    page.screenshot(path=str(SCREENSHOTS / "qa-review.png"), full_page=False)
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"{server.http}/qa/")
    elapsed = time.monotonic() - started

    review = Review.objects.get(item=item)
    assert (review.passed, review.escalation_needed, review.policy_breach, review.resolved) == (
        True,
        False,
        False,
        True,
    )
    item.refresh_from_db()
    assert item.status in (ItemStatus.DONE, ItemStatus.IN_REVIEW)
    # The time is a figure for docs/benchmarks.md ("QA review by keyboard"), not a pass mark: this machine is shared.
    print(f"\nQA keyboard review: {len(keys) + 1} keystrokes, {elapsed:.2f} s from the first key to the stored review")
