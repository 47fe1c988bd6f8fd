"""A leaver whose account IT turned off in the directory is signed out by the next sync.

The story: a helpdesk agent is signed in to the console and to self-service.
They leave; IT disables their account (or deletes it) in the directory
itself, not by ending their people record in the console. The directory
refuses their password from then on, but the sessions opened before lived
on to their timeout (15 minutes idle, 8 hours in all), and the console one
could still unlock other people's accounts. The directory sync sees the
change; from its next run the leaver's sessions are gone, in both realms,
and the audit trail says the sync ended them. A colleague is not touched.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from connectors.openldap import PERMANENT_LOCK
from lab import SeedAccount, Slapd
from lab.seed import ST_MARY
from sspm.account import sync
from sspm.account.audit import Action
from sspm.infra.store import AuditEvent
from tests.contract import labs
from tests.contract.labs import RoleLab
from tests.flows.test_email import audit_rows
from tests.flows.test_helpdesk import agent, with_probe
from tests.flows.test_outsider_staff import console_open
from tests.flows.test_signin_enroll import is_signed_in
from tests.support import services_of
from tests.support.flows import AppFactory, Visitor, sign_in

#: The sync writes to SSPM's store: these stories run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases

#: How IT turns the account off in the directory (never through SSPM), and the sync run that sees it.
TurnOff = Callable[[RoleLab, str], None]


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probe(build_app(slapd))


def disabled_by_it(lab: RoleLab, dn: str) -> None:
    """ppolicy's administrative lock, as an LDAP administrator sets it; the incremental sync sees it."""
    lab.modify(dn, {"pwdAccountLockedTime": [PERMANENT_LOCK]})
    sync.incremental_sync()


def deleted_by_it(lab: RoleLab, dn: str) -> None:
    """The entry removed; deletions come with the full sync."""
    conn = lab.admin()
    try:
        assert conn.delete(dn), conn.result
    finally:
        conn.unbind()
    sync.full_sync()


def self_service(app: Flask, person: SeedAccount) -> Visitor:
    browser = Visitor(app)
    assert sign_in(browser, person.uid, person.password).status_code == 303
    assert is_signed_in(browser)
    return browser


def ended_by_the_sync(app: Flask) -> list[AuditEvent]:
    return [row for row in audit_rows(app, Action.SESSIONS_ENDED.value) if row.actor_kind == "job"]


@pytest.mark.parametrize("turn_off", [disabled_by_it, deleted_by_it])
def test_a_staff_member_whose_account_it_turned_off_is_signed_out_of_the_console_and_self_service_by_the_sync(
    app: Flask, slapd: Slapd, accounts: dict[str, SeedAccount], turn_off: TurnOff
) -> None:
    """The leaver's console could still unlock accounts after IT disabled them; from the next sync it cannot."""
    john, alice = accounts["normal"], accounts["expiring"]
    console = agent(app, john, "helpdesk", ST_MARY)
    own = self_service(app, john)
    colleague = agent(app, alice, "helpdesk", ST_MARY)
    sync.incremental_sync()  # the copy holds john enabled, as every run before IT acted
    assert console_open(console) and is_signed_in(own) and ended_by_the_sync(app) == []

    found = services_of(app).directory.find_account(john.uid)
    assert found is not None
    lab = labs.openldap_lab(slapd, accounts)
    turn_off(lab, found.dn)

    refused = console.get("/staff/")
    assert refused.status_code == 303 and "/staff/signin" in refused.headers["Location"], "the console is closed"
    assert not is_signed_in(own), "self-service is closed too"
    assert console_open(colleague), "only the leaver's sessions end"
    rows = ended_by_the_sync(app)
    assert [(row.account_id, row.subject, row.outcome) for row in rows] == [(found.id, john.uid, "2")]
    assert rows[0].actor_id == "directory-sync"
