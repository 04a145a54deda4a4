"""Browser tests: headless Chromium (Playwright, sync API) against the real daphne and Celery worker.

Every test under tests/browser carries the ``browser`` marker, so ``make test`` runs them in their own pytest process
(``pytest -m browser``) after the rest of the suite. Use the root conftest's ``demo_company_served`` fixture for the
live site (it returns the Daphne with ``.http`` and ``.ws``) and the ``page`` fixture below for a fresh browser tab.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``browser`` (``make test`` runs them in a separate process)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Let the test body use the ORM while Playwright's loop runs (browser tests only, never the served processes).

    Playwright's sync API drives the browser from an asyncio event loop running in the main thread. Django sees that
    running loop and refuses ORM calls from the test body (SynchronousOnlyOperation), although the test itself is
    plain synchronous code and never shares a connection with async code. Set only while browser tests run (a
    module-level setting would leak into the main pytest run and its subprocesses); conftest.service_env keeps it
    out of daphne and the worker.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """One headless Chromium for the session (STEWARD_CHROMIUM, default /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("STEWARD_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        # A missing browser is a broken test environment, not a reason to pass: fail loudly with the fix.
        pytest.fail(
            f"Chromium not found at {executable}: install it (`apt-get install chromium`) "
            "or point STEWARD_CHROMIUM at a Chromium executable.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser: Browser, demo_company_served) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    """A fresh browser context and tab (1280×800) on the served demo company, closed after the test.

    It depends on ``demo_company_served`` so that it is closed *before* that fixture waits for the served processes
    to go idle and the database is flushed: an open page keeps websockets whose reads would race the flush.
    """
    context = chromium_browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
