"""The live meter tells the truth: what it says is what the server will decide.

A user trusts the ticks and the bar. These stories type passwords the way
people do and compare the page, at every key, with the server's own rules
(sspm.passwords): the words under the bar name the bar's level; on the
reset pages the meter knows the user's names, accents and all; on Change
Password it never ticks a rule it cannot check before the old password is
proven, and knows the names once it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from connectors.directory import Account
from lab import SeedAccount
from lab.enrollment import DEMO_ANSWERS
from sspm.account import tokens
from sspm.email.jobs import RESET_PURPOSE
from sspm.policy.passwords import contains_name, strength, user_inputs
from tests.support import services_of
from tests.support.browser import LiveServer, captcha_text, directory_of, enroll_seeded, question_ids, refusal

pytestmark = pytest.mark.browser

STRONG = "Lumen-Pebble-Orchard-Zephyr-93"
LEVELS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"]

#: What people type, against each rule both sides know: names with and without
#: accents, in capitals, fullwidth or decomposed; lengths that differ when
#: counted in UTF-16 units rather than characters; weak and strong ones.
CANDIDATES = [
    "lsmith2024",
    "Laura-Harbour-Quartz-19",
    "Quartz-SMITH-Harbour",
    "ｌｓｍｉｔｈ-Lantern-Orbit",
    "Eloise-Harbour-Quartz-19",
    "Harbour-COTE-Quartz",
    "Harbour-Co\u0302te\u0301-Quartz",
    "ÉLOÏSE-Lantern-Orbit",
    "qwertyuiop",
    "Summer2024!",
    "🔒🔑🔒🔑🔒🔑🔒",
    "🔒🔑🔒🔑🔒🔑🔒🔑",
    "😀😁😂😃😄😅😆😇",
    "htimsl-arual-Quartz",
    "L4ura-5m1th-Quartz",
    "Łódź-Kraków-Ÿvonne-22",
    STRONG,
    "Copper-Meadow-Lantern-17",
]

READ_METER = """() => {
  const state = rule => (document.querySelector(`[data-rule="${rule}"]`) || {}).dataset?.state || null;
  return {
    score: document.querySelector(".meter-fill").dataset.score,
    text: document.getElementById("strength-text").textContent,
    length: state("length"), name: state("name"), strength: state("strength"),
  };
}"""


def meter(page: Page) -> dict[str, Any]:
    """What the meter shows right now, read in one go."""
    return dict(page.evaluate(READ_METER))


def rule(page: Page, name: str) -> Locator:
    return page.locator(f'[data-rule="{name}"]')


def account_of(server: LiveServer, person: SeedAccount) -> Account:
    with directory_of(server) as directory:
        account = directory.find_account(person.uid)
    assert account is not None
    return account


def reach_reset_page(page: Page, server: LiveServer, person: SeedAccount, way: str) -> None:
    """Get to "Choose a new password" as this person would: by an emailed link, or by the questions."""
    if way == "emailed link":
        account = account_of(server, person)
        token = tokens.issue(services_of(server.app).store, account.id, RESET_PURPOSE, timedelta(minutes=30))
        page.goto(f"/reset?token={token}")
    else:
        enroll_seeded(server, person.uid)
        page.goto("/forgot")
        page.locator("#username").fill(person.uid)
        page.locator("#captcha").fill(captcha_text(page, server))
        with page.expect_navigation():
            page.locator("#captcha").press("Enter")
        by_text = question_ids(server)
        for label in page.locator('label[for^="answer_"]').all():
            target = label.get_attribute("for")
            page.locator(f"#{target}").fill(DEMO_ANSWERS[by_text[label.inner_text()]])
        page.locator("#captcha").fill(captcha_text(page, server))
        with page.expect_navigation():
            page.locator("#captcha").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    expect(page.locator("#strength")).to_be_visible()


def test_the_words_under_the_bar_name_its_level_at_every_key(
    live_server: LiveServer, open_page: Callable[..., Page]
) -> None:
    page = open_page(live_server)
    # The page's timers run only when this story says: a pause is a pause, and a
    # text that waits for one shows up late for sure, not by chance.
    page.clock.install()
    page.goto("/change")
    page.locator("#new").focus()
    page.keyboard.type(STRONG[0])
    page.clock.run_for(2000)  # the user stops to think

    seen = []
    for key in STRONG[1:]:
        page.keyboard.type(key)
        seen.append(meter(page))
    page.keyboard.press("Tab")
    expect(page.locator("#confirm")).to_be_focused()
    for key in STRONG:
        page.keyboard.type(key)
        seen.append(meter(page))

    for shown in seen:
        assert shown["text"] == f"Strength: {LEVELS[int(shown['score'])]}", shown
    assert seen[-1]["score"] == "4", "a strong password fills the bar"


@pytest.mark.parametrize("way", ["emailed link", "security questions"])
def test_a_reset_page_knows_the_users_names_as_the_server_does(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount], way: str
) -> None:
    laura = accounts["other"]
    names = user_inputs(account_of(live_server, laura))
    page = open_page(live_server)
    reach_reset_page(page, live_server, laura, way)

    page.locator("#new").focus()
    page.keyboard.type("lsmith2024")

    expect(rule(page, "name")).to_have_attribute("data-state", "unmet")
    expect(rule(page, "strength")).to_have_attribute("data-state", "unmet")
    expect(page.locator("#strength-text")).to_have_text(f"Strength: {LEVELS[strength('lsmith2024', names)]}")
    page.keyboard.press("Tab")
    page.keyboard.type("lsmith2024")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(refusal(live_server, "en", "contains_name"))


@pytest.mark.parametrize("person", ["other", "nonascii"])
def test_the_meter_and_the_server_agree_on_every_rule_they_both_know(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount], person: str
) -> None:
    someone = accounts[person]
    names = user_inputs(account_of(live_server, someone))
    rules = services_of(live_server.app).directory.policy()
    min_length, min_strength = max(rules.min_length, 8), live_server.settings.min_strength
    page = open_page(live_server)
    reach_reset_page(page, live_server, someone, "emailed link")

    for password in CANDIDATES:
        page.locator("#new").fill(password)
        shown = meter(page)
        server = {
            "length": "met" if len(password) >= min_length else "unmet",
            "name": "unmet" if contains_name(password, names) else "met",
            "strength": "met" if strength(password, names) >= min_strength else "unmet",
        }
        assert {k: shown[k] for k in server} == server, password
        assert shown["score"] == str(strength(password, names)), password


def test_change_password_checks_the_names_once_the_old_password_is_proven(
    live_server: LiveServer, open_page: Callable[..., Page], accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    page = open_page(live_server)
    page.goto("/change")
    page.locator("#username").fill(laura.uid)
    page.locator("#current").fill(laura.password)
    page.locator("#new").fill("Laura-Harbour-Quartz-19")

    # Before the old password is proven the page cannot know her given name: no tick.
    expect(rule(page, "name")).to_have_attribute("data-state", "pending")
    expect(rule(page, "name")).not_to_have_class(re.compile(r"\brule-met\b"))
    expect(rule(page, "name")).to_contain_text("checked when you send the form")
    page.locator("#new").fill("lsmith-Harbour-Quartz")
    expect(rule(page, "name")).to_have_attribute("data-state", "unmet")

    page.locator("#new").fill("Laura-Harbour-Quartz-19")
    page.locator("#confirm").fill("Laura-Harbour-Quartz-19")
    with page.expect_navigation():
        page.locator("#confirm").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(refusal(live_server, "en", "contains_name"))
    names = json.loads(page.locator("#strength").get_attribute("data-names") or "null")
    assert names == user_inputs(account_of(live_server, laura))

    # Now it knows: her given name and surname are refused as the server refuses them.
    for password, state in (("Laura-Harbour-Quartz-19", "unmet"), ("Quartz-SMITH-Harbour", "unmet"), (STRONG, "met")):
        page.locator("#new").fill(password)
        expect(rule(page, "name")).to_have_attribute("data-state", state)
