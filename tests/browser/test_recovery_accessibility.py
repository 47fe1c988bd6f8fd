"""Accessibility of sign-in, enrollment and recovery: axe finds nothing, the keyboard reaches everything.

axe runs on every page and state of these stories (empty forms, each kind
of error, the review, the challenge, the new password, both confirmations,
the "start again" page) in English and French, on a 1280 px desktop and a
360 px phone (/m). A failure lists every violation with its rule, help and
elements. The challenge page, where the CAPTCHA's audio link and "new
image" button live, is also walked with Tab alone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from lab import SeedAccount
from tests.support.browser import LiveServer, captcha_text, enroll_seeded, tab_until

from .test_accessibility import FOCUSED, axe_violations, describe, horizontal_overflow
from .test_enroll_browser import ANSWERS, pick_with_arrows, sign_in, submit_with_enter
from .test_recovery_browser import TYPED_ANSWERS, answer, start

pytestmark = pytest.mark.browser

#: Screenshots for a person to look at (/tmp/shots).
SHOTS = Path(tempfile.gettempdir()) / "shots"
STRONG = "Lumen-Pebble-Orchard-Zephyr-93"
WEAK = "qwertyuiop"
COMBOS = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
    pytest.param("fr", "desktop", "", id="fr-1280"),
    pytest.param("en", "phone", "/m", id="en-360-m"),
]


class Walk:
    """One user's way through every page of the stories, one state at a time."""

    def __init__(self, page: Page, server: LiveServer, entry: str, accounts: dict[str, SeedAccount]) -> None:
        self.page, self.server, self.entry, self.accounts = page, server, entry, accounts
        self.url = server.url + entry

    def goto(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.entry + path)
        assert response is not None and response.status == status, (path, response and response.status)

    def enter(self, status: int) -> None:
        assert submit_with_enter(self.page).status == status

    def field_errors(self, count: int) -> None:
        expect(self.page.locator("#problems")).to_be_focused()
        expect(self.page.locator(".field-error")).to_have_count(count)

    # -- sign in and enroll --

    def signin_empty(self) -> None:
        self.goto("/signin")

    def signin_error(self) -> None:
        sign_in(self.page, self.accounts["normal"].uid, "Not-The-Password-1")
        expect(self.page.get_by_role("alert")).to_be_visible()

    def enroll_prompt(self) -> None:
        john = self.accounts["normal"]
        self.goto("/signin")
        sign_in(self.page, john.uid, john.password)
        expect(self.page).to_have_url(f"{self.url}/enroll")

    def enroll_edit_empty(self) -> None:
        self.goto("/enroll/edit")

    def enroll_edit_errors(self) -> None:
        tab_until(self.page, "#password")
        self.enter(422)
        self.field_errors(2 * len(ANSWERS) + 1)

    def enroll_review(self) -> None:
        for i, text in enumerate(ANSWERS):
            tab_until(self.page, f"#question_{i}")
            pick_with_arrows(self.page, f"question_{i}", i + 1)
            tab_until(self.page, f"#answer_{i}")
            self.page.keyboard.type(text)
        tab_until(self.page, "#password")
        self.page.keyboard.type(self.accounts["normal"].password)
        self.enter(200)
        expect(self.page.locator("main ul li")).to_have_count(len(ANSWERS))
        tab_until(self.page, ".signout button")
        self.enter(200)

    # -- recover --

    def forgot_empty(self) -> None:
        self.goto("/forgot")

    def forgot_captcha_error(self) -> None:
        tab_until(self.page, "#username")
        self.page.keyboard.type(self.accounts["other"].uid)
        tab_until(self.page, "#captcha")
        self.page.keyboard.type("ZZZZZZ")
        self.enter(422)
        expect(self.page.get_by_role("alert")).to_be_visible()

    def challenge(self) -> None:
        start(self.page, self.server, "forgot", self.accounts["other"].uid, entry=self.entry)

    def challenge_captcha_error(self) -> None:
        tab_until(self.page, "#captcha")
        self.page.keyboard.type("ZZZZZZ")
        self.enter(422)
        self.field_errors(2)

    def new_password_error(self) -> None:
        answer(self.page, self.server, TYPED_ANSWERS)
        expect(self.page).to_have_url(f"{self.url}/recovery/new-password")
        for field_id in ("new", "confirm"):
            tab_until(self.page, f"#{field_id}")
            self.page.keyboard.type(WEAK)
        self.enter(422)
        expect(self.page.get_by_role("alert")).to_be_visible()

    def new_password_meter(self) -> None:
        tab_until(self.page, "#new")
        self.page.keyboard.type(STRONG)
        expect(self.page.locator("#strength-text")).not_to_have_text("")

    def forgot_done(self) -> None:
        tab_until(self.page, "#confirm")
        self.page.keyboard.type(STRONG)
        self.enter(200)
        expect(self.page).to_have_url(f"{self.url}/recovery/done")

    def unlock_done(self) -> None:
        start(self.page, self.server, "unlock", self.accounts["locked"].uid, entry=self.entry)
        answer(self.page, self.server, TYPED_ANSWERS)
        expect(self.page).to_have_url(f"{self.url}/recovery/done")

    def gone(self) -> None:
        self.goto("/recovery/challenge", status=410)

    def answers_refused(self) -> None:
        start(self.page, self.server, "forgot", "nosuchuser", entry=self.entry)
        assert answer(self.page, self.server, {}).status == 422


