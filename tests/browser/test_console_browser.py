"""The console's roles page and audit trail in a real Chromium, keyboard only, EN at 1280 px and FR at 360 px.

A Super Admin signs in (password, then a code from their authenticator),
opens Roles, sends the grant form empty once, then gives Helpdesk in
st-mary to helpdesk1; opens the confirmation to take it back, and cancels;
opens the audit trail and filters it down to what was done to helpdesk1.
axe-core checks every page on the way, and the grant is checked where it
lives: in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from lab import Pki, Slapd
from lab.seed import ST_MARY
from sspm.account import staff
from sspm.policy.actor import Actor
from sspm.policy.roles import Grant, Role
from tests.browser.test_staff_signin_browser import assert_accessible, press_enter_and_wait, type_into
from tests.flows.test_console_roles import PEOPLE, start_staff_slapd
from tests.flows.test_staff_signin import fresh_code
from tests.support import services_of
from tests.support.browser import LiveServer, directory_of, say, tab_until

pytestmark = pytest.mark.browser

SCREENS = [pytest.param("en", "desktop", id="en-1280"), pytest.param("fr", "phone", id="fr-360")]


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


def enrolled_super_admin(server: LiveServer) -> str:
    """super1, made Super Admin at the command line, with an authenticator already confirmed: its secret."""
    the = services_of(server.app)
    with directory_of(server) as directory:
        account = directory.find_account("super1")
    assert account is not None
    staff.grant(the.store, Actor.operator("test"), account=account, role="super-admin")
    member = staff.staff_of(the.store, account.id)
    assert member is not None
    key = server.settings.staff_totp_key
    secret, _uri = staff.begin_totp(the.store, member, key=key)
    assert staff.confirm_totp(the.store, member, pyotp.TOTP(secret).now(), key=key, actor=Actor.operator("test"))
    return secret


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_a_super_admin_gives_helpdesk_in_one_organization_then_reads_it_in_the_trail_by_keyboard(
    live_server: LiveServer, open_page: Callable[..., Page], lang: str, device: str
) -> None:
    server = live_server
    secret = enrolled_super_admin(server)
    page = open_page(server, device=device, lang=lang)

    page.goto("/staff/signin")
    super1 = PEOPLE["super1"]
    type_into(page, "#username", super1.uid)
    type_into(page, "#password", super1.password)
    assert press_enter_and_wait(page) == 200
    type_into(page, "#code", fresh_code(secret))
    assert press_enter_and_wait(page) == 200
    assert page.url.endswith("/staff/")

    tab_until(page, 'nav.staff-nav a[href="/staff/roles"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Roles"))
    assert_accessible(page, device)

    tab_until(page, 'a[href="/staff/roles/grant"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Give a role"))
    assert_accessible(page, device)

    # Sent empty once: the refusal is on its field, and the keyboard lands there.
    tab_until(page, "form.stack button[type=submit]")
    assert press_enter_and_wait(page) == 422
    missing = "Enter the email or user name of the person to give the role to."
    expect(page.locator("#account-error")).to_have_text(say(server, lang, missing))
    assert page.evaluate("document.activeElement.id") == "account"
    assert_accessible(page, device)

    page.keyboard.type("helpdesk1")
    page.keyboard.press("Tab")
    expect(page.locator("#role")).to_be_focused()
    page.keyboard.press("End")  # the last role offered: Helpdesk
    expect(page.locator("#role")).to_have_value("helpdesk")
    page.keyboard.press("Tab")
    expect(page.locator("#organization")).to_be_focused()
    page.keyboard.type("St-Mary")
    assert press_enter_and_wait(page) == 200
    assert page.url.endswith("/staff/roles")
    granted = say(server, lang, "%(who)s now has the role %(role)s (%(organization)s).",
                  who="helpdesk1", role=say(server, lang, "Helpdesk"), organization=ST_MARY)  # fmt: skip
    expect(page.get_by_role("status")).to_have_text(granted)
    the = services_of(server.app)
    with directory_of(server) as directory:
        helpdesk1 = directory.find_account("helpdesk1")
    assert helpdesk1 is not None
    member = staff.staff_of(the.store, helpdesk1.id)
    assert member is not None and set(member.grants) == {Grant(Role.HELPDESK, ST_MARY)}
    assert_accessible(page, device)

    # Taking it back is confirmed on a page of its own; here the Super Admin thinks again and cancels.
    tab_until(page, f'a[href^="/staff/roles/revoke?account={helpdesk1.id}"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Take back a role"))
    assert_accessible(page, device)
    tab_until(page, 'a.button-secondary[href="/staff/roles"]')
    assert press_enter_and_wait(page) == 200

    tab_until(page, 'nav.staff-nav a[href="/staff/audit"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Audit trail"))
    expect(page.locator("#chain")).to_have_class("alert alert-success")
    type_into(page, "#account", "helpdesk1")
    assert press_enter_and_wait(page) == 200
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("staff_grant")
    expect(rows.first).to_contain_text("granted")
    assert_accessible(page, device)
