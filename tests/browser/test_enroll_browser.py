"""Signing in and enrolling security questions, keyboard only, in a real Chromium.

The user signs in, picks questions with the arrow keys, answers them,
confirms with their password, and reviews what they chose: the questions,
never the answers. Signing out ends the session on the server, so the
pages behind it ask for a sign-in again.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Response, expect
from sqlalchemy import func, select

from connectors.directory import Outcome
from lab import SeedAccount
from sspm.infra.store import Answer
from sspm.policy.questions import normalise
from tests.support import services_of
from tests.support.browser import LiveServer, assert_no_horizontal_scroll, directory_of, refusal, say, tab_until

pytestmark = pytest.mark.browser

ANSWERS = ["Riverside Elementary", "Maple Street", "Biscuit"]
ENTRIES = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]


def submit_with_enter(page: Page) -> Response:
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    response = navigation.value
    assert response is not None
    return response


def sign_in(page: Page, login: str, password: str) -> Response:
    """On the sign-in page: user name, password, Enter."""
    tab_until(page, "#username")
    page.keyboard.type(login)
    tab_until(page, "#password")
    page.keyboard.type(password)
    return submit_with_enter(page)


def pick_with_arrows(page: Page, select_id: str, steps: int) -> str:
    """Move a closed <select> down ``steps`` options with the arrow key; the value chosen."""
    for _ in range(steps):
        page.keyboard.press("ArrowDown")
    value = page.locator(f"#{select_id}").input_value()
    assert value, f"#{select_id} should have a question chosen"
    return value


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_a_user_enrolls_reviews_and_signs_out(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    page = open_page(live_server, device=device, lang=lang)

    # The questions are behind a sign-in, which brings the user back to them.
    page.goto(f"{entry}/enroll")
    expect(page).to_have_url(re.compile(rf"{re.escape(live_server.url)}{entry}/signin\?"))
    sign_in(page, john.uid, john.password)
    expect(page).to_have_url(f"{live_server.url}{entry}/enroll")
    expect(page.locator(".lead")).to_have_text(say(live_server, lang, "Signed in as %(name)s.", name=john.display_name))

    tab_until(page, f'a[href="{entry}/enroll/edit"]')
    submit_with_enter(page)
    expect(page).to_have_url(f"{live_server.url}{entry}/enroll/edit")
    if device == "phone":
        assert_no_horizontal_scroll(page)

    chosen = []
    for i, answer in enumerate(ANSWERS):
        tab_until(page, f"#question_{i}")
        chosen.append(pick_with_arrows(page, f"question_{i}", i + 1))
        tab_until(page, f"#answer_{i}")
        page.keyboard.type(answer)
    assert len(set(chosen)) == len(ANSWERS)
    tab_until(page, "#password")
    page.keyboard.type(john.password)
    submit_with_enter(page)

    # The review lists the chosen questions in the page's language, never an answer.
    expect(page).to_have_url(f"{live_server.url}{entry}/enroll")
    saved = say(
        live_server,
        lang,
        "Your security questions are saved. You can now reset your password or unlock your account on your own.",
    )
    expect(page.get_by_role("status")).to_have_text(saved)
    catalogue = services_of(live_server.app).catalogue.by_id
    expect(page.locator("main ul li")).to_have_text([catalogue[q].in_language(lang) for q in chosen])
    content = normalise(page.content())
    for answer in ANSWERS:
        assert normalise(answer) not in content
    if device == "phone":
        assert_no_horizontal_scroll(page)

    # Signing out ends the session: the page behind it asks for a sign-in again,
    # whether the user goes back or opens it afresh.
    tab_until(page, ".signout button")
    submit_with_enter(page)
    expect(page).to_have_url(f"{live_server.url}{entry or '/'}")
    signed_out = "You are signed out. On a shared computer, close the browser when you are done."
    expect(page.get_by_role("status")).to_have_text(say(live_server, lang, signed_out))
    page.go_back()
    expect(page).to_have_url(re.compile(rf"{re.escape(live_server.url)}{entry}/signin\?"))
    page.goto(f"{entry}/enroll/edit")
    expect(page).to_have_url(re.compile(rf"{re.escape(live_server.url)}{entry}/signin\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text(say(live_server, lang, "Sign in"))


def test_a_refused_enrollment_says_why_and_keeps_nothing(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    page = open_page(live_server)
    page.goto("/signin")
    sign_in(page, john.uid, john.password)
    page.goto("/enroll/edit")

    for i in range(len(ANSWERS)):
        tab_until(page, f"#question_{i}")
        pick_with_arrows(page, f"question_{i}", i + 1)
        tab_until(page, f"#answer_{i}")
        page.keyboard.type("Same answer")
    tab_until(page, "#password")
    page.keyboard.type(john.password)
    response = submit_with_enter(page)

    assert response.status == 422
    expect(page.locator("#problems")).to_be_focused()
    expect(page.get_by_role("alert")).to_contain_text(refusal(live_server, "en", "answers_same"))
    expect(page.locator("#password")).to_have_value("")
    # Nothing was stored, and the right password did not count as a wrong one.
    with services_of(live_server.app).store.session() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 0
    with directory_of(live_server) as directory:
        assert directory.verify_password(john.uid, john.password)[1].outcome is Outcome.OK
