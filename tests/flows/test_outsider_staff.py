"""The staff console as an outsider or a curious insider tries it: what a security review found, as stories.

Each story is something tried against a running demo that went wrong,
told the way it was tried, then checked where the truth is (Redis, the
directory, the page's status). Staff sessions are opened as the sign-in
opens them after the second factor (test_helpdesk's probe); the sign-in
itself is tested in test_staff_signin.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.seed import ST_MARY
from tests.flows.test_helpdesk import agent, with_probe
from tests.flows.test_realms import staff_handle, staff_key
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    app_redis,
    recover,
    seed_enrolled,
    set_new_password,
)

#: These stories write to SSPM's store: they run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases


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
