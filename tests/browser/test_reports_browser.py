"""The reports in a real Chromium, keyboard only, EN at 1280 px and FR at 360 px, axe on every page.

A Super Admin signs in (password, then a code from their authenticator),
opens Reports from the console's menu, then "Expiring soon"; types a number
of days that is not one (the page says so at the field), then 30, and finds
achen (about 5 days left); exports the report to CSV with the keyboard.
The table is filled by the sync use case, as the scheduled sync fills it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lab import Pki, Slapd
from sspm.account.sync import organization_for, sync_all
from tests.browser.test_console_browser import enrolled_super_admin
from tests.browser.test_staff_signin_browser import assert_accessible, press_enter_and_wait, type_into
from tests.flows.test_console_roles import PEOPLE, start_staff_slapd
from tests.flows.test_staff_signin import fresh_code
from tests.support import services_of
from tests.support.browser import LiveServer, say, tab_until

pytestmark = pytest.mark.browser

SCREENS = [pytest.param("en", "desktop", id="en-1280"), pytest.param("fr", "phone", id="fr-360")]


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_a_super_admin_finds_who_expires_soon_and_exports_it_by_keyboard(
    live_server: LiveServer, open_page: Callable[..., Page], lang: str, device: str
) -> None:
    server = live_server
    secret = enrolled_super_admin(server)
    the = services_of(server.app)
    sync_all(the.store, the.directory, organization_for(the))
    page = open_page(server, device=device, lang=lang)

    page.goto("/staff/signin")
    super1 = PEOPLE["super1"]
    type_into(page, "#username", super1.uid)
    type_into(page, "#password", super1.password)
    assert press_enter_and_wait(page) == 200
    type_into(page, "#code", fresh_code(secret))
    assert press_enter_and_wait(page) == 200

    tab_until(page, 'nav.staff-nav a[href="/staff/reports/"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Reports"))
    assert_accessible(page, device)

    tab_until(page, 'a[href="/staff/reports/expiring"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Expiring soon"))
    assert_accessible(page, device)

    tab_until(page, "#days")
    page.keyboard.press("Control+A")
    page.keyboard.type("0")
    assert press_enter_and_wait(page) == 422
    expect(page.locator("#problems")).to_contain_text(say(server, lang, "Give a number of days from 1 to 3650."))
    assert_accessible(page, device)

    tab_until(page, "#days")
    page.keyboard.press("Control+A")
    page.keyboard.type("30")
    assert press_enter_and_wait(page) == 200
    expect(page.locator('tr[data-row="achen"]')).to_be_visible()
    assert_accessible(page, device)

    tab_until(page, 'form[action$="/export"] button')
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    saved = download.value.path()
    text = Path(saved).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("account_id,login,")
    assert any(line.split(",")[1] == "achen" for line in text.splitlines()[1:])
