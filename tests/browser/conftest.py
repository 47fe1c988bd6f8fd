"""A real Chromium against the real app, served on a free port per test.

One browser for the whole session (starting Chromium is the slow part);
each test gets a fresh slapd (from tests/conftest.py), its own app on its
own port, and new browser contexts, so nothing leaks between tests.
Helpers: tests/support/browser.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from lab import Slapd
from lab.samba import SambaDC
from tests.support import Backing
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, DEVICES, LiveServer, live_servers


@pytest.fixture(autouse=True)
def fresh_backing(backing: Backing) -> Backing:
    """Every page is served on this test's own Redis, database and mailbox (tests/conftest.py), asked for or not."""
    return backing


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture
def serve(slapd: Slapd) -> Iterator[Callable[..., LiveServer]]:
    """Start the real app over HTTP on 127.0.0.1; ``serve(**env)`` overrides settings.

    The socket is bound first (port 0) so the app can be told its own public
    address without racing another process for a "free" port.
    """
    with live_servers(slapd) as start:
        yield start


@pytest.fixture
def live_server(serve: Callable[..., LiveServer]) -> LiveServer:
    return serve()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """``open_page(server, device="desktop"|"phone", lang="en"|"fr", javascript=True)``: a page in a new context."""
    contexts = []

    def open_(server: LiveServer, *, device: str = "desktop", lang: str = "en", javascript: bool = True) -> Page:
        context = browser.new_context(
            base_url=server.url,
            locale=lang,
            java_script_enabled=javascript,
            **DEVICES[device],
        )
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def serve_ad(samba_dc: SambaDC) -> Iterator[Callable[..., LiveServer]]:
    """``serve``, on a Samba AD DC of the test's own (``samba_dc``, tests/conftest.py)."""
    with live_servers(samba_dc) as start:
        yield start
