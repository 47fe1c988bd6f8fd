"""What the stories in a real Chromium share: the app served on a free port, and reading its pages.

One browser for the whole session (the fixtures in tests/browser/conftest.py);
each test gets a fresh slapd, its own app on its own port, and new browser
contexts, so nothing leaks between tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask import Flask
from flask_babel import gettext
from playwright.sync_api import Page
from werkzeug.serving import BaseWSGIServer, make_server

from connectors import open_directory
from connectors.directory import Directory
from lab.enrollment import seed_enrollment
from lab.env import LabDirectory
from sspm.app import create_app
from sspm.infra.settings import Settings
from sspm.web.messages import reason_text
from tests.support import services_of, settings_for

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
#: The screens ``open_page(device=...)`` offers.
DEVICES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
}
#: The session cookie Flask signs (it holds handles, never secrets).
SESSION_COOKIE = "sspm_session"


@dataclass(frozen=True)
class LiveServer:
    """An app serving on 127.0.0.1, with the settings it was built from."""

    url: str
    settings: Settings
    app: Flask


def _starting(environ: object, start_response: Callable[..., object]) -> list[bytes]:
    # What the bound socket answers in the moment before its app is built.
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


# --- Reading and driving pages ----------------------------------------------------


def assert_no_horizontal_scroll(page: Page) -> None:
    """The page fits its viewport: nothing to scroll sideways on a phone.

    Measured against the screen's width, not ``window.innerWidth``: mobile
    Chromium widens its layout viewport to fit content that sticks out, so
    innerWidth grows with the page and that comparison never fails.
    """
    screen = page.viewport_size
    assert screen is not None
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= screen["width"], (
        f"{page.url} scrolls sideways: {scroll_width}px content in {screen['width']}px"
    )


def tab_until(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} is not reachable with Tab on {page.url}")


def browser_session(page: Page, server: LiveServer) -> dict[str, Any]:
    """This browser's Flask session, read from its own signed cookie."""
    values = [c["value"] for c in page.context.cookies(server.url) if c["name"] == SESSION_COOKIE]
    assert values, "the app should have given this browser a session cookie"
    serializer = server.app.session_interface.get_signing_serializer(server.app)  # type: ignore[attr-defined]
    assert serializer is not None
    return dict(serializer.loads(values[0]))


def captcha_text(page: Page, server: LiveServer) -> str:
    """The characters of the image this browser shows, as a person reading it would type them."""
    captcha_id = browser_session(page, server).get("captcha")
    assert isinstance(captcha_id, str), "the page should have issued a CAPTCHA to this browser"
    raw = redis.Redis.from_url(server.settings.redis_url).get(f"sspm:captcha:{captcha_id}")
    assert raw is not None, "the CAPTCHA this browser shows should exist"
    return str(json.loads(raw)["text"])


@contextmanager
def directory_of(server: LiveServer) -> Iterator[Directory]:
    """The directory as the app sees it, through the same connector."""
    directory = open_directory(server.settings.directory_kind, server.settings.directory)
    try:
        yield directory
    finally:
        directory.close()


def enroll_seeded(server: LiveServer, login: str, answers: dict[str, str] | None = None) -> str:
    """Enroll an account with known answers (lab.DEMO_ANSWERS by default); its directory id."""
    with directory_of(server) as directory:
        account = directory.find_account(login)
    assert account is not None, login
    services = services_of(server.app)
    seed_enrollment(services.store, services.hasher, account.id, answers)
    return account.id


def question_ids(server: LiveServer) -> dict[str, str]:
    """Every question's text, in every language, to its id."""
    return {text: q.id for q in services_of(server.app).catalogue.questions for text in q.text.values()}


def say(server: LiveServer, lang: str, msgid: str, **values: Any) -> str:
    """A sentence as the app words it in ``lang``, from its own catalogue."""
    with server.app.test_request_context(f"/?lang={lang}"):
        return str(gettext(msgid, **values))


def refusal(server: LiveServer, lang: str, reason: str) -> str:
    """A refusal as sspm.messages words it in ``lang``."""
    with server.app.test_request_context(f"/?lang={lang}"):
        return reason_text(reason)


# --- Serving the app --------------------------------------------------------------


@contextmanager
def live_servers(directory: LabDirectory) -> Iterator[Callable[..., LiveServer]]:
    """What ``serve`` does, for any lab directory: ``start(**env)`` serves a new app on it."""
    running: list[tuple[BaseWSGIServer, threading.Thread, Flask]] = []

    def start(**env: str) -> LiveServer:
        server = make_server("127.0.0.1", 0, _starting, threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        settings = settings_for(directory, SSPM_PUBLIC_BASE_URL=url, **env)
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

    try:
        yield start
    finally:
        for server, thread, app in running:
            server.shutdown()
            thread.join()
            server.server_close()
            services_of(app).close()
