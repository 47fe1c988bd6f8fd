"""Accessibility: axe-core finds nothing, and the keyboard reaches everything.

axe runs on every page and state a user can meet (empty form, each kind of
error, the live meter, success, 404, 429) in English and French, on a
1280 px desktop and a 360 px phone, through both entries (/ and /m). A
failure lists every violation with its rule, help text and elements, so it
can be fixed from the test output alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from lab import SeedAccount
from tests.support.browser import LiveServer

pytestmark = pytest.mark.browser

AXE = Axe()
STRONG = "Lumen-Pebble-Orchard-Zephyr-93"
WEAK = "qwertyuiop"


def submit(page: Page, *, username: str = "", current: str = "", new: str = "", confirm: str = "") -> int:
    """Post the change form as typed; the status of the page that comes back."""
    for field_id, value in (("username", username), ("current", current), ("new", new), ("confirm", confirm)):
        page.locator(f"#{field_id}").fill(value)
    with page.expect_navigation() as navigation:
        page.locator("button[type=submit]").click()
    response = navigation.value
    assert response is not None
    return response.status


def goto(page: Page, path: str) -> int:
    response = page.goto(path)
    assert response is not None
    return response.status


# Each state: how a user gets there, checked, so axe never judges the wrong page.
# They run in this order on one page and one app, each post under its own
# user name: the app allows one attempt per name a minute (to reach the 429).


def home(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert goto(page, entry or "/") == 200


def empty_form(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert goto(page, f"{entry}/change") == 200
    expect(page.locator("#username")).to_be_visible()


def meter_in_use(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    page.locator("#new").fill(STRONG)
    expect(page.locator("#strength-text")).not_to_have_text("")
    expect(page.locator('[data-rule="strength"]')).to_have_class(re.compile(r"\brule-met\b"))


def field_errors(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert goto(page, f"{entry}/change") == 200
    assert submit(page) == 422
    expect(page.locator(".field-error")).to_have_count(4)


def credentials_error(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert (
        submit(page, username=accounts["normal"].uid, current="Not-The-Password-1", new=STRONG, confirm=STRONG) == 422
    )
    expect(page.get_by_role("alert")).to_be_visible()


def new_password_error(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    other = accounts["other"]
    assert submit(page, username=other.uid, current=other.password, new=WEAK, confirm=WEAK) == 422
    expect(page.get_by_role("alert")).to_be_visible()


def success(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert goto(page, f"{entry}/change") == 200
    temporary = accounts["temporary"]
    assert submit(page, username=temporary.uid, current=temporary.password, new=STRONG, confirm=STRONG) == 200
    expect(page).to_have_url(f"{entry}/change/done")
    expect(page.get_by_role("status")).to_contain_text(temporary.display_name)


def not_found(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert goto(page, f"{entry}/no-such-page") == 404


def too_many_attempts(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> None:
    assert goto(page, f"{entry}/change") == 200
    assert submit(page, username="nobody", current="Guess-One-1", new=STRONG, confirm=STRONG) == 422
    assert submit(page, username="nobody", current="Guess-Two-2", new=STRONG, confirm=STRONG) == 429


STATES: dict[str, Callable[[Page, str, dict[str, SeedAccount]], None]] = {
    "home": home,
    "empty form": empty_form,
    "meter in use": meter_in_use,
    "field errors (empty submit)": field_errors,
    "credentials error": credentials_error,
    "new-password error": new_password_error,
    "success": success,
    "404": not_found,
    "429": too_many_attempts,
}


def axe_violations(page: Page) -> list[dict[str, Any]]:
    return list(AXE.run(page).response["violations"])


def describe(violation: dict[str, Any]) -> str:
    targets = ", ".join(" ".join(map(str, node["target"])) for node in violation["nodes"])
    return f"  {violation['id']} [{violation['impact']}] {violation['help']} -> {targets}\n    {violation['helpUrl']}"


def horizontal_overflow(page: Page) -> str | None:
    # Against the screen, not innerWidth, which mobile Chromium widens to fit the content (support/browser.py).
    screen = page.viewport_size
    assert screen is not None
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    width = screen["width"]
    return f"  scrolls sideways: {scroll_width}px of content in {width}px" if scroll_width > width else None


@pytest.mark.parametrize("entry", ["", "/m"], ids=["entry-/", "entry-/m"])
@pytest.mark.parametrize("device", ["desktop", "phone"], ids=["1280", "360"])
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_no_axe_violations_on_any_page(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    server = serve(SSPM_LIMIT_PER_ACCOUNT="1 per minute")
    page = open_page(server, device=device, lang=lang)
    report: list[str] = []
    for state, reach in STATES.items():
        reach(page, entry, accounts)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        problems = [describe(v) for v in axe_violations(page)]
        if device == "phone":
            problems += filter(None, [horizontal_overflow(page)])
        if problems:
            report.append(f"{state} ({page.url}):\n" + "\n".join(problems))
    print("\n".join(report))
    assert not report, "accessibility problems:\n" + "\n".join(report)


# --- Keyboard -----------------------------------------------------------------

#: What a keyboard user must be able to reach, in the order they appear.
INTERACTIVE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
    'select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])'
)

MARK_INTERACTIVE = """selector => {
  const found = [...document.querySelectorAll(selector)].filter(el => el.checkVisibility());
  found.forEach((el, i) => el.setAttribute("data-tab-probe", String(i)));
  return found.map(el => el.outerHTML.slice(0, 80));
}"""

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    probe: el.getAttribute("data-tab-probe"),
    html: el.outerHTML.slice(0, 80),
    ring: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== "none",
    inView: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
      && box.top < window.innerHeight && box.left < window.innerWidth,
  };
}"""


