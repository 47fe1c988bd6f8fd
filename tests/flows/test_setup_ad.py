"""The new user's set-up path on Active Directory (a Samba AD DC of the test's own): the core story only.

The account waits disabled, with no password; the emailed link opens the
form; the chosen password is set by the provisioning account and the
account enabled; the user signs in with it. Slow (a DC per test): the
refusals and attacks are told on slapd (test_setup.py), which the same
pages and use case serve.
"""

from __future__ import annotations

from flask import Flask

from connectors.directory import Outcome
from lab import samba
from sspm.account import audit
from tests.flows.test_setup import (
    LOGIN,
    NURSE,
    PASSWORD,
    READY,
    SETUP_ENV,
    WEAK,
    choose,
    last_link,
    new_user,
    open_link,
    rows,
    run_jobs,
    send_link,
    usable,
)
from tests.support import Backing, services_of
from tests.support.flows import AppFactory, Visitor, says, sign_in


def test_a_new_user_sets_up_an_active_directory_account(
    build_app: AppFactory, samba_dc: samba.SambaDC, backing: Backing
) -> None:
    app: Flask = build_app(samba_dc, **SETUP_ENV)
    account = new_user(app)
    assert account.disabled  # awaiting set-up reads as disabled
    assert not usable(app)
    assert sign_in(Visitor(app), LOGIN, PASSWORD).status_code == 422

    send_link(app, account)
    assert backing.mailbox.messages[-1]["To"] == NURSE.email
    visitor = Visitor(app)
    form = open_link(visitor, last_link(backing))
    assert form.status_code == 200 and says(form, LOGIN)
    assert choose(visitor, form, WEAK).status_code == 422
    ready = visitor.follow(choose(visitor, form, PASSWORD))
    assert ready.status_code == 200 and says(ready, READY)

    found = services_of(app).directory.get_account(account.id)
    assert found is not None and not found.disabled
    assert not services_of(app).directory.status(found).must_change
    assert usable(app)
    assert [row.outcome for row in rows(app, audit.Action.SETUP)] == ["ok"]
    run_jobs(app)
    assert backing.mailbox.messages[-1]["Subject"] == READY
    assert sign_in(Visitor(app), LOGIN, PASSWORD).status_code == 303
    assert services_of(app).directory.verify_password(LOGIN, PASSWORD)[1].outcome is Outcome.OK
