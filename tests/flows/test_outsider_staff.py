"""The staff console as an outsider or a curious insider tries it: what a security review found, as stories.

Each story is something tried against a running demo that went wrong,
told the way it was tried, then checked where the truth is (Redis, the
directory, the page's status). Staff sessions are opened as the sign-in
opens them after the second factor (test_helpdesk's probe); the sign-in
itself is tested in test_staff_signin.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from lab import Pki, SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.seed import ST_MARY
from sspm.account import staff
from tests.flows.test_console_roles import start_staff_slapd
from tests.flows.test_helpdesk import OPERATOR, agent, rows, with_probe
from tests.flows.test_people import ADMIN, all_records, employee, submit, text_in_french
from tests.flows.test_realms import staff_handle, staff_key
from tests.support import services_of
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    app_redis,
    csrf_token,
    recover,
    seed_enrolled,
    set_new_password,
)

#: These stories write to SSPM's store: they run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    """The lab's directory with its staff accounts and the place new people's accounts go."""
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probe(build_app(slapd))


def console_open(desk: Visitor) -> bool:
    """Whether this browser's staff session still opens the console home."""
    return desk.get("/staff/").status_code == 200


# -- a password set ends the console session too ------------------------------------------------------------


def changed_by_its_owner(app: Flask, person: SeedAccount) -> None:
    assert Visitor(app).change_password(person.uid, person.password, NEW_PASSWORD).status_code == 303


def reset_by_questions(app: Flask, person: SeedAccount) -> None:
    seed_enrolled(app, person)
    browser = Visitor(app)
    assert recover(browser, "forgot", person.uid, DEMO_ANSWERS).status_code == 303
    assert set_new_password(browser, NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize("password_set", [changed_by_its_owner, reset_by_questions])
def test_a_staff_members_console_session_ends_when_their_password_is_set(
    app: Flask, accounts: dict[str, SeedAccount], password_set: Callable[[Flask, SeedAccount], None]
) -> None:
    """An agent left the console open on a shared PC (or someone took the cookie); fearing the worst,
    they change their password from another machine, or reset it through Forgot Password. Their
    self-service sessions end, as they always did; the console session, the one that can unlock and
    reset other people's accounts, must end with them, not live on until its timeout.
    A colleague's console session is not touched."""
    john, alice = accounts["normal"], accounts["expiring"]
    left_open = agent(app, john, "helpdesk", ST_MARY)
    colleague = agent(app, alice, "helpdesk", ST_MARY)
    handle = staff_handle(left_open)
    assert handle is not None and console_open(left_open) and console_open(colleague)

    password_set(app, john)

    assert not app_redis(app).exists(staff_key(handle)), "the console session is gone from Redis"
    refused = left_open.get("/staff/")
    assert refused.status_code == 303 and "/staff/signin" in refused.headers["Location"]
    assert console_open(colleague), "only that account's sessions end"


# -- hand-edited numbers in links -----------------------------------------------------------------------------

#: Past a signed 64-bit integer, the most SQLite and PostgreSQL hold.
TOO_BIG = "99999999999999999999"
#: A digit to ``isdigit()``, not to ``int()``.
SUPERSCRIPT_TWO = "\u00b2"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/staff/people/employees/{TOO_BIG}", 404),
        (f"/staff/people/clinicians/{TOO_BIG}/edit", 404),
        (f"/staff/people/employees/{TOO_BIG}/end", 404),
        ("/staff/people/employees/\uff11", 404),  # a full-width 1: no second address for record 1
        (f"/staff/people/employees?page={TOO_BIG}", 200),
        (f"/staff/audit?before={TOO_BIG}", 200),
        (f"/staff/audit?before=-{TOO_BIG}", 200),
        (f"/staff/reports/recoveries?after_id={TOO_BIG}", 200),
        (f"/staff/reports/recoveries?after_id={SUPERSCRIPT_TWO}", 200),
    ],
)
def test_a_hand_edited_number_in_a_link_is_not_a_server_error(
    app: Flask, accounts: dict[str, SeedAccount], path: str, status: int
) -> None:
    """A curious admin edits the number in a record's address, a page number or a paging cursor:
    a number too long for the database, or a character that only looks like a digit. The answer
    is the one for a record that does not exist, or the list from its start, never the 500 page
    ("something went wrong on our side, wait a minute") with an error in the log."""
    admin = agent(app, accounts["normal"], "super-admin", None)
    assert admin.get(path).status_code == status


