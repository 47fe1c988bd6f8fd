"""Security answers are typed out of sight of the person behind, and shown on request.

On a shared ward PC, an answer on the screen is an answer given away. Each
answer box is masked; a "Show answer" button next to it, reached and
pressed with the keyboard, shows it and says so, and pressing it again
hides it. Without JavaScript there is no button and the answer stays masked.
axe-core checks the pages with the buttons in both states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from lab import SeedAccount
from tests.support.browser import LiveServer, captcha_text, enroll_seeded, say, tab_until

pytestmark = pytest.mark.browser

AXE = Axe()
ANSWER = "Riverside Elementary"


def assert_accessible(page: Page) -> None:
    violations: list[dict[str, Any]] = list(AXE.run(page).response["violations"])
    problems = [f"{v['id']} [{v['impact']}] {v['help']}" for v in violations]
    assert not problems, f"axe on {page.url}:\n" + "\n".join(problems)


def sign_in_to_enroll(page: Page, person: SeedAccount) -> None:
    page.goto("/signin?next=enroll.edit")
    page.locator("#username").fill(person.uid)
    page.locator("#password").fill(person.password)
    with page.expect_navigation():
        page.locator("#password").press("Enter")


def to_challenge(page: Page, server: LiveServer, person: SeedAccount) -> None:
    enroll_seeded(server, person.uid)
    page.goto("/forgot")
    page.locator("#username").fill(person.uid)
    page.locator("#captcha").fill(captcha_text(page, server))
    with page.expect_navigation():
        page.locator("#captcha").press("Enter")
    expect(page.locator("#answer_0")).to_be_visible()


def reveal_and_hide_by_keyboard(page: Page, server: LiveServer, lang: str = "en") -> None:
    """Type an answer, Tab to its button, show it with Enter, hide it with Space."""
    answer = page.locator("#answer_0")
    button = page.locator('button.reveal[aria-controls="answer_0"]')
    tab_until(page, "#answer_0")
    page.keyboard.type(ANSWER)
    expect(answer).to_have_attribute("type", "password")

    page.keyboard.press("Tab")
    expect(button).to_be_focused()
    expect(button).to_have_text(say(server, lang, "Show answer"))
    page.keyboard.press("Enter")
    expect(answer).to_have_attribute("type", "text")
    expect(answer).to_have_value(ANSWER)
    expect(button).to_have_text(say(server, lang, "Hide answer"))
    expect(page.locator("[aria-live]").filter(has_text=say(server, lang, "Your answer is shown."))).to_have_count(1)
    assert_accessible(page)

    page.keyboard.press("Space")
    expect(answer).to_have_attribute("type", "password")
    expect(button).to_have_text(say(server, lang, "Show answer"))
    assert_accessible(page)


def test_enrollment_answers_are_masked_and_shown_on_request(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    page = open_page(live_server)
    sign_in_to_enroll(page, accounts["normal"])
    expect(page.locator('input[name^="answer_"]')).to_have_count(3)
    for i in range(3):
        expect(page.locator(f"#answer_{i}")).to_have_attribute("type", "password")

    reveal_and_hide_by_keyboard(page, live_server)


def test_challenge_answers_are_masked_and_shown_on_request_in_french(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    page = open_page(live_server, lang="fr")
    to_challenge(page, live_server, accounts["other"])

    reveal_and_hide_by_keyboard(page, live_server, "fr")


def test_without_javascript_answers_stay_masked_and_no_button_shows(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    page = open_page(live_server, javascript=False)
    sign_in_to_enroll(page, accounts["normal"])
    for i in range(3):
        expect(page.locator(f"#answer_{i}")).to_have_attribute("type", "password")
    expect(page.locator("button.reveal")).to_have_count(3)
    for button in page.locator("button.reveal").all():
        expect(button).to_be_hidden()
