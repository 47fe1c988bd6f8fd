"""The whole new-user path in a real Chromium, keyboard only: the email, the link, the first password, ready.

Staff created the record (the directory account awaits set-up) and the set-up
email was queued; the RQ worker (in this process, as ``python worker.py``
runs it) sends it to the suite's aiosmtpd, and the test opens its link as
the user would. English on a 1280 px desktop; French on a 360 px phone at
/m. axe-core checks every page on the way: the form, a refused password,
"your account is ready", security questions, and the page of a used link.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from rq import SimpleWorker

from connectors.directory import Outcome, Person
from sspm.account.setup_links import issue_setup_link
from sspm.email.jobs import QUEUE
from tests.support import Backing, services_of
from tests.support.browser import LiveServer, assert_no_horizontal_scroll, directory_of, refusal, say, tab_until

pytestmark = pytest.mark.browser

AXE = Axe()
LOGIN = "fnightingale"
NURSE = Person("Florence", "Nightingale", email="fnightingale@partners.example")
PASSWORD = "Lamp-Scutari-Ledger-1854"
WEAK = "password1"
SETUP_ENV = {"SSPM_LRA_CONTACT": "the Service Desk (ext. 4357)", "SSPM_EMAIL_RETRY_SECONDS": "0,0,0"}
_LINK = re.compile(r"http://127\.0\.0\.1:\d+/setup\?token=[A-Za-z0-9_-]+")
#: English on a 1280 px desktop at /, French on a 360 px phone at /m.
ENTRIES = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]


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
    """The worker's turn (SimpleWorker, as ``python worker.py`` runs it)."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server.app.app_context():
            SimpleWorker([QUEUE], connection=services_of(server.app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def staff_created_the_record(server: LiveServer, lang: str) -> None:
    """What creating the record did: an account awaiting set-up, and its email queued in the person's language."""
    the = services_of(server.app)
    outcome, account = the.directory.create_account(LOGIN, NURSE, None)
    assert outcome is Outcome.OK and account is not None
    issue_setup_link(the.store, the.outbox, account, lang, timedelta(days=3))


def type_new_password(page: Page, new: str) -> None:
    tab_until(page, "#new")
    page.keyboard.type(new)
    page.keyboard.press("Tab")
    expect(page.locator("#confirm")).to_be_focused()
    page.keyboard.type(new)


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_a_new_nurse_sets_up_her_account_from_the_email(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    backing: Backing,
    lang: str,
    device: str,
    entry: str,
) -> None:
    server = serve(**SETUP_ENV)
    staff_created_the_record(server, lang)
    send_queued_email(server)
    (message,) = backing.mailbox.messages
    assert message["To"] == NURSE.email
    assert message["Subject"] == say(server, lang, "Set up your new account")
    text = message.get_body(("plain",))
    assert text is not None
    (link,) = set(_LINK.findall(str(text.get_content())))
    link = link.replace("/setup?", f"{entry}/setup?")

    page = open_page(server, device=device, lang=lang)
    page.goto(link)
    expect(page).to_have_url(f"{server.url}{entry}/setup")  # the token left the address bar
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Set up your account"))
    expect(page.locator("main")).to_contain_text(LOGIN)
    expect(page.locator("#rules")).to_be_visible()
    assert_accessible(page, device)

    # A password too easy to guess: said at its field, where the keyboard lands again.
    type_new_password(page, WEAK)
    expect(page.locator("#strength")).to_be_visible()  # the live meter
    assert press_enter_and_wait(page) == 422
    expect(page.locator("#new")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("main")).to_contain_text(refusal(server, lang, "too_weak"))
    expect(page.locator("#new")).to_be_focused()
    assert_accessible(page, device)

    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(page.locator("#confirm")).to_be_focused()
    page.keyboard.type(PASSWORD)
    assert press_enter_and_wait(page) == 200
    expect(page).to_have_url(f"{server.url}{entry}/setup/done")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Your account is ready"))
    expect(page.locator("main")).to_contain_text(LOGIN)
    assert_accessible(page, device)
    with directory_of(server) as directory:
        assert directory.verify_password(LOGIN, PASSWORD)[1].outcome is Outcome.OK

    # The offer: security questions, signed in already.
    tab_until(page, f'a[href="{entry}/enroll/edit"]')
    assert press_enter_and_wait(page) == 200
    expect(page.locator("#password")).to_be_visible()
    assert_accessible(page, device)

    # The link, opened again: gone, and says who sends a new one.
    response = page.goto(link)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "This set-up link no longer works"))
    expect(page.locator("main")).to_contain_text("the Service Desk (ext. 4357)")
    assert_accessible(page, device)
