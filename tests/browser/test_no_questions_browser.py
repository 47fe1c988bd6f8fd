"""A user who never set up security questions is told so up front and reaches the email link by keyboard (item 13).

On the home, Forgot Password and Unlock Account pages, before anything is
typed, and again on the refusal after wrong answers: questions work only
for those who set them up, and "Get a reset link by email" is right there.
axe finds nothing on these pages, in English and French, at 1280 and 360 px.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from lab import SeedAccount
from tests.support.browser import LiveServer, say, tab_until

from .test_form_errors_browser import COMBOS, assert_accessible
from .test_recovery_browser import answer, start, submit_with_enter

pytestmark = pytest.mark.browser

ONLY_IF_SET_UP = (
    "Security questions work only if you set them up beforehand. "
    "If you did not, a reset link sent by email works without them."
)


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_a_user_without_questions_finds_the_email_link_before_typing_anything(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    page = open_page(live_server, device=device, lang=lang)
    email_link = say(live_server, lang, "Get a reset link by email")
    for path, notes in ((entry or "/", 2), (f"{entry}/forgot", 1), (f"{entry}/unlock", 1)):
        page.goto(path)
        notes_shown = page.locator(".no-questions")
        expect(notes_shown).to_have_count(notes)
        for note in notes_shown.all():
            expect(note).to_be_visible()
            expect(note).to_contain_text(say(live_server, lang, ONLY_IF_SET_UP))
            expect(note.get_by_role("link", name=email_link)).to_have_attribute("href", f"{entry}/forgot/email")
        assert_accessible(page, device)

    # From Unlock Account, by keyboard, before typing a name: straight to the email page.
    tab_until(page, f'.no-questions a[href="{entry}/forgot/email"]')
    assert submit_with_enter(page).status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(live_server, lang, "Reset your password by email"))


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_the_refusal_after_the_questions_offers_the_email_link(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    # Laura never set up questions: she meets the same questions and refusal as anyone.
    page = open_page(live_server, device=device, lang=lang)
    start(page, live_server, "forgot", accounts["other"].uid, entry=entry)
    assert answer(page, live_server, {}).status == 422

    note = page.locator(".no-questions")
    expect(note).to_contain_text(say(live_server, lang, ONLY_IF_SET_UP))
    assert_accessible(page, device)
    tab_until(page, f'.no-questions a[href="{entry}/forgot/email"]')
    assert submit_with_enter(page).status == 200
    expect(page).to_have_url(f"{live_server.url}{entry}/forgot/email")
