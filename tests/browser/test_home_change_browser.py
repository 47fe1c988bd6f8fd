"""Changing a password from the home page: one page, not two.

The home page carries the Change Password form itself, so a user types
there and lands on the confirmation. It is sent to /change and answered
by it, so a refusal reads exactly as it does there. Keyboard only; axe-core
on the home page empty, with the meter in use, and after a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from connectors.directory import Outcome
from lab import SeedAccount
from tests.support.browser import LiveServer, assert_no_horizontal_scroll, directory_of, refusal, tab_until

pytestmark = pytest.mark.browser

AXE = Axe()
NEW_PASSWORD = "Lumen-Pebble-Orchard-Zephyr-93"
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


def type_the_form(page: Page, username: str, current: str, new: str) -> None:
    """Tab from the top of the page into the form, type each box, press Enter."""
    tab_until(page, "#username")
    page.keyboard.type(username)
    for field_id, value in (("current", current), ("new", new), ("confirm", new)):
        page.keyboard.press("Tab")
        expect(page.locator(f"#{field_id}")).to_be_focused()
        page.keyboard.type(value)
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_a_user_changes_their_password_right_from_the_home_page(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    page = open_page(live_server, device=device, lang=lang)
    page.goto(entry or "/")
    assert_accessible(page, device)
    expect(page.locator("#strength")).to_be_hidden()

    tab_until(page, "#username")
    page.keyboard.type(john.uid)
    page.keyboard.press("Tab")
    page.keyboard.type(john.password)
    page.keyboard.press("Tab")
    expect(page.locator("#new")).to_be_focused()
    page.keyboard.type(NEW_PASSWORD)
    # The meter (and zxcvbn, fetched only now) works here as on /change.
    expect(page.locator('[data-rule="strength"]')).to_have_class(re.compile(r"\brule-met\b"))
    expect(page.locator("#strength-text")).not_to_have_text("")
    assert_accessible(page, device)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page).to_have_url(f"{live_server.url}{entry}/change/done")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("status")).to_contain_text(john.display_name)
    with directory_of(live_server) as directory:
        assert directory.verify_password(john.uid, NEW_PASSWORD)[1].outcome is Outcome.OK


def test_a_refusal_from_the_home_page_reads_as_on_change_password(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    page = open_page(live_server)
    shown = []
    for username, current in ((accounts["normal"].uid, "Not-His-Password-1"), ("nobody-here", "Any-Password-1")):
        page.goto("/")
        type_the_form(page, username, current, NEW_PASSWORD)
        expect(page).to_have_url(f"{live_server.url}/change")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text(refusal(live_server, "en", "bad_credentials"))
        shown.append(alert.inner_text())
    assert shown[0] == shown[1], "a wrong password and an unknown name read the same"
    assert_accessible(page, "desktop")


def test_without_javascript_the_home_form_still_changes_the_password(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    thanh = accounts["temporary"]
    page = open_page(live_server, javascript=False)
    page.goto("/")
    expect(page.locator("#strength")).to_be_hidden()

    type_the_form(page, thanh.uid, thanh.password, NEW_PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/change/done")
    with directory_of(live_server) as directory:
        assert directory.verify_password(thanh.uid, NEW_PASSWORD)[1].outcome is Outcome.OK
