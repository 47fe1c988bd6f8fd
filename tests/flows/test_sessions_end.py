"""A password set, or an account unlocked, ends every session of that account.

The story each time: the owner is signed in on two machines (a ward PC and
a phone, say), and a colleague is signed in with their own account. Then,
from a third browser, the password is changed, reset by the questions or by
an emailed link, or the account is unlocked by the questions. The owner's
two browsers are signed out at their next request; the colleague is not.
Whoever did it learns it the same way the owner would: the old sessions are
gone from Redis, and the audit trail says how many were ended.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from tests.flows.test_email import EMAIL_ENV, audit_rows, one_link_for, open_link, set_password_by_link
from tests.flows.test_signin_enroll import is_signed_in, session_key
from tests.support import Backing
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    account_id,
    any_csrf_token,
    app_redis,
    lock_by_wrong_binds,
    recover,
    seed_enrolled,
    set_new_password,
    sign_in,
    verdict,
)

#: These stories write to SSPM's store: they run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases

Path = Callable[[Flask, Directory, Backing, SeedAccount], Visitor]


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


def signed_in(app: Flask, person: SeedAccount) -> Visitor:
    browser = Visitor(app)
    assert sign_in(browser, person.uid, person.password).status_code == 303
    assert is_signed_in(browser)
    return browser


# -- the four ways a password gets set (or an account unlocked) from another browser -----------


def changed(app: Flask, directory: Directory, backing: Backing, person: SeedAccount) -> Visitor:
    browser = Visitor(app)
    assert browser.change_password(person.uid, person.password, NEW_PASSWORD).status_code == 303
    return browser


def reset_by_questions(app: Flask, directory: Directory, backing: Backing, person: SeedAccount) -> Visitor:
    browser = Visitor(app)
    assert recover(browser, "forgot", person.uid, DEMO_ANSWERS).status_code == 303
    assert set_new_password(browser, NEW_PASSWORD).status_code == 303
    return browser


def reset_by_link(app: Flask, directory: Directory, backing: Backing, person: SeedAccount) -> Visitor:
    browser = Visitor(app)
    assert open_link(browser, one_link_for(app, browser, backing.mailbox, person)).status_code == 200
    assert set_password_by_link(browser, NEW_PASSWORD).status_code == 303
    return browser


def unlocked_by_questions(app: Flask, directory: Directory, backing: Backing, person: SeedAccount) -> Visitor:
    lock_by_wrong_binds(directory, person.uid)
    browser = Visitor(app)
    assert recover(browser, "unlock", person.uid, DEMO_ANSWERS).status_code == 303
    return browser


@pytest.mark.parametrize(
    ("path", "new_password"),
    [
        pytest.param(changed, True, id="changed at /change"),
        pytest.param(reset_by_questions, True, id="reset by security questions"),
        pytest.param(reset_by_link, True, id="reset by an emailed link"),
        pytest.param(unlocked_by_questions, False, id="unlocked by security questions"),
    ],
)
def test_every_other_session_of_the_account_ends_and_no_one_elses(
    app: Flask,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    path: Path,
    new_password: bool,
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, john)
    ward_pc, phone = signed_in(app, john), signed_in(app, john)
    johns_sessions = [session_key(ward_pc), session_key(phone)]
    colleague = signed_in(app, laura)
    redis = app_redis(app)
    assert all(redis.exists(key) for key in johns_sessions)

    elsewhere = path(app, directory, backing, john)

    assert not is_signed_in(ward_pc), "the ward PC is signed out at its next request"
    assert not is_signed_in(phone), "so is the phone"
    assert not any(redis.exists(key) for key in johns_sessions), "the records are gone, not just hidden"
    assert is_signed_in(colleague), "another account's session is not touched"
    if path is changed:
        # Changing the password signs the changer in afresh, in that browser only.
        assert is_signed_in(elsewhere)
    if new_password:
        assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    ended = [row for row in audit_rows(app, "sessions_ended") if row.account_id == account_id(app, john.uid)]
    assert [row.outcome for row in ended] == ["2"], "the audit trail says how many sessions ended"


def test_signing_out_takes_the_session_off_the_accounts_list_too(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    """What is found by account must not outlive what it points at."""
    john = accounts["normal"]
    browser = signed_in(app, john)
    redis = app_redis(app)
    (listed,) = [key for key in redis.scan_iter("sspm:*") if redis.type(key) == b"set"]
    assert redis.scard(listed) == 1
    assert redis.ttl(listed) > 0, "the list expires like what it lists"
    assert redis.ttl(listed) >= redis.ttl(session_key(browser))

    page = browser.get("/enroll")
    assert browser.post("/signout", {"csrf_token": any_csrf_token(page.get_data(as_text=True))}).status_code == 303

    assert not redis.exists(listed)
