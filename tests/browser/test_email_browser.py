"""Forgot Password by email in a real Chromium, keyboard only.

The user asks for a link, the RQ worker (in this process, as ``python
worker.py`` runs it) sends it to the suite's aiosmtpd, the test reads the
message as the user would and opens its link in the same browser. axe-core
checks every page on the way: the request, "check your email", the new
password form and the page of a link that no longer works.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask_babel import gettext
from playwright.sync_api import Page, expect
from rq import SimpleWorker
from sqlalchemy import select

from connectors.directory import Outcome
from lab import SeedAccount
from sspm.email.jobs import QUEUE
from sspm.infra.store import ResetToken
from tests.support import Backing, services_of
from tests.support.browser import LiveServer, assert_no_horizontal_scroll, directory_of, tab_until

pytestmark = pytest.mark.browser

AXE = Axe()
NEW_PASSWORD = "Lumen-Pebble-Orchard-Zephyr-93"
EMAIL_ENV = {"SSPM_LRA_CONTACT": "the Service Desk (ext. 4357)", "SSPM_EMAIL_RETRY_SECONDS": "0,0,0"}
_LINK = re.compile(r"http://127\.0\.0\.1:\d+/reset\?token=[A-Za-z0-9_-]+")
#: English on a 1280 px desktop at /, French on a 360 px phone at /m.
ENTRIES = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]


def words(server: LiveServer, lang: str, msgid: str) -> str:
    with server.app.test_request_context(f"/?lang={lang}"):
        return str(gettext(msgid))


def assert_accessible(page: Page, device: str) -> None:
    violations: list[dict[str, Any]] = list(AXE.run(page).response["violations"])
    problems = [
        f"{v['id']} [{v['impact']}] {v['help']} -> "
        + ", ".join(" ".join(map(str, node["target"])) for node in v["nodes"])
        for v in violations
    ]
    assert not problems, f"axe on {page.url}:\n" + "\n".join(problems)
    if device == "phone":
        assert_no_horizontal_scroll(page)


def press_enter_and_wait(page: Page) -> int:
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    response = navigation.value
    assert response is not None
    return response.status


def send_queued_email(server: LiveServer) -> None:
    """The worker's turn: send what the app queued (SimpleWorker, as ``python worker.py`` runs it)."""
    # The worker takes over Ctrl-C and SIGTERM while it works; give them back to pytest.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server.app.app_context():
            SimpleWorker([QUEUE], connection=services_of(server.app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def ask_by_keyboard(page: Page, username: str) -> None:
    tab_until(page, "#username")
    page.keyboard.type(username)
    assert press_enter_and_wait(page) == 200


def last_link(backing: Backing) -> str:
    text = backing.mailbox.messages[-1].get_body(("plain",))
    assert text is not None
    (link,) = set(_LINK.findall(str(text.get_content())))
    return link


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_a_user_resets_the_password_from_an_emailed_link_and_signs_in_with_it(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    backing: Backing,
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    server = serve(**EMAIL_ENV)
    page = open_page(server, device=device, lang=lang)

    page.goto(f"{entry}/forgot/email")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(words(server, lang, "Reset your password by email"))
    assert_accessible(page, device)
    ask_by_keyboard(page, john.uid)

    expect(page.get_by_role("status")).to_contain_text(words(server, lang, "Check your email"))
    assert_accessible(page, device)

    send_queued_email(server)
    (message,) = backing.mailbox.messages
    assert message["To"] == john.mail
    link = last_link(backing)
    assert link.startswith(f"{server.url}/reset?token=")

    page.goto(link)
    expect(page).to_have_url(f"{server.url}/reset")  # the token left the address bar
    expect(page.get_by_role("heading", level=1)).to_have_text(words(server, lang, "Choose a new password"))
    assert_accessible(page, device)
    tab_until(page, "#new")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Tab")
    expect(page.locator("#confirm")).to_be_focused()
    page.keyboard.type(NEW_PASSWORD)
    assert press_enter_and_wait(page) == 200

    expect(page.get_by_role("status")).to_contain_text(
        words(server, lang, "Your password has been reset successfully.")
    )
    with directory_of(server) as directory:
        assert directory.verify_password(john.uid, NEW_PASSWORD)[1].outcome is Outcome.OK
        assert directory.verify_password(john.uid, john.password)[1].outcome is Outcome.BAD_CREDENTIALS

    # Signing in with it works.
    page.goto(f"{entry}/signin")
    tab_until(page, "#username")
    page.keyboard.type(john.uid)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(NEW_PASSWORD)
    assert press_enter_and_wait(page) == 200
    expect(page).to_have_url(re.compile(r"/enroll$"))
    expect(page.locator("main")).to_contain_text(john.display_name)

    # The same link, opened again, is gone, and says how to get a new one.
    response = page.goto(link)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text(words(server, lang, "This link no longer works"))
    assert_accessible(page, device)
    tab_until(page, 'a[href$="/forgot/email"]')
    assert press_enter_and_wait(page) == 200
    expect(page.locator("#username")).to_be_visible()


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_an_expired_link_says_so_and_leads_to_a_new_one_that_works(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    backing: Backing,
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    server = serve(**EMAIL_ENV)
    page = open_page(server, device=device, lang=lang)
    page.goto(f"{entry}/forgot/email")
    ask_by_keyboard(page, john.uid)
    send_queued_email(server)
    expired = last_link(backing)
    # The email sat unread for longer than the link lives.
    lifetime = timedelta(minutes=server.settings.reset_link_minutes, seconds=1)
    with services_of(server.app).store.session() as session:
        for row in session.scalars(select(ResetToken)):
            row.created_at -= lifetime
            row.expires_at -= lifetime

    response = page.goto(expired)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text(words(server, lang, "This link no longer works"))
    tab_until(page, 'a[href$="/forgot/email"]')
    assert press_enter_and_wait(page) == 200
    ask_by_keyboard(page, john.uid)
    send_queued_email(server)
    fresh = last_link(backing)

    assert fresh != expired
    page.goto(fresh)
    expect(page.get_by_role("heading", level=1)).to_have_text(words(server, lang, "Choose a new password"))
