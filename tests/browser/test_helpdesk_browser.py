"""The helpdesk in a real Chromium, keyboard only, EN at 1280 px and FR at 360 px, axe on every page.

A Helpdesk agent of st-mary signs in (password, then a code from their
authenticator), finds Kevin, whose account is locked, emails him a code,
types the code he reads out from his mailbox, and unlocks him; the same
agent opening an Admin's account meets the page of an account that does
not exist. An Admin signs in, finds Thanh, verifies him by two of his
security questions and resets his password, reading the temporary one off
the page. Each story ends where the truth is: the directory.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect
from rq import SimpleWorker

from connectors.directory import Outcome
from lab import Pki, SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from sspm.account import staff
from sspm.email.jobs import QUEUE
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason
from tests.browser.test_staff_signin_browser import assert_accessible, press_enter_and_wait, type_into
from tests.flows.test_console_roles import PEOPLE, start_staff_slapd
from tests.flows.test_helpdesk import UNLOCKED
from tests.flows.test_staff_signin import fresh_code
from tests.support import Backing, services_of
from tests.support.browser import LiveServer, directory_of, enroll_seeded, question_ids, refusal, say, tab_until

pytestmark = pytest.mark.browser

SCREENS = [pytest.param("en", "desktop", id="en-1280"), pytest.param("fr", "phone", id="fr-360")]
_CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


def enrolled_staff(server: LiveServer, person: SeedAccount, role: str) -> str:
    """``person`` made staff in st-mary, with an authenticator already confirmed: its secret."""
    the = services_of(server.app)
    with directory_of(server) as directory:
        account = directory.find_account(person.uid)
    assert account is not None
    staff.grant(the.store, Actor.operator("test"), account=account, role=role, organization="st-mary")
    member = staff.staff_of(the.store, account.id)
    assert member is not None
    key = server.settings.staff_totp_key
    secret, _uri = staff.begin_totp(the.store, member, key=key)
    assert staff.confirm_totp(the.store, member, pyotp.TOTP(secret).now(), key=key, actor=Actor.operator("test"))
    return secret


def sign_in(page: Page, person: SeedAccount, secret: str) -> None:
    page.goto("/staff/signin")
    type_into(page, "#username", person.uid)
    type_into(page, "#password", person.password)
    assert press_enter_and_wait(page) == 200
    type_into(page, "#code", fresh_code(secret))
    assert press_enter_and_wait(page) == 200
    assert page.url.endswith("/staff/")


def open_account(page: Page, server: LiveServer, lang: str, device: str, term: str, person: SeedAccount) -> None:
    """From the console's home: Helpdesk, search, the account; axe on each page."""
    tab_until(page, 'nav.staff-nav a[href="/staff/helpdesk"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Helpdesk"))
    assert_accessible(page, device)
    type_into(page, "#q", term)
    assert press_enter_and_wait(page) == 200
    assert_accessible(page, device)
    with directory_of(server) as directory:
        account = directory.find_account(person.uid)
    assert account is not None
    tab_until(page, f'table.data a[href="/staff/helpdesk/account/{account.id}"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(person.display_name)
    assert_accessible(page, device)


def press_button(page: Page, action: str, label: str) -> int:
    """Tab to the button of the form posted to ``.../<action>``, check what it says, press Enter."""
    button = f'form[action$="/{action}"] button'
    tab_until(page, button)
    expect(page.locator(button)).to_have_text(label)
    return press_enter_and_wait(page)


def send_queued_email(server: LiveServer) -> None:
    """The worker's turn: send what the app queued (SimpleWorker, as ``python worker.py`` runs it)."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server.app.app_context():
            SimpleWorker([QUEUE], connection=services_of(server.app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def code_in_mailbox(backing: Backing, person: SeedAccount) -> str:
    for message in reversed(backing.mailbox.messages):
        body = message.get_body(("plain",))
        found = _CODE.search(str(body.get_content())) if message["To"] == person.mail and body else None
        if found:
            return found.group(1)
    raise AssertionError(f"no code was emailed to {person.mail}")


def verdict(server: LiveServer, person: SeedAccount, password: str) -> Outcome:
    with directory_of(server) as directory:
        return directory.verify_password(person.uid, password)[1].outcome


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_an_agent_finds_a_locked_user_verifies_by_an_emailed_code_and_unlocks_by_keyboard(
    live_server: LiveServer, backing: Backing, open_page: Callable[..., Page], lang: str, device: str
) -> None:
    server = live_server
    kevin, agent = PEOPLE["klee"], PEOPLE["helpdesk1"]
    enrolled_staff(server, PEOPLE["admin1"], "admin")
    secret = enrolled_staff(server, agent, "helpdesk")
    page = open_page(server, device=device, lang=lang)
    sign_in(page, agent, secret)
    open_account(page, server, lang, device, "kle", kevin)
    assert page.locator("#insight-title").count() == 0, "nothing about the lockout before verification"

    assert press_button(page, "code/send", say(server, lang, "Email a code to the caller")) == 200
    assert_accessible(page, device)
    send_queued_email(server)
    type_into(page, "#code", code_in_mailbox(backing, kevin))
    assert press_enter_and_wait(page) == 200
    expect(page.locator("#insight-title")).to_have_text(say(server, lang, "Lockout and password"))
    assert_accessible(page, device)
    assert verdict(server, kevin, kevin.password) is Outcome.LOCKED

    assert press_button(page, "unlock", say(server, lang, "Unlock the account")) == 200
    expect(page.locator("#done")).to_have_text(say(server, lang, UNLOCKED))
    assert_accessible(page, device)
    assert verdict(server, kevin, kevin.password) is Outcome.OK

    # An Admin's account, by its id in the address bar: the page of an account that does not exist.
    with directory_of(server) as directory:
        admin = directory.find_account("admin1")
    assert admin is not None
    refused = page.goto(f"/staff/helpdesk/account/{admin.id}")
    assert refused is not None and refused.status == 404
    expect(page.locator("div.alert-error")).to_have_text(refusal(server, lang, Reason.NO_SUCH_ACCOUNT))
    assert_accessible(page, device)


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_an_admin_verifies_by_security_questions_and_reads_a_temporary_password_by_keyboard(
    live_server: LiveServer, open_page: Callable[..., Page], lang: str, device: str
) -> None:
    server = live_server
    thanh, admin = PEOPLE["tnguyen"], PEOPLE["admin1"]
    enroll_seeded(server, thanh.uid)
    secret = enrolled_staff(server, admin, "admin")
    page = open_page(server, device=device, lang=lang)
    sign_in(page, admin, secret)
    open_account(page, server, lang, device, "Thanh", thanh)

    assert press_button(page, "questions/ask", say(server, lang, "Ask two security questions")) == 200
    ids = question_ids(server)
    labels = page.locator('label[for^="answer_"]')
    assert labels.count() == 2
    for i in range(2):
        type_into(page, f"#answer_{i}", DEMO_ANSWERS[ids[labels.nth(i).inner_text()]])
    assert_accessible(page, device)
    assert press_enter_and_wait(page) == 200
    expect(page.locator("#insight-title")).to_be_visible()

    assert press_button(page, "reset", say(server, lang, "Reset the password")) == 200
    assert_accessible(page, device)
    temporary = page.locator("#temporary").inner_text()
    assert verdict(server, thanh, temporary) is Outcome.MUST_CHANGE, "the caller must choose a new one at sign-in"
    page.reload()
    expect(page.locator("#temporary")).to_have_count(0)
