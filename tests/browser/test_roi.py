"""The ROI view and the launch roadmap in a real browser: the demo company's manager sets the costs in admin (a
negative cost is refused on the form), then reads the ROI of a month of traffic and the roadmap ranked from it.
Saves docs/screenshots/roi.png and docs/screenshots/roadmap.png."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.browser.test_console import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# A month of the demo company's traffic: intent → (conversations, contained, escalated, automated action).
MONTH = {
    "shipping_info": (46, 38, 5, ""),
    "where_is_my_order": (31, 26, 3, ""),
    "returns_info": (18, 13, 4, ""),
    "pause_subscription": (14, 12, 2, "subscription_pause"),
    "change_address": (7, 6, 1, "address_change"),
    "refund_request": (9, 0, 9, ""),
    "cancel_subscription": (4, 1, 3, ""),
}


def _month_of_traffic() -> None:
    """Record a month of conversations as the agent would have left them (closed, some after a person)."""
    from django.utils import timezone

    from analytics.models import AnalyticsEvent, EventKind

    now, events = timezone.now(), []
    for intent, (conversations, contained, escalated, action) in MONTH.items():
        for number in range(conversations):
            at = now - timedelta(days=number % 28, hours=number % 7)
            name, common = f"{intent}-{number}", {"channel": "web_chat", "created_at": at}
            events.append(AnalyticsEvent(kind=EventKind.TURN_ANSWERED, conversation_id=name, intent=intent, **common))
            if action and number < contained:
                about = {"action": action, "decision": "allow", "reason": "executed"}
                events.append(
                    AnalyticsEvent(
                        kind=EventKind.ACTION_EXECUTED, conversation_id=name, intent=intent, data=about, **common
                    )
                )
            if contained <= number < contained + escalated:
                events.append(AnalyticsEvent(kind=EventKind.ESCALATED, conversation_id=name, **common))
            if number < contained + escalated:
                events.append(AnalyticsEvent(kind=EventKind.CLOSED, conversation_id=name, **common))
    AnalyticsEvent.objects.bulk_create(events)


def _manager_who_may_set_costs() -> str:
    from django.contrib.auth import get_user_model

    manager = get_user_model().objects.get(username="omar.lead")  # the demo company's support manager
    manager.set_password(PASSWORD)
    manager.save(update_fields=["password"])
    return manager.get_username()


def test_a_manager_sets_the_costs_and_reads_the_roi_and_the_launch_roadmap(demo_company_served, page) -> None:  # type: ignore[no-untyped-def]
    from dashboard.models import CostSettings

    server = demo_company_served
    _month_of_traffic()
    username = _manager_who_may_set_costs()

    page.goto(f"{server.http}/admin/login/?next=/admin/dashboard/costsettings/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.http}/admin/dashboard/costsettings/add/")  # no row yet: straight to adding it
    costs = {
        "#id_currency": "eur",
        "#id_human_contact_cost": "-6.50",
        "#id_agent_minute_cost": "0.55",
        "#id_model_cost_per_conversation": "0.03",
        "#id_monthly_running_cost": "450",
        "#id_setup_cost": "6000",
        "#id_default_minutes_saved_per_action": "3",
        "#id_minutes_saved_per_action": '{"subscription_pause": 4, "address_change": 6}',
    }
    for selector, value in costs.items():
        page.fill(selector, value)
    page.click("input[name=_save]")
    assert "cannot be negative" in page.locator(".field-human_contact_cost").inner_text()
    assert not CostSettings.objects.exists()
    page.fill("#id_human_contact_cost", "6.50")
    page.click("input[name=_save]")
    page.wait_for_url(f"{server.http}/admin/dashboard/costsettings/**")
    saved = CostSettings.current()
    assert saved is not None and saved.currency == "EUR" and saved.minutes_saved("address_change") == 6

    page.goto(f"{server.http}/dashboard/roi/")
    summary = page.locator("[data-roi-summary]").inner_text()
    assert "EUR" in summary and "not computable" not in summary
    assert "months" in page.locator("[data-roi-payback]").inner_text()
    first_intent = page.locator("[data-roi-intents] tbody tr").first
    assert first_intent.get_attribute("data-intent") == "shipping_info"  # the most contained conversations
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "roi.png"), full_page=True)

    page.goto(f"{server.http}/dashboard/roadmap/")
    rows = page.locator("[data-roadmap] tbody tr")
    assert rows.count() == 20  # every demo intent, with traffic or not
    assert rows.first.get_attribute("data-intent") == "shipping_info"
    assert rows.first.locator("[data-volume-source]").get_attribute("data-volume-source") == "measured"
    page.screenshot(path=str(SCREENSHOTS / "roadmap.png"), full_page=True)
