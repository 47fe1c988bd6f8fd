"""Change Password as a user does it: keyboard only, in a real Chromium.

Every story moves with Tab, types, and submits with Enter, then checks what
is on the screen. A success is also checked in the directory itself: the
new password works and the old one no longer does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from connectors import open_directory
from connectors.directory import Outcome
from lab import SeedAccount
from tests.support.browser import LiveServer, assert_no_horizontal_scroll

pytestmark = pytest.mark.browser

NEW_PASSWORD = "Lumen-Pebble-Orchard-Zephyr-93"
SUCCESS_HEADING_EN = "Your password has been changed"
#: Each way in: (language, device, entry). English on a desktop at /,
#: French on a 360 px phone at /m.
ENTRIES = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]


def tab_to(page: Page, element_id: str, limit: int = 20) -> None:
    """Press Tab until the element with ``element_id`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    pytest.fail(f"#{element_id} is not reachable with Tab on {page.url}")


def change_by_keyboard(page: Page, username: str, current: str, new: str, confirm: str | None = None) -> None:
    """Fill the form field after field with Tab, then submit with Enter."""
    tab_to(page, "username")
    page.keyboard.type(username)
    for field_id, value in (("current", current), ("new", new), ("confirm", new if confirm is None else confirm)):
        page.keyboard.press("Tab")
        expect(page.locator(f"#{field_id}")).to_be_focused()
        page.keyboard.type(value)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def assert_password_changed(server: LiveServer, account: SeedAccount, new: str) -> None:
    """Ask the directory itself, through the connector the app uses."""
    directory = open_directory(server.settings.directory_kind, server.settings.directory)
    try:
        _, with_new = directory.verify_password(account.uid, new)
        _, with_old = directory.verify_password(account.uid, account.password)
    finally:
        directory.close()
    assert with_new.outcome is Outcome.OK
    assert with_old.outcome is Outcome.BAD_CREDENTIALS


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
@pytest.mark.parametrize("state", ["temporary", "expired", "normal"])
def test_a_user_changes_their_password(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    state: str,
    lang: str,
    device: str,
    entry: str,
) -> None:
    account = accounts[state]
    page = open_page(live_server, device=device, lang=lang)
    page.goto(f"{entry}/change")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    if device == "phone":
        assert_no_horizontal_scroll(page)

    change_by_keyboard(page, account.uid, account.password, NEW_PASSWORD)

    expect(page).to_have_url(f"{live_server.url}{entry}/change/done")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    heading = page.get_by_role("heading", level=1)
    if lang == "en":
        expect(heading).to_have_text(SUCCESS_HEADING_EN)
    else:
        expect(heading).not_to_have_text(SUCCESS_HEADING_EN)
    expect(page.get_by_role("status")).to_contain_text(account.display_name)
    if device == "phone":
        assert_no_horizontal_scroll(page)
    assert_password_changed(live_server, account, NEW_PASSWORD)


# One sentence for a wrong password, a locked and a disabled account: the directory says
# "locked" without checking the password, so telling them apart would reveal who exists.
WRONG_OR_LOCKED = "The user name or password is not right, or the account is locked."

REFUSALS = [
    pytest.param(
        "normal",
        "Wrong-Password-Given-1",
        NEW_PASSWORD,
        NEW_PASSWORD,
        WRONG_OR_LOCKED,
        id="wrong-password",
    ),
    pytest.param(
        "locked",
        None,
        NEW_PASSWORD,
        NEW_PASSWORD,
        WRONG_OR_LOCKED,
        id="locked",
    ),
    pytest.param(
        "disabled",
        None,
        NEW_PASSWORD,
        NEW_PASSWORD,
        WRONG_OR_LOCKED,
        id="disabled",
    ),
    pytest.param(
        "normal",
        None,
        "qwertyuiop",
        "qwertyuiop",
        "The new password is too easy to guess. Make it longer, for example with a few unrelated words.",
        id="too-weak",
    ),
    pytest.param(
        "normal",
        None,
        NEW_PASSWORD,
        NEW_PASSWORD + "x",
        "The two new passwords do not match. Type the same new password in both boxes.",
        id="mismatch",
    ),
]


@pytest.mark.parametrize(("state", "current", "new", "confirm", "message"), REFUSALS)
def test_a_refusal_says_why_and_keeps_the_user_name(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    state: str,
    current: str | None,
    new: str,
    confirm: str,
    message: str,
) -> None:
    account = accounts[state]
    page = open_page(live_server)
    page.goto("/change")

    change_by_keyboard(page, account.uid, current or account.password, new, confirm)

    summary = page.get_by_role("alert")
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    expect(summary).to_contain_text(message)
    expect(page.locator("#username")).to_have_value(account.uid)
    # Passwords are never sent back to the browser.
    for field_id in ("current", "new", "confirm"):
        expect(page.locator(f"#{field_id}")).to_have_value("")


def test_the_meter_tells_weak_from_strong_as_the_user_types(
    live_server: LiveServer, open_page: Callable[..., Page]
) -> None:
    page = open_page(live_server)
    page.goto("/change")
    strength = page.locator("#strength-text")
    rules = {rule: page.locator(f'[data-rule="{rule}"]') for rule in ("length", "strength", "different")}
    met = re.compile(r"\brule-met\b")

    tab_to(page, "new")
    page.keyboard.type("password")
    expect(strength).to_have_text(re.compile(r"^Strength: (Very weak|Weak)$"))
    expect(rules["strength"]).not_to_have_class(met)

    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("Backspace")
    page.keyboard.type(NEW_PASSWORD)
    expect(strength).to_have_text(re.compile(r"^Strength: (Strong|Very strong)$"))
    for item in rules.values():
        expect(item).to_have_class(met)
    # Whose names to look for is known only once the old password is proven (test_meter_browser.py).
    expect(page.locator('[data-rule="name"]')).to_have_attribute("data-state", "pending")


def test_without_javascript_the_form_still_works(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    account = accounts["normal"]
    page = open_page(live_server, javascript=False)
    page.goto("/change")
    expect(page.locator("#strength")).to_be_hidden()

    change_by_keyboard(page, account.uid, account.password, NEW_PASSWORD)

    expect(page.get_by_role("heading", level=1)).to_have_text(SUCCESS_HEADING_EN)
    assert_password_changed(live_server, account, NEW_PASSWORD)
