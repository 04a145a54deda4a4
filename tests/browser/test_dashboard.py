"""The dashboard in a real browser (headless Chromium, ``-m browser``): a support manager signs in, the charts draw,
a figure opens the conversations behind it and one of them opens in the console. Saves docs/screenshots/dashboard.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import VIEWPORT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"
PASSWORD = "correct horse battery staple"  # governance.tests.factories.UserFactory


@pytest.fixture
def tab(chromium_browser: Browser, daphne_server) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    """A fresh tab on the real daphne serving this run's test database (the dashboard needs no worker)."""
    context = chromium_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _a_month_of_support() -> None:
    """The demo company's governance (channels, gates, approvals' policies) and a week of conversations, plus a
    failed query, a source past its review date and an approval waiting."""
    from analytics.models import EventKind
    from dashboard.tests.facts import days_ago, record, support_week
    from governance.demo import seed_governance
    from governance.tests.factories import ApprovalRequestFactory
    from knowledge.models import FailedRetrieval
    from knowledge.tests.factories import KnowledgeSourceFactory

    seed_governance()
    week = support_week()
    for n in range(4, 7):
        record(days_ago(n), EventKind.CLOSED, week["web"][n - 4])
    FailedRetrieval.objects.create(query="Can I pay with a gift card?", audience="public")
    KnowledgeSourceFactory(name="Holiday shipping 2025", last_reviewed_on=date.today() - timedelta(days=200))
    ApprovalRequestFactory()


def test_a_manager_reads_the_charts_and_opens_the_conversations_behind_a_figure(tab: Page, daphne_server) -> None:  # type: ignore[no-untyped-def]
    from governance.roles import Role
    from governance.tests.factories import UserFactory

    UserFactory(username="mo.manager", roles=[Role.SUPPORT_MANAGER])
    _a_month_of_support()
    server = daphne_server.http

    tab.goto(f"{server}/admin/login/?next=/dashboard/")
    tab.fill("#id_username", "mo.manager")
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_url(f"{server}/dashboard/")

    canvas = tab.locator('canvas[data-metric="containment_rate"]')
    canvas.wait_for()
    tab.wait_for_function("document.querySelector('canvas[data-metric=\"containment_rate\"]').dataset.drawn")
    painted = canvas.evaluate(
        """(canvas) => {
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) count++; }
            return {count, chart: window.Chart.getChart(canvas) !== undefined};
        }"""
    )
    assert painted["chart"] and painted["count"] > 500  # a line and its axes, not a blank canvas
    assert tab.locator("canvas[data-drawn=true]").count() >= 10
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOT), full_page=True)

    tab.locator('[data-metric-card="containment_rate"] [data-drill]').click()
    tab.wait_for_url("**/dashboard/metrics/containment_rate/conversations/**")
    rows = tab.locator("tr[data-conversation]")
    assert rows.count() == 9  # the week's five closes, three more earlier that week and one three weeks ago
    assert "never reached a person" in tab.locator("[data-drill-summary]").inner_text()

    conversation = rows.first.get_attribute("data-conversation")
    rows.first.locator("a").click()
    tab.wait_for_url(f"{server}/console/{conversation}/")
