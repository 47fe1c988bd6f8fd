"""A real Chromium against the real app, served on a free port per test.

One browser for the whole session (starting Chromium is the slow part);
each test gets a fresh slapd (from tests/conftest.py), its own app on its
own port, and new browser contexts, so nothing leaks between tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import services_of, settings_for  # tests/conftest.py: the one way tests build settings
from flask import Flask
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from lab import Slapd
from sspm import create_app
from sspm.settings import Settings

#: Debian's chromium; Playwright's own download is not available here.
CHROMIUM = "/usr/bin/chromium"
#: --no-sandbox because the suite runs as root; the rest keep Chromium off
#: the network (it otherwise phones home for updates, sync, field trials).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DEVICES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
}


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings
    app: Flask


def _starting(environ: object, start_response: Callable[..., object]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


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
    running: list[tuple[BaseWSGIServer, threading.Thread, Flask]] = []

    def start(**env: str) -> LiveServer:
        server = make_server("127.0.0.1", 0, _starting, threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        settings = settings_for(slapd, SSPM_PUBLIC_BASE_URL=url, **env)
        app = create_app(settings)
        server.app = app
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sspm-live-{server.server_port}",
            daemon=True,
        )
        thread.start()
        running.append((server, thread, app))
        return LiveServer(url=url, settings=settings, app=app)

    yield start
    for server, thread, app in running:
        server.shutdown()
        thread.join()
        server.server_close()
        services_of(app).close()


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


def assert_no_horizontal_scroll(page: Page) -> None:
    """The page fits its viewport: nothing to scroll sideways on a phone."""
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{page.url} scrolls sideways: {scroll_width}px content in {inner_width}px"
