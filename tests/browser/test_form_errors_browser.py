"""Refusals where the user is, by keyboard alone: what a new user noticed (issue 9, item 15).

Each story is one thing a user met in the browser: a misread CAPTCHA and a
question chosen twice said next to their own field (linked from the
summary, marked invalid, the keyboard on it), each enrollment list with a
name of its own, "Show a new image" keeping the keyboard by the CAPTCHA,
"do not match" on the confirmation with no password sent back, a countdown
that closes the form and offers a real "Start again" (with and without
JavaScript), and a question page that says what it is for. axe finds
nothing on any of these pages, in English and French, at 1280 and 360 px.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from lab import SeedAccount
from tests.support.browser import LiveServer, captcha_text, enroll_seeded, refusal, say, tab_until

from .test_accessibility import axe_violations, describe, horizontal_overflow
from .test_enroll_browser import ANSWERS, pick_with_arrows, sign_in
from .test_recovery_browser import asked, start, submit_with_enter

pytestmark = pytest.mark.browser

COMBOS = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]
STRONG = "Lumen-Pebble-Orchard-Zephyr-93"
RETYPE = "For your security, this box was emptied. Type it again."


def assert_accessible(page: Page, device: str) -> None:
    problems = [describe(v) for v in axe_violations(page)]
    if device == "phone":
        problems += filter(None, [horizontal_overflow(page)])
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


def assert_said_at(page: Page, field_id: str, text: str) -> None:
    """``text`` is said next to the field, read with it, marked invalid, and linked from the summary."""
    box = page.locator(f"#{field_id}")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field_id}-error")).to_have_text(text)
    described = (box.get_attribute("aria-describedby") or "").split()
    assert f"{field_id}-error" in described, described
    expect(page.locator(f'#problems a[href="#{field_id}"]')).to_have_text(text)


def in_view(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            """s => { const b = document.querySelector(s).getBoundingClientRect();
                      return b.top >= 0 && b.bottom <= window.innerHeight; }""",
            selector,
        )
    )


# --- A misread CAPTCHA ---------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_a_misread_captcha_is_said_at_the_captcha_with_the_keyboard_on_it(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    laura = accounts["other"]
    enroll_seeded(live_server, laura.uid)
    page = open_page(live_server, device=device, lang=lang)
    wrong = refusal(live_server, lang, "captcha_wrong")

    # On Forgot Password.
    page.goto(f"{entry}/forgot")
    tab_until(page, "#username")
    page.keyboard.type(laura.uid)
    tab_until(page, "#captcha")
    page.keyboard.type("ZZZZZZ")
    assert submit_with_enter(page).status == 422

    assert_said_at(page, "captcha", wrong)
    expect(page.locator("#captcha")).to_be_focused()
    expect(page.locator("#username")).to_have_value(laura.uid)
    assert_accessible(page, device)
    # The keyboard is already where the fix goes: the new image's characters, Enter.
    page.keyboard.type(captcha_text(page, live_server))
    submit_with_enter(page)
    expect(page).to_have_url(f"{live_server.url}{entry}/recovery/challenge")

    # On the question page, the answers typed are kept.
    for i, _ in enumerate(asked(page, live_server)):
        tab_until(page, f"#answer_{i}")
        page.keyboard.type(f"answer {i}")
    tab_until(page, "#captcha")
    page.keyboard.type("ZZZZZZ")
    assert submit_with_enter(page).status == 422

    assert_said_at(page, "captcha", wrong)
    expect(page.locator("#captcha")).to_be_focused()
    expect(page.locator("#answer_0")).to_have_value("answer 0")
    assert_accessible(page, device)


# --- A question chosen twice, and lists with names of their own ---------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_a_question_chosen_twice_is_said_at_the_list_that_repeats_it(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    page = open_page(live_server, device=device, lang=lang)
    page.goto(f"{entry}/signin")
    sign_in(page, john.uid, john.password)
    page.goto(f"{entry}/enroll/edit")

    # Three lists, three names: a screen reader's list of fields tells them apart.
    count = len(ANSWERS)
    for n in range(1, count + 1):
        name = say(live_server, lang, "Question %(n)s of %(count)s", n=n, count=count)
        expect(page.get_by_role("combobox", name=name, exact=True)).to_have_attribute("id", f"question_{n - 1}")
        answer_name = say(live_server, lang, "Answer %(n)s of %(count)s", n=n, count=count)
        expect(page.get_by_role("textbox", name=answer_name, exact=True)).to_have_attribute("id", f"answer_{n - 1}")

    # The same question in the first two lists.
    for i, (steps, text) in enumerate(zip((1, 1, 2), ANSWERS, strict=True)):
        tab_until(page, f"#question_{i}")
        pick_with_arrows(page, f"question_{i}", steps)
        tab_until(page, f"#answer_{i}")
        page.keyboard.type(text)
    tab_until(page, "#password")
    page.keyboard.type(john.password)
    assert submit_with_enter(page).status == 422

    assert_said_at(page, "question_1", refusal(live_server, lang, "question_twice"))
    expect(page.locator("#question_1")).to_be_focused()
    expect(page.locator("#question_0")).not_to_have_attribute("aria-invalid", "true")
    # The password is not sent back; the page says why its box is empty.
    expect(page.locator("#password")).to_have_value("")
    expect(page.locator("#password-note")).to_have_text(say(live_server, lang, RETYPE))
    assert_accessible(page, device)

    # Fixed where the keyboard is: another question, the password again, saved.
    pick_with_arrows(page, "question_1", 2)
    tab_until(page, "#password")
    page.keyboard.type(john.password)
    assert submit_with_enter(page).status == 200
    expect(page).to_have_url(f"{live_server.url}{entry}/enroll")


# --- "Show a new image" -----------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_a_new_image_keeps_the_keyboard_by_the_captcha(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    laura = accounts["other"]
    enroll_seeded(live_server, laura.uid)
    page = open_page(live_server, device=device, lang=lang)

    page.goto(f"{entry}/forgot")
    tab_until(page, "#username")
    page.keyboard.type(laura.uid)
    for where in ("start", "challenge"):
        before = captcha_text(page, live_server)
        tab_until(page, 'button[value="new-image"]')
        assert submit_with_enter(page).status == 200, where

        assert captcha_text(page, live_server) != before, where
        expect(page.locator("#captcha")).to_be_focused()
        assert in_view(page, ".captcha img"), f"{where}: the new image should be in view"
        assert in_view(page, "#captcha"), f"{where}: the field for it should be in view"
        assert_accessible(page, device)
        if where == "start":
            expect(page.locator("#username")).to_have_value(laura.uid)
            # Straight on from the field: the new image's characters, Enter.
            page.keyboard.type(captcha_text(page, live_server))
            submit_with_enter(page)
            expect(page).to_have_url(f"{live_server.url}{entry}/recovery/challenge")


# --- Two passwords that differ ----------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_passwords_that_differ_are_said_at_the_confirmation_and_never_sent_back(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    page = open_page(live_server, device=device, lang=lang)
    page.goto(f"{entry}/change")
    tab_until(page, "#username")
    page.keyboard.type(john.uid)
    for field_id, value in (("current", john.password), ("new", STRONG), ("confirm", STRONG + "x")):
        tab_until(page, f"#{field_id}")
        page.keyboard.type(value)
    response = submit_with_enter(page)
    assert response.status == 422

    assert_said_at(page, "confirm", refusal(live_server, lang, "mismatch"))
    expect(page.locator("#confirm")).to_be_focused()
    expect(page.locator("#new")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#new-error")).to_have_count(0)
    # No password comes back in the page; the boxes say why they are empty.
    body = response.text()
    for secret in (john.password, STRONG):
        assert secret not in body
    for field_id in ("current", "new", "confirm"):
        expect(page.locator(f"#{field_id}")).to_have_value("")
    for field_id in ("current", "new"):
        expect(page.locator(f"#{field_id}-note")).to_have_text(say(live_server, lang, RETYPE))
    expect(page.locator("#username")).to_have_value(john.uid)
    assert_accessible(page, device)


# --- When the time is up ------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_when_the_time_is_up_the_form_closes_and_start_again_is_a_real_link(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    server = serve(SSPM_CHALLENGE_SECONDS="3")
    laura = accounts["other"]
    enroll_seeded(server, laura.uid)
    page = open_page(server, device=device, lang=lang)
    start(page, server, "forgot", laura.uid, entry=entry)
    tab_until(page, "#answer_0")
    page.keyboard.type("riverside")

    expect(page.locator("#countdown")).to_have_class("countdown countdown-over")
    # Nothing can be sent any more, not even with Enter in a box...
    for button in page.locator('main form button[type="submit"]').all():
        expect(button).to_be_disabled()
    expect(page.get_by_role("button", name=say(server, lang, "Continue"))).to_be_hidden()
    # ...and the way on is a real link, with the keyboard on it.
    restart = page.get_by_role("link", name=say(server, lang, "Start again"))
    expect(restart).to_be_focused()
    expect(restart).to_have_attribute("href", f"{entry}/forgot")
    assert_accessible(page, device)
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    response = navigation.value
    assert response is not None and response.status == 200
    expect(page).to_have_url(f"{server.url}{entry}/forgot")


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_without_javascript_the_server_answers_time_up_with_a_start_again_link(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    server = serve(SSPM_CHALLENGE_SECONDS="2")
    laura = accounts["other"]
    enroll_seeded(server, laura.uid)
    page = open_page(server, device=device, lang=lang, javascript=False)
    start(page, server, "forgot", laura.uid, entry=entry)

    # Past the deadline (the server's clock decides), "Show a new image" or a reload gets
    # the server's own answer: time is up, and a real link to start again.
    response = None
    for _ in range(100):
        tab_until(page, 'button[value="new-image"]')
        response = submit_with_enter(page)
        if response.status != 200:
            break
        page.wait_for_timeout(100)
    assert response is not None and response.status == 410
    expect(page.get_by_role("alert")).to_have_text(refusal(server, lang, "too_late"))
    expect(page.locator("form")).to_have_count(0)
    restart = page.get_by_role("link", name=say(server, lang, "Start again"), exact=True)
    expect(restart).to_have_attribute("href", f"{entry}/forgot")
    # (axe needs JavaScript: this page is the "gone" state of test_recovery_accessibility.py.)
    tab_until(page, f'a.button[href="{entry}/forgot"]')
    assert submit_with_enter(page).status == 200
    # The old challenge is gone for good.
    assert page.goto(f"{entry}/recovery/challenge").status == 410


# --- What the question page is for ---------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_the_question_page_says_whether_it_resets_or_unlocks(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    laura = accounts["other"]
    enroll_seeded(live_server, laura.uid)
    page = open_page(live_server, device=device, lang=lang)
    headings = {
        "forgot": "Answer your security questions to reset your password",
        "unlock": "Answer your security questions to unlock your account",
    }
    for purpose, heading in headings.items():
        start(page, live_server, purpose, laura.uid, entry=entry)
        expect(page.get_by_role("heading", level=1)).to_have_text(say(live_server, lang, heading))
        assert page.title().startswith(say(live_server, lang, heading) + " · ")
        assert_accessible(page, device)
