"""Creating an employee in a real Chromium, keyboard only, EN at 1280 px and FR at 360 px, axe on every page.

An Admin of st-mary signs in (password, then a code), goes to People, then
Employees, opens the form, sends it empty first (every field says what it
needs, the keyboard lands on the summary), then types Zoë Ærø's details and
creates the record. The record page says the account waits for its owner;
the directory has it, disabled and without a password, and the worker sends
the set-up email to her work address, in her language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from connectors.directory import Outcome
from lab import Pki, Slapd
from tests.browser.test_helpdesk_browser import enrolled_staff, send_queued_email, sign_in
from tests.browser.test_staff_signin_browser import assert_accessible, press_enter_and_wait, type_into
from tests.flows.test_console_roles import PEOPLE, start_staff_slapd
from tests.support import Backing
from tests.support.browser import LiveServer, directory_of, say, tab_until

pytestmark = pytest.mark.browser

SCREENS = [pytest.param("en", "desktop", id="en-1280"), pytest.param("fr", "phone", id="fr-360")]
#: A date typed into a date box, segment by segment, in the order the page's locale shows them.
START = {"en": "03022026", "fr": "02032026"}


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


def follow(page: Page, selector: str) -> int:
    tab_until(page, selector)
    return press_enter_and_wait(page)


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_an_admin_creates_an_employee_by_keyboard(
    live_server: LiveServer, backing: Backing, open_page: Callable[..., Page], lang: str, device: str
) -> None:
    server = live_server
    admin = PEOPLE["admin1"]
    secret = enrolled_staff(server, admin, "admin")
    page = open_page(server, device=device, lang=lang)
    sign_in(page, admin, secret)

    assert follow(page, 'nav.staff-nav a[href="/staff/people"]') == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "People"))
    assert_accessible(page, device)
    assert follow(page, 'main a[href="/staff/people/employees"]') == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Employees"))
    assert_accessible(page, device)
    assert follow(page, 'a[href="/staff/people/employees/new"]') == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Add an employee"))
    assert_accessible(page, device)

    assert follow(page, 'form[action$="/new"] button[type=submit]') == 422
    expect(page.locator("#given_name-error")).to_have_text(say(server, lang, "Enter the person’s given name."))
    expect(page.locator("#work_email-error")).to_have_text(
        say(server, lang, "Enter the person’s work email: their set-up link goes there.")
    )
    assert page.evaluate("document.activeElement.id") == "problems", "the keyboard lands on the summary"
    assert_accessible(page, device)

    type_into(page, "#given_name", "Zoë")
    type_into(page, "#family_name", "Ærø")
    tab_until(page, "#language")
    page.keyboard.press("ArrowDown" if lang == "fr" else "ArrowUp")
    type_into(page, "#work_email", "zoe.aero@partners.example")
    type_into(page, "#job_title", "Infirmière" if lang == "fr" else "Nurse")
    type_into(page, "#department", "Cardiologie")
    type_into(page, "#manager", "manager1")
    type_into(page, "#start_date", START[lang])
    assert follow(page, 'form[action$="/new"] button[type=submit]') == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Zoë Ærø")
    expect(page.locator("dl.facts")).to_contain_text(
        say(server, lang, "Active, waiting for its owner to set the account up")
    )
    expect(page.locator("dl.facts")).to_contain_text("zaero")
    assert_accessible(page, device)

    with directory_of(server) as directory:
        account = directory.find_account("zaero")
        assert account is not None and account.disabled
        details = directory.account_details(account.id)
        assert details is not None and (details.surname, details.department) == ("Ærø", "Cardiologie")
        assert directory.verify_password("zaero", "Orchard-Kettle-Lantern-58")[1].outcome is not Outcome.OK
    send_queued_email(server)
    (sent,) = [m for m in backing.mailbox.messages if m["To"] == "zoe.aero@partners.example"]
    body = sent.get_body(("plain",))
    assert body is not None
    assert re.search(r"/setup\?token=[A-Za-z0-9_-]+", str(body.get_content()))
    assert sent["Subject"] == say(server, lang, "Set up your new account")