@pytest.mark.parametrize("action", ["reactivate", "setup-link", "end"])
def test_a_button_posted_to_a_record_number_past_the_database_is_no_such_record(
    app: Flask, accounts: dict[str, SeedAccount], action: str
) -> None:
    """The same with a record's buttons, posted by hand with a valid form: nothing to act on, said as such."""
    admin = agent(app, accounts["normal"], "super-admin", None)
    token = csrf_token(admin.get("/staff/people/employees").get_data(as_text=True))
    answer = admin.post(f"/staff/people/employees/{TOO_BIG}/{action}", {"csrf_token": token, "version": "1"})
    assert answer.status_code == 404


# -- a person's full name ----------------------------------------------------------------------------------

#: 30 and 41 characters: each name fits the directory's 64, the full name (72) does not.
GIVEN, FAMILY = "Maria Guadalupe de los Ángeles", "Fernández-Rodríguez de la Torre y Mendoza"
#: The sentence as the catalogue holds it, and as the page says it.
FULL_NAME_TOO_LONG_MSGID = (
    "With the given name, this makes a full name longer than %(max)d characters, the most the directory keeps. "
    "Shorten one of them, for example to the names the person uses every day."
)
FULL_NAME_TOO_LONG = FULL_NAME_TOO_LONG_MSGID % {"max": 64}


def test_a_full_name_too_long_for_the_directory_is_said_at_the_names_not_as_unusual_characters(
    app: Flask, slapd: Slapd
) -> None:
    """An admin adds a new employee whose given and family names each fit the form's 64 characters,
    but whose full name (the directory's cn and displayName, also capped at 64) does not. The page
    said the directory refused the details and to check the names "for unusual characters", which
    they do not have; it must say what is wrong, at the family name, in the page's language, and
    create nothing."""
    admin = agent(app, ADMIN, "admin", ST_MARY)
    fields = employee(given_name=GIVEN, family_name=FAMILY, manager="")
    refused = submit(admin, "/staff/people/employees/new", fields)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert FULL_NAME_TOO_LONG in body
    assert 'id="family_name"' in body and 'aria-invalid="true"' in body
    assert all_records(app) == []
    french = submit(admin, "/staff/people/employees/new?lang=fr", fields)
    assert text_in_french(app, FULL_NAME_TOO_LONG_MSGID) % {"max": 64} in french.get_data(as_text=True)

    fits = submit(admin, "/staff/people/employees/new", employee(given_name="Maria", family_name=FAMILY, manager=""))
    assert fits.status_code == 303, "a full name of 64 or fewer is made as it is"


# -- the role the trail names ----------------------------------------------------------------------------------


def test_the_trail_names_the_role_a_staff_member_holds_when_they_act_not_the_one_they_signed_in_with(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    """John signs in to the console as st-mary's Admin. While he is signed in, a Super Admin demotes
    him to Helpdesk. What he may do follows at once (grants are read on every request); the audit
    trail must follow too: his next search is a Helpdesk agent's, and a row saying an Admin did it
    would mislead whoever reads the trail (or its export) later."""
    john = accounts["normal"]
    desk = agent(app, john, "admin", ST_MARY)
    the = services_of(app)
    account = the.directory.find_account(john.uid)
    assert account is not None
    assert staff.revoke(the.store, OPERATOR, account=account, role="admin", organization=ST_MARY).value == "revoked"
    assert staff.grant(the.store, OPERATOR, account=account, role="helpdesk", organization=ST_MARY).value == "granted"

    assert desk.get("/staff/helpdesk?q=klee").status_code == 200
    (searched,) = rows(app, "helpdesk_search")
    assert searched.actor_role == "helpdesk"
