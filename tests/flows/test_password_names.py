"""A new password must not be the user's own name, however it is spelled.

The server folds accents and compatibility forms before it compares, so
"Eloise" is Éloïse's name too. The page's meter is told the account's names
(the very list the server checks) only once the user has proven the account
is theirs: after the questions, from an emailed link, or on Change Password
after the old password was accepted; never to someone who only typed a name.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from connectors.directory import Account, Directory, Outcome
from lab import SeedAccount
from lab.enrollment import DEMO_ANSWERS
from sspm.account import tokens
from sspm.email.jobs import RESET_PURPOSE
from sspm.policy.passwords import user_inputs
from tests.support import services_of
from tests.support.flows import Visitor, recover, says_reason, seed_enrolled, set_new_password, verdict

_NAMES = re.compile(r"data-names='([^']*)'")
NOT_A_NAME = "Lumen-Pebble-Orchard-Zephyr-93"

#: Éloïse Côté's names, as people type them without a French keyboard, or with
#: a phone's fullwidth or decomposed forms.
ELOISE_SPELLINGS = [
    "Eloise-Harbour-Quartz-19",
    "Quartz-ELOISE-Harbour-19",
    "Harbour-Cote-Quartz-19",
    "ｅｌｏｉｓｅ-Harbour-Quartz",
    "Harbour-Co\u0302te\u0301-Quartz",
]


def meter_names(page: TestResponse) -> list[str] | None:
    """The names the page gives its strength meter, or None if it gives none."""
    found = _NAMES.search(page.get_data(as_text=True))
    return json.loads(html.unescape(found.group(1))) if found else None


def account_of(app: Flask, person: SeedAccount) -> Account:
    account = services_of(app).directory.find_account(person.uid)
    assert account is not None
    return account


@pytest.mark.parametrize("password", ELOISE_SPELLINGS)
def test_eloise_cannot_reset_to_her_name_without_its_accents(
    app: Flask, visitor: Visitor, accounts: dict[str, SeedAccount], directory: Directory, password: str
) -> None:
    eloise = accounts["nonascii"]
    seed_enrolled(app, eloise)
    assert recover(visitor, "forgot", eloise.uid, DEMO_ANSWERS).status_code == 303

    refused = set_new_password(visitor, password)

    assert refused.status_code == 422
    assert says_reason(refused.get_data(as_text=True), app, "contains_name")
    assert verdict(directory, eloise.uid, password) is Outcome.BAD_CREDENTIALS
    assert verdict(directory, eloise.uid, eloise.password) is Outcome.OK


def test_eloise_cannot_change_to_her_name_without_its_accents(
    app: Flask, visitor: Visitor, accounts: dict[str, SeedAccount], directory: Directory
) -> None:
    eloise = accounts["nonascii"]

    refused = visitor.change_password(eloise.uid, eloise.password, "Eloise-Harbour-Quartz-19")

    assert refused.status_code == 422
    assert says_reason(refused.get_data(as_text=True), app, "contains_name")
    assert verdict(directory, eloise.uid, eloise.password) is Outcome.OK


def test_change_password_tells_the_meter_the_names_only_after_the_old_password_is_proven(
    app: Flask, visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    names = user_inputs(account_of(app, laura))
    assert {"lsmith", "Laura", "Smith"} <= set(names)

    assert meter_names(visitor.get("/change")) is None
    wrong = visitor.change_password(laura.uid, "Not-Her-Password-1", "Laura-Harbour-Quartz-19")
    assert wrong.status_code == 422
    assert meter_names(wrong) is None, "a wrong password must not reveal whose names these are"
    assert "Smith" not in wrong.get_data(as_text=True)

    proven = visitor.change_password(laura.uid, laura.password, "Laura-Harbour-Quartz-19")
    assert proven.status_code == 422
    assert says_reason(proven.get_data(as_text=True), app, "contains_name")
    assert meter_names(proven) == names


def test_the_reset_pages_tell_the_meter_the_names_the_server_checks(
    app: Flask, visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    account = account_of(app, laura)
    seed_enrolled(app, laura)
    assert recover(visitor, "forgot", laura.uid, DEMO_ANSWERS).status_code == 303
    assert meter_names(visitor.get("/recovery/new-password")) == user_inputs(account)

    token = tokens.issue(services_of(app).store, account.id, RESET_PURPOSE, timedelta(minutes=30))
    by_link = Visitor(app)
    opened = by_link.get(f"/reset?token={token}")
    form = by_link.follow(opened) if opened.status_code in (302, 303) else opened
    assert form.status_code == 200, form.status
    assert meter_names(form) == user_inputs(account)
    refused = by_link.submit("/reset", {"new": "lsmith2024", "confirm": "lsmith2024"})
    assert refused.status_code == 422
    assert says_reason(refused.get_data(as_text=True), app, "contains_name")
    assert meter_names(refused) == user_inputs(account)


def test_the_meter_is_not_told_names_on_a_page_nobody_proved(app: Flask, visitor: Visitor) -> None:
    for path in ("/", "/change", "/forgot", "/unlock", "/recovery/new-password", "/reset"):
        assert meter_names(visitor.get(path)) is None, path
