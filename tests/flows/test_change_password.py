"""Change Password, as people use it: through the pages, against the real directory.

Every story ends by asking the directory itself what is true now, because
the page saying "done" is only worth something if the directory agrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from tests.support.flows import NEW_PASSWORD, Visitor, reason_in, says, text_in, without_token

#: These stories write to SSPM's store: they run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases

SUCCESS_TITLE = "Your password has been changed"


def verdict(directory: Directory, login: str, password: str) -> Outcome:
    return directory.verify_password(login, password)[1].outcome


def echoed_username(html: str) -> str | None:
    found = re.search(r'<input[^>]*name="username"[^>]*value="([^"]*)"', html)
    return found.group(1) if found else None


def shows_no_password(visitor: Visitor, *passwords: str) -> bool:
    bodies = [page.get_data(as_text=True) for page in visitor.pages]
    return not any(secret in body for secret in passwords for body in bodies)


# -- the three ways in, each ending at "done" --------------------------------------------


@pytest.mark.parametrize(
    "state",
    ["temporary", "expired", "normal", "expiring", "nonascii"],
    ids=[
        "a nurse with a temporary password",
        "a doctor whose password expired",
        "a clerk with a current password",
        "someone warned that the password expires soon",
        "someone with a non-ASCII user name",
    ],
)
def test_a_user_changes_the_password_and_can_use_only_the_new_one(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount], state: str
) -> None:
    person = accounts[state]

    sent = visitor.change_password(person.uid, person.password, NEW_PASSWORD)

    assert sent.status_code == 303
    assert sent.headers["Location"].endswith("/change/done")
    done = visitor.follow(sent)
    assert done.status_code == 200
    assert says(done, SUCCESS_TITLE)
    assert says(done, person.display_name)
    assert verdict(directory, person.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, person.uid, person.password) is Outcome.BAD_CREDENTIALS
    assert shows_no_password(visitor, person.password, NEW_PASSWORD)


def test_the_done_page_is_shown_once_and_a_reload_goes_back_to_the_form(
    visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    done = visitor.follow(visitor.change_password(john.uid, john.password, NEW_PASSWORD))
    assert says(done, SUCCESS_TITLE)

    again = visitor.get("/change/done")

    assert again.status_code == 302
    assert again.headers["Location"].endswith("/change")


def test_nobody_reaches_the_done_page_without_changing_a_password(visitor: Visitor) -> None:
    page = visitor.get("/change/done")
    assert page.status_code == 302
    assert not says(page, SUCCESS_TITLE)


# -- refusals: a plain sentence, 422, and the directory unchanged -------------------------------


@dataclass(frozen=True)
class Refusal:
    story: str
    state: str | None  # whose account; None for a user name nobody has
    current: str | None  # None: the account's own password
    new: str
    confirm: str | None  # None: the same as new
    reason: str
    #: What the directory says to the account's own password afterwards.
    still: Outcome | None = Outcome.OK


REFUSALS = [
    Refusal("a wrong current password", "normal", "Not-My-Password-1", NEW_PASSWORD, None, "bad_credentials"),
    Refusal("a user name nobody has", None, "Not-My-Password-1", NEW_PASSWORD, None, "bad_credentials", None),
    # Locked and disabled read like a wrong password: the directory says "locked" without
    # checking the password, so anything more specific would reveal that the account exists.
    Refusal("a locked account", "locked", None, NEW_PASSWORD, None, "bad_credentials", Outcome.LOCKED),
    Refusal("a disabled account", "disabled", None, NEW_PASSWORD, None, "bad_credentials", Outcome.DISABLED),
    Refusal("a new password that is too short", "normal", None, "Ab1-xyz", None, "too_short"),
    Refusal("a new password that is too easy to guess", "normal", None, "password123", None, "too_weak"),
    Refusal("a new password with the person's name", "normal", None, "Smith-Harbour-Quiet-9", None, "contains_name"),
    Refusal("a new password that is the current one", "normal", None, "Winter-Harbour-42", None, "same_as_old"),
    Refusal("two new passwords that differ", "normal", None, NEW_PASSWORD, "Orchard-Kettle-Lantern-59", "mismatch"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: r.story)
def test_a_refused_change_says_why_in_plain_words_and_changes_nothing(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount], refusal: Refusal
) -> None:
    person = accounts[refusal.state] if refusal.state else None
    username = person.uid if person else "nobody-here"
    current = refusal.current or (person.password if person else "")

    page = visitor.change_password(username, current, refusal.new, refusal.confirm)

    assert page.status_code == 422
    assert says(page, reason_in(visitor.app, refusal.reason))
    assert not says(page, SUCCESS_TITLE)
    # The user name stays in the form; no password ever comes back.
    assert echoed_username(page.get_data(as_text=True)) == username
    assert shows_no_password(visitor, current, refusal.new, refusal.confirm or refusal.new)
    if person is not None:
        assert verdict(directory, person.uid, person.password) is refusal.still
        if refusal.new != person.password:
            assert not directory.verify_password(person.uid, refusal.new)[1].password_proven


def test_a_password_used_recently_is_refused_as_in_history(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    assert visitor.change_password(john.uid, john.password, NEW_PASSWORD).status_code == 303

    back = visitor.change_password(john.uid, NEW_PASSWORD, john.password)

    assert back.status_code == 422
    assert says(back, reason_in(visitor.app, "in_history"))
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_an_unknown_user_name_reads_exactly_like_a_wrong_password(
    visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    # Same length as "jsmith", so the echoed name does not change the length.
    wrong = visitor.change_password(john.uid, "Not-My-Password-1", NEW_PASSWORD)
    unknown = visitor.change_password("jsmyth", "Not-My-Password-1", NEW_PASSWORD)

    assert wrong.status_code == unknown.status_code == 422
    assert says(unknown, reason_in(visitor.app, "bad_credentials"))
    assert wrong.headers["Content-Type"] == unknown.headers["Content-Type"]
    assert wrong.headers["Content-Length"] == unknown.headers["Content-Length"]
    assert without_token(wrong.get_data(as_text=True)).replace('value="jsmith"', 'value="NAME"') == without_token(
        unknown.get_data(as_text=True)
    ).replace('value="jsmyth"', 'value="NAME"')


def test_a_user_who_typed_the_name_in_capitals_still_changes_the_password(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    sent = visitor.change_password("  JSmith ", john.password, NEW_PASSWORD)
    assert sent.status_code == 303
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


# -- in French ------------------------------------------------------------------------------


def test_a_french_speaker_chooses_french_once_and_the_pages_stay_french(
    visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    # Otherwise every French assertion below would pass on English text.
    assert reason_in(visitor.app, "bad_credentials", "fr") != reason_in(visitor.app, "bad_credentials"), (
        "the French catalogue is not compiled: pybabel compile -d sspm/translations"
    )
    page = visitor.get("/change?lang=fr")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.get_data(as_text=True)
    assert says(page, text_in(visitor.app, "Change your password", "fr"))

    # No ?lang= from here on: the choice is remembered.
    john = accounts["normal"]
    refused = visitor.change_password(john.uid, "Not-My-Password-1", NEW_PASSWORD)
    assert '<html lang="fr">' in refused.get_data(as_text=True)
    assert says(refused, reason_in(visitor.app, "bad_credentials", "fr"))

    done = visitor.follow(visitor.change_password(john.uid, john.password, NEW_PASSWORD))
    assert '<html lang="fr">' in done.get_data(as_text=True)
    assert says(done, text_in(visitor.app, SUCCESS_TITLE, "fr"))


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: r.story)
def test_a_french_speaker_is_told_why_in_french(
    visitor: Visitor, accounts: dict[str, SeedAccount], refusal: Refusal
) -> None:
    person = accounts[refusal.state] if refusal.state else None
    visitor.get("/change?lang=fr")

    page = visitor.change_password(
        person.uid if person else "nobody-here",
        refusal.current or (person.password if person else ""),
        refusal.new,
        refusal.confirm,
    )

    assert page.status_code == 422
    assert '<html lang="fr">' in page.get_data(as_text=True)
    assert says(page, reason_in(visitor.app, refusal.reason, "fr"))


def test_a_browser_that_asks_for_french_gets_french_without_choosing(visitor: Visitor) -> None:
    page = visitor.get("/change", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.get_data(as_text=True)


# -- the phone entry --------------------------------------------------------------------------


def test_the_phone_entry_serves_the_same_form_and_stays_on_the_phone_entry(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    form = visitor.get("/m/change")
    assert form.status_code == 200
    assert 'action="/m/change"' in form.get_data(as_text=True)
    assert 'name="username"' in form.get_data(as_text=True)

    nurse = accounts["temporary"]
    sent = visitor.change_password(nurse.uid, nurse.password, NEW_PASSWORD, entry="/m/change")

    assert sent.status_code == 303
    assert sent.headers["Location"].endswith("/m/change/done")
    done = visitor.follow(sent)
    assert done.status_code == 200
    assert says(done, SUCCESS_TITLE)
    assert verdict(directory, nurse.uid, NEW_PASSWORD) is Outcome.OK


def test_a_refusal_on_the_phone_entry_keeps_the_user_on_it(visitor: Visitor, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    page = visitor.change_password(john.uid, "Not-My-Password-1", NEW_PASSWORD, entry="/m/change")
    assert page.status_code == 422
    assert 'action="/m/change"' in page.get_data(as_text=True)
    assert says(page, reason_in(visitor.app, "bad_credentials"))


# -- when the directory is away ----------------------------------------------------------------


def test_when_the_directory_is_down_the_user_is_told_to_wait_and_nothing_claims_success(
    app: Flask, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    visitor = Visitor(app)
    john = accounts["normal"]
    token_page = visitor.get("/change")
    assert token_page.status_code == 200
    slapd.stop()

    page = visitor.submit(
        "/change",
        {"username": john.uid, "current": john.password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )

    assert page.status_code == 503
    assert says(page, reason_in(app, "unavailable"))
    assert not says(page, SUCCESS_TITLE)
    assert "Location" not in page.headers
    assert shows_no_password(visitor, john.password, NEW_PASSWORD)
