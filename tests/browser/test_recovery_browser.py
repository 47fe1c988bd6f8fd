"""Forgot Password and Unlock Account as a locked-out user does them: keyboard only.

Each story types a user name and the CAPTCHA (read the way a person who can
see the image reads it), answers the two questions the server picked, and
ends on the confirmation; the directory itself then confirms the result
through the app's own connector. Refusals are compared as the user sees
them: enrolled or not, existing or not, the pages read the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Response, expect

from connectors.directory import Outcome
from lab import SeedAccount
from lab.enrollment import DEMO_ANSWERS
from tests.support.browser import (
    LiveServer,
    assert_no_horizontal_scroll,
    captcha_text,
    directory_of,
    enroll_seeded,
    question_ids,
    refusal,
    say,
    tab_until,
)

pytestmark = pytest.mark.browser

NEW_PASSWORD = "Lumen-Pebble-Orchard-Zephyr-93"
WRONG = "Not-The-Answer"
#: DEMO_ANSWERS as people really type them: other capitals, no accents, stray spaces.
TYPED_ANSWERS = {
    "first-school": "  riverside   ELEMENTARY ",
    "first-pet": "BISCUIT",
    "parents-met": "  montreal ",
}
assert TYPED_ANSWERS.keys() == DEMO_ANSWERS.keys()
#: The lab policy's pwdMaxFailure: this many wrong binds lock an account.
LOCK_AFTER = 5
CLOCK = re.compile(r"^\d+:\d\d$")
ENTRIES = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]

#: Records every text the countdown's live region is given, from the page's first moment.
RECORD_ANNOUNCEMENTS = """
window.__announced = [];
new MutationObserver(records => {
  const live = document.getElementById("countdown-announce");
  if (live && records.some(r => r.target === live || live.contains(r.target))) {
    window.__announced.push(live.textContent);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


# --- The steps, by keyboard ------------------------------------------------------------


def submit_with_enter(page: Page) -> Response:
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    response = navigation.value
    assert response is not None
    return response


def start(page: Page, server: LiveServer, purpose: str, username: str, *, entry: str = "") -> None:
    """Open Forgot Password or Unlock Account, type the name and the CAPTCHA, press Enter."""
    page.goto(f"{entry}/{purpose}")
    tab_until(page, "#username")
    page.keyboard.type(username)
    tab_until(page, "#captcha")
    page.keyboard.type(captcha_text(page, server))
    submit_with_enter(page)
    expect(page).to_have_url(f"{server.url}{entry}/recovery/challenge")


def asked(page: Page, server: LiveServer) -> list[str]:
    """The ids of the questions on the challenge page, read from its labels."""
    by_text = question_ids(server)
    labels = page.locator('label[for^="answer_"]')
    expect(labels).to_have_count(server.settings.questions_asked)
    return [by_text[text] for text in labels.all_inner_texts()]


def answer(page: Page, server: LiveServer, answers: dict[str, str]) -> Response:
    """Answer what the page asks (WRONG where ``answers`` has nothing), type the CAPTCHA, press Enter."""
    for i, question in enumerate(asked(page, server)):
        tab_until(page, f"#answer_{i}")
        page.keyboard.type(answers.get(question, WRONG))
    tab_until(page, "#captcha")
    page.keyboard.type(captcha_text(page, server))
    return submit_with_enter(page)


def verdict(server: LiveServer, login: str, password: str) -> Outcome:
    with directory_of(server) as directory:
        return directory.verify_password(login, password)[1].outcome


# --- Forgot Password ---------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_forgot_password_then_sign_in_with_the_new_one(
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

    start(page, live_server, "forgot", laura.uid, entry=entry)

    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator(".account-name")).to_have_text(f"{laura.uid} (PARTNERS)")
    expect(page.locator(".countdown-clock")).to_have_text(CLOCK)
    questions = asked(page, live_server)
    assert len(set(questions)) == 2 and set(questions) <= DEMO_ANSWERS.keys()
    if device == "phone":
        assert_no_horizontal_scroll(page)

    answer(page, live_server, TYPED_ANSWERS)

    expect(page).to_have_url(f"{live_server.url}{entry}/recovery/new-password")
    expect(page.locator("#rules li")).not_to_have_count(0)
    tab_until(page, "#new")
    # The page cannot see the user name here, so it never ticks that rule off by itself.
    page.keyboard.type(f"{laura.uid}-Orchard-Zephyr-93")
    expect(page.locator('[data-rule="length"]')).to_have_class(re.compile(r"\brule-met\b"))
    expect(page.locator('[data-rule="name"]')).not_to_have_class(re.compile(r"\brule-met\b"))
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("Backspace")
    page.keyboard.type(NEW_PASSWORD)
    strength = say(live_server, lang, "Strength:")
    expect(page.locator("#strength-text")).to_have_text(re.compile(rf"^{re.escape(strength)} \S"))
    expect(page.locator('[data-rule="length"]')).to_have_class(re.compile(r"\brule-met\b"))
    tab_until(page, "#confirm")
    page.keyboard.type(NEW_PASSWORD)
    submit_with_enter(page)

    expect(page).to_have_url(f"{live_server.url}{entry}/recovery/done")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(live_server, lang, "Your password has been reset successfully.")
    )
    if device == "phone":
        assert_no_horizontal_scroll(page)
    assert verdict(live_server, laura.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(live_server, laura.uid, laura.password) is Outcome.BAD_CREDENTIALS

    # The new password opens a session on the sign-in page.
    page.goto(f"{entry}/signin")
    tab_until(page, "#username")
    page.keyboard.type(laura.uid)
    tab_until(page, "#password")
    page.keyboard.type(NEW_PASSWORD)
    submit_with_enter(page)
    expect(page).to_have_url(f"{live_server.url}{entry}/enroll")
    signed_in = say(live_server, lang, "Signed in as %(name)s.", name=laura.display_name)
    expect(page.locator(".lead")).to_have_text(signed_in)


# --- Unlock Account ----------------------------------------------------------------


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_a_locked_account_unlocks_and_its_password_works_again(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    kevin = accounts["locked"]
    assert verdict(live_server, kevin.uid, kevin.password) is Outcome.LOCKED
    enroll_seeded(live_server, kevin.uid)
    page = open_page(live_server, device=device, lang=lang)

    start(page, live_server, "unlock", kevin.uid, entry=entry)
    answer(page, live_server, TYPED_ANSWERS)

    expect(page).to_have_url(f"{live_server.url}{entry}/recovery/done")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(live_server, lang, "The account unlock has been done successfully.")
    )
    expect(page.get_by_role("link", name=say(live_server, lang, "Back to home"))).to_be_visible()
    assert verdict(live_server, kevin.uid, kevin.password) is Outcome.OK


def test_an_account_locked_by_five_wrong_passwords_unlocks(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    alice = accounts["expiring"]
    for _ in range(LOCK_AFTER):
        assert verdict(live_server, alice.uid, "Wrong-Guess-0000") is Outcome.BAD_CREDENTIALS
    assert verdict(live_server, alice.uid, alice.password) is Outcome.LOCKED
    enroll_seeded(live_server, alice.uid)
    page = open_page(live_server, device="phone", lang="fr")

    start(page, live_server, "unlock", alice.uid, entry="/m")
    answer(page, live_server, TYPED_ANSWERS)

    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(live_server, "fr", "The account unlock has been done successfully.")
    )
    assert verdict(live_server, alice.uid, alice.password) is Outcome.OK


# --- Nothing tells who exists or who enrolled ------------------------------------------


def visible_text(page: Page, *echoed: str) -> str:
    """The page as a reader sees it, without what it echoes back or the ticking clock."""
    text = page.locator("body").inner_text()
    for value in sorted(echoed, key=len, reverse=True):
        text = text.replace(value, "ECHO")
    return re.sub(r"\b\d+:\d\d\b", "M:SS", text)


def test_not_enrolled_and_unknown_names_read_like_a_wrong_answer(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    lang, device, entry = "fr", "phone", "/m"
    enrolled, not_enrolled = accounts["other"], accounts["normal"]
    enroll_seeded(live_server, enrolled.uid)
    challenges: dict[str, str] = {}
    finals: dict[str, tuple[int, str, str]] = {}
    for name in (enrolled.uid, not_enrolled.uid, "nosuchuser"):
        page = open_page(live_server, device=device, lang=lang)
        start(page, live_server, "forgot", name, entry=entry)
        labels = page.locator('label[for^="answer_"]').all_inner_texts()
        challenges[name] = visible_text(page, name, *labels)
        response = answer(page, live_server, {})
        finals[name] = (response.status, page.url, page.locator("body").inner_text())

    assert len(set(challenges.values())) == 1, challenges
    assert len(set(finals.values())) == 1, finals
    status, url, text = finals["nosuchuser"]
    assert (status, url) == (422, f"{live_server.url}{entry}/recovery/challenge")
    assert refusal(live_server, lang, "answers_refused") in text


# --- The countdown -----------------------------------------------------------------


def test_answers_after_the_countdown_are_refused(
    serve: Callable[..., LiveServer], open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    lang, device, entry = "en", "desktop", ""
    server = serve(SSPM_CHALLENGE_SECONDS="3")
    laura = accounts["other"]
    enroll_seeded(server, laura.uid)
    page = open_page(server, device=device, lang=lang)
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    start(page, server, "forgot", laura.uid, entry=entry)

    expired = say(server, lang, "Time is up. Start again to get a new set of questions.")
    announce = page.locator("#countdown-announce")
    expect(page.locator("#countdown")).to_have_attribute("data-expired", expired)
    expect(announce).to_have_text(expired)
    expect(page.locator(".countdown-clock")).to_have_text("0:00")
    # Said once at the end, not once a second on the way there.
    assert page.evaluate("window.__announced") == [expired]
    # Sighted users read it too, not only screen readers.
    width = page.evaluate("document.getElementById('countdown-announce').getBoundingClientRect().width")
    assert width > 50, "the expired text should be visible, not only announced"

    # Right answers, sent as soon as the page says time is up by a client that ignores the closed
    # form (test_hardening_browser.py has the user's side): the server agrees it is.
    for i, question in enumerate(asked(page, server)):
        page.locator(f"#answer_{i}").evaluate("(box, text) => { box.value = text; }", TYPED_ANSWERS[question])
    page.locator("#captcha").evaluate("(box, text) => { box.value = text; }", captcha_text(page, server))
    with page.expect_navigation() as navigation:
        page.evaluate("HTMLFormElement.prototype.submit.call(document.querySelector('main form'))")
    response = navigation.value

    assert response is not None and response.status == 422
    expect(page.get_by_role("alert")).to_have_text(refusal(server, lang, "too_late"))
    assert verdict(server, laura.uid, laura.password) is Outcome.OK


def test_the_countdown_is_announced_at_each_whole_minute(
    serve: Callable[..., LiveServer], open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    server = serve(SSPM_CHALLENGE_SECONDS="61")
    enroll_seeded(server, accounts["other"].uid)
    page = open_page(server, device="phone", lang="fr")
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    start(page, server, "forgot", accounts["other"].uid, entry="/m")

    one_minute = say(server, "fr", "%(time)s left to answer.", time="1:00")
    expect(page.locator("#countdown-announce")).to_have_text(one_minute)
    assert page.evaluate("window.__announced") == [one_minute]