STATES = [
    "signin_empty",
    "signin_error",
    "enroll_prompt",
    "enroll_edit_empty",
    "enroll_edit_errors",
    "enroll_review",
    "forgot_empty",
    "forgot_captcha_error",
    "challenge",
    "challenge_captcha_error",
    "new_password_error",
    "new_password_meter",
    "forgot_done",
    "unlock_done",
    "gone",
    "answers_refused",
]
#: Pictures a person looks at: (state, language, device) -> file.
SCREENSHOTS = {
    ("challenge", "fr", "phone"): "challenge-fr-360.png",
    ("new_password_meter", "en", "desktop"): "new-password-en-1280.png",
}


@pytest.mark.parametrize(("lang", "device", "entry"), COMBOS)
def test_no_axe_violations_in_sign_in_enroll_and_recovery(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    for state in ("other", "locked"):
        enroll_seeded(live_server, accounts[state].uid)
    page = open_page(live_server, device=device, lang=lang)
    walk = Walk(page, live_server, entry, accounts)
    report: list[str] = []
    for state in STATES:
        getattr(walk, state)()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        if (state, lang, device) in SCREENSHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SHOTS / SCREENSHOTS[state, lang, device], full_page=True)
        problems = [describe(v) for v in axe_violations(page)]
        if device == "phone":
            problems += filter(None, [horizontal_overflow(page)])
        if problems:
            report.append(f"{state} ({page.url}):\n" + "\n".join(problems))
    print("\n".join(report))
    assert not report, "accessibility problems:\n" + "\n".join(report)


# --- Keyboard -----------------------------------------------------------------

#: What Tab must reach on the page, in order: visible, and not taken out of the Tab order.
MARK_TABBABLE = """() => {
  const selector = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), '
    + 'select:not([disabled]), textarea:not([disabled]), [tabindex]';
  const found = [...document.querySelectorAll(selector)]
    .filter(el => el.tabIndex >= 0 && el.checkVisibility()
      && el.getBoundingClientRect().width > 1 && el.getBoundingClientRect().height > 1);
  found.forEach((el, i) => el.setAttribute("data-tab-probe", String(i)));
  return found.map(el => el.outerHTML.slice(0, 80));
}"""


@pytest.mark.parametrize(("lang", "device", "entry"), [COMBOS[0], COMBOS[1]])
def test_tab_reaches_everything_on_the_challenge_page_with_a_visible_focus(
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
    page.evaluate("document.activeElement && document.activeElement.blur()")

    tabbable = page.evaluate(MARK_TABBABLE)
    visited: list[dict[str, Any]] = []
    for _ in range(len(tabbable) + 1):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or (visited and focused["probe"] == visited[0]["probe"]):
            break
        visited.append(focused)

    order = [int(f["probe"]) if f["probe"] is not None else f["html"] for f in visited]
    assert order == list(range(len(tabbable))), f"Tab order {order} for {tabbable}"
    unseen = [f["html"] for f in visited if not (f["ring"] and f["inView"])]
    assert not unseen, f"no visible focus on {unseen}"
    for must in ("#answer_0", "#answer_1", 'a[download="characters.wav"]', 'button[value="new-image"]', "#captcha"):
        probe = page.locator(must).get_attribute("data-tab-probe")
        assert probe is not None and int(probe) in order, f"Tab never reaches {must}"
    # The hidden button that makes Enter mean "Continue" is never a Tab stop.
    assert page.locator('.captcha button[value="continue"]').get_attribute("data-tab-probe") is None

    # The audio version and a new image both work from the keyboard alone.
    tab_until(page, 'a[download="characters.wav"]')
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "characters.wav"
    assert Path(download.value.path()).read_bytes()[:4] == b"RIFF"
    before = captcha_text(page, live_server)
    tab_until(page, 'button[value="new-image"]')
    assert submit_with_enter(page).status == 200
    expect(page).to_have_url(f"{live_server.url}{entry}/recovery/challenge#captcha")
    expect(page.locator("#captcha")).to_be_focused()  # the keyboard stays by the new image
    assert captcha_text(page, live_server) != before
