"""The staff sign-in in a real Chromium, keyboard only, in English at 1280 px and in French at 360 px.

A staff member signs in for the first time: password, the authenticator
enrollment page (its QR code drawn on the page, the key written out for
whoever cannot scan it, read here as a screen reader would), the recovery
codes shown once, the console; signs out; and signs in again with a code,
one wrong code first. axe-core checks every page on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from lab import SeedAccount
from sspm.account import staff
from sspm.policy.actor import Actor
from tests.flows.test_staff_signin import fresh_code, wrong_code
from tests.support import services_of
from tests.support.browser import LiveServer, assert_no_horizontal_scroll, directory_of, refusal, say, tab_until

pytestmark = pytest.mark.browser

AXE = Axe()
SCREENS = [pytest.param("en", "desktop", id="en-1280"), pytest.param("fr", "phone", id="fr-360")]


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


def type_into(page: Page, selector: str, text: str) -> None:
    tab_until(page, selector)
    page.keyboard.type(text)


def make_staff(server: LiveServer, person: SeedAccount) -> None:
    with directory_of(server) as directory:
        account = directory.find_account(person.uid)
    assert account is not None
    staff.grant(services_of(server.app).store, Actor.operator("test"), account=account, role="admin",
                organization="st-mary")  # fmt: skip


def give_password(page: Page, person: SeedAccount) -> int:
    type_into(page, "#username", person.uid)
    type_into(page, "#password", person.password)
    return press_enter_and_wait(page)


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_a_staff_member_signs_in_enrolls_signs_out_and_signs_in_with_a_code_by_keyboard(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
) -> None:
    server, john = live_server, accounts["normal"]
    make_staff(server, john)
    page = open_page(server, device=device, lang=lang)

    page.goto("/staff/signin")
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Staff sign-in"))
    expect(page.get_by_role("link", name=say(server, lang, "Forgot password"))).to_have_attribute(
        "href", "/forgot/email"
    )
    assert_accessible(page, device)
    assert give_password(page, john) == 200
    assert page.url.endswith("/staff/totp")

    # The enrollment page: a QR code drawn here, and the key for keyboard and screen-reader users.
    qr = page.get_by_role("img", name=say(server, lang, "QR code to scan with your authenticator app"))
    expect(qr).to_be_visible()
    assert_accessible(page, device)
    expect(page.locator("dt").first).to_have_text(say(server, lang, "Key to type if you cannot scan the code:"))
    secret = page.locator("dt + dd #secret").inner_text().replace(" ", "")
    type_into(page, "#code", pyotp.TOTP(secret).now())
    assert press_enter_and_wait(page) == 200

    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Your recovery codes"))
    expect(page.get_by_role("status")).to_contain_text(
        say(server, lang, "Store these codes now: they are shown only this once.")
    )
    expect(page.locator("ol.codes li")).to_have_count(10)
    assert_accessible(page, device)
    tab_until(page, "a.button")
    assert press_enter_and_wait(page) == 200
    assert page.url.endswith("/staff/")
    expect(page.get_by_role("navigation", name=say(server, lang, "Staff console"))).to_contain_text(
        say(server, lang, "Roles")
    )
    assert_accessible(page, device)

    tab_until(page, "nav.staff-nav button")
    assert press_enter_and_wait(page) == 200
    signed_out = "You are signed out of the staff console. On a shared computer, close the browser when you are done."
    expect(page.get_by_role("status")).to_have_text(say(server, lang, signed_out))

    # Again: the password, then a code (one mistyped first).
    assert give_password(page, john) == 200
    assert page.url.endswith("/staff/signin/code")
    assert_accessible(page, device)
    type_into(page, "#code", wrong_code(secret))
    assert press_enter_and_wait(page) == 422
    expect(page.locator("#code-error")).to_have_text(refusal(server, lang, "staff_code_wrong"))
    assert page.evaluate("document.activeElement.id") == "code", "the keyboard is where the next code goes"
    assert_accessible(page, device)
    page.keyboard.type(fresh_code(secret))
    assert press_enter_and_wait(page) == 200
    assert page.url.endswith("/staff/")