def keyboard_pages(page: Page, entry: str, accounts: dict[str, SeedAccount]) -> dict[str, Callable[[], None]]:
    temporary = accounts["temporary"]

    def form_with_errors() -> None:
        assert goto(page, f"{entry}/change") == 200
        assert submit(page) == 422

    def success_page() -> None:
        assert goto(page, f"{entry}/change") == 200
        assert submit(page, username=temporary.uid, current=temporary.password, new=STRONG, confirm=STRONG) == 200

    return {
        "home": lambda: home(page, entry, accounts),
        "form": lambda: empty_form(page, entry, accounts),
        "form with errors": form_with_errors,
        "success": success_page,
        "404": lambda: not_found(page, entry, accounts),
    }


@pytest.mark.parametrize(("device", "entry"), [("desktop", ""), ("phone", "/m")], ids=["1280-/", "360-/m"])
def test_keyboard_reaches_everything_with_a_visible_focus(
    live_server: LiveServer,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    device: str,
    entry: str,
) -> None:
    page = open_page(live_server, device=device)
    for name, reach in keyboard_pages(page, entry, accounts).items():
        reach()
        interactive = page.evaluate(MARK_INTERACTIVE, INTERACTIVE)
        # A page with problems opens with the focus on their summary, so a
        # screen reader says them first and Tab goes on to its links.
        summary_first = page.evaluate("document.activeElement && document.activeElement.id === 'problems'")
        first = page.evaluate(
            "Array.from(document.querySelectorAll('#problems a')).map(a => +a.dataset.tabProbe)[0] ?? 0"
        )
        if name == "form with errors":
            assert summary_first, "the error summary should have the focus when the page opens"
        start = first if summary_first else 0

        # Tab visits every interactive element once, in page order, each
        # showing where the focus is; from the top the skip link comes first.
        visited: list[dict[str, Any]] = []
        for _ in range(len(interactive) + 1):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if focused is None or (visited and focused["probe"] == visited[0]["probe"]):
                break
            visited.append(focused)
        order = [int(f["probe"]) if f["probe"] is not None else f["html"] for f in visited]
        assert order == list(range(start, len(interactive))), f"{name}: Tab order {order} for {interactive}"
        if not summary_first:
            assert 'class="skip-link"' in visited[0]["html"], f"{name}: the first Tab stop is {visited[0]['html']}"
        unseen = [f["html"] for f in visited if not (f["ring"] and f["inView"])]
        assert not unseen, f"{name}: no visible focus on {unseen}"

        # Past the end, Tab comes back round to the skip link: it takes focus to main.
        if focused is None:
            page.keyboard.press("Tab")
        expect(page.locator(".skip-link")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('main').contains(document.activeElement)"), (
            f"{name}: Tab after the skip link does not land in main"
        )
