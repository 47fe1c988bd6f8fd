"""An unlock or a reset the directory froze on: what the user, or the agent, is told.

Found by freezing slapd (SIGSTOP: a stalled disk, a paused VM) just as the
write reached it, on the paths test_outsider_failures.py did not cover:
Unlock Account by the questions, and the helpdesk's unlock and reset. The
request timed out, the page said "nothing was changed, try again", and
slapd applied the write when it woke. A user told so waits out a lock that
is gone; an agent tells a caller their password is the old one when it is
now a temporary one nobody wrote down. As for Change Password, the page
must say it cannot tell, and the trail must record it as unconfirmed.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from flask import Flask

from connectors.directory import Directory, DirectoryUnavailable, Outcome
from connectors.openldap import OpenLdapDirectory
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from tests.flows.test_frozen_directory import wait_until
from tests.flows.test_helpdesk import act, agent, rows, verify_by_email, with_probe
from tests.flows.test_outsider_failures import answers
from tests.support import Backing, services_of
from tests.support.flows import (
    AppFactory,
    Visitor,
    account_id,
    lock_by_wrong_binds,
    reason_in,
    recover,
    says,
    seed_enrolled,
    verdict,
)
from tests.support.flows import (
    audit_rows as all_audit_rows,
)

FROZEN = {"LDAP_TIMEOUT": "1", "LDAP_RETRY_AFTER": "1"}


def freeze_as_it_writes(monkeypatch: pytest.MonkeyPatch, slapd: Slapd, method: str) -> None:
    """slapd is SIGSTOPped inside the connector's ``method``, once it has read the account and before it writes.

    Both the unlock and the reset read the account's standing last (are
    they disabled?), then send the write: freezing as that read returns
    makes the write the request slapd holds and applies when it wakes (the
    test sends SIGCONT). Only the read inside ``method`` freezes; the
    lockout read before it (for the page) does not.
    """
    real_method = getattr(OpenLdapDirectory, method)
    real_status = OpenLdapDirectory.status
    inside: list[bool] = []

    def status(self: OpenLdapDirectory, account: Any) -> Any:
        standing = real_status(self, account)
        if inside:
            slapd.process.send_signal(signal.SIGSTOP)
        return standing

    def writing(*args: Any, **kwargs: Any) -> Any:
        inside.append(True)
        try:
            return real_method(*args, **kwargs)
        finally:
            inside.clear()

    monkeypatch.setattr(OpenLdapDirectory, "status", status)
    monkeypatch.setattr(OpenLdapDirectory, method, writing)


def unlocked(directory: Directory, login: str, password: str) -> bool:
    """Whether the account's own password signs in again, once the directory answers (until then, no)."""
    return answers(directory, login, password)


def told_it_cannot_tell(app: Flask, page: Any, lang: str) -> None:
    assert page.status_code == 503, page.status
    assert says(page, reason_in(app, "unconfirmed", lang))
    assert not says(page, reason_in(app, "unavailable", lang)), "never 'nothing was changed'"


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_unlock_by_the_questions_on_a_directory_that_froze_as_the_unlock_reached_it(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
) -> None:
    """John locked himself out, answered his questions, and the directory froze as the unlock reached it.

    It lifts the lock when it wakes. Told "nothing was changed", John
    would wait out a lock that is gone, or answer his questions again for
    nothing; the page must say it cannot tell, and the trail unconfirmed.
    """
    app = build_app(slapd, **FROZEN)
    john = accounts["normal"]
    seed_enrolled(app, john)
    lock_by_wrong_binds(directory, john.uid)
    assert verdict(directory, john.uid, john.password) is Outcome.LOCKED
    visitor = Visitor(app)
    visitor.get(f"/?lang={lang}")
    freeze_as_it_writes(monkeypatch, slapd, "unlock")
    try:
        page = recover(visitor, "unlock", john.uid, DEMO_ANSWERS)
    finally:
        slapd.process.send_signal(signal.SIGCONT)
    monkeypatch.undo()

    told_it_cannot_tell(app, page, lang)
    # As the page warns: once the directory is back, the lock is gone.
    wait_until(lambda: unlocked(directory, john.uid, john.password))
    outcomes = [row.outcome for row in all_audit_rows(app) if row.action == "unlock"]
    assert outcomes == ["unconfirmed"], "the trail says what is not known"


@pytest.fixture
def desk_app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probe(build_app(slapd, **FROZEN))


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_helpdesk_unlock_the_directory_froze_on_is_not_said_to_have_changed_nothing(
    desk_app: Flask,
    slapd: Slapd,
    directory: Directory,
    backing: Backing,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
) -> None:
    """An agent unlocks Kevin for him on the phone; the directory freezes as the unlock reaches it, then lifts it.

    Told "nothing was changed", the agent would tell Kevin he is still
    locked out: the page must say it cannot tell, and the trail unconfirmed.
    """
    kevin, alice = accounts["locked"], accounts["expiring"]
    desk = agent(desk_app, alice)
    desk.get(f"/staff/helpdesk?lang={lang}")
    verify_by_email(desk_app, backing, desk, kevin)
    kevin_id = account_id(desk_app, kevin.uid)
    freeze_as_it_writes(monkeypatch, slapd, "unlock")
    try:
        page = act(desk, kevin_id, "unlock")
    finally:
        slapd.process.send_signal(signal.SIGCONT)
    monkeypatch.undo()

    told_it_cannot_tell(desk_app, page, lang)
    wait_until(lambda: unlocked(directory, kevin.uid, kevin.password))
    assert [row.outcome for row in rows(desk_app, "helpdesk_unlock")] == ["unconfirmed"]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_helpdesk_reset_the_directory_froze_on_is_not_said_to_have_changed_nothing(
    desk_app: Flask,
    slapd: Slapd,
    directory: Directory,
    backing: Backing,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
) -> None:
    """An agent resets John's password; the directory freezes as the temporary one reaches it, then sets it.

    Told "nothing was changed", the agent would tell John to keep using a
    password that no longer works: the page must say it cannot tell (so the
    agent checks, and resets again if need be), and the trail unconfirmed.
    """
    john, alice = accounts["normal"], accounts["expiring"]
    desk = agent(desk_app, alice)
    desk.get(f"/staff/helpdesk?lang={lang}")
    verify_by_email(desk_app, backing, desk, john)
    john_id = account_id(desk_app, john.uid)
    freeze_as_it_writes(monkeypatch, slapd, "reset_password")
    try:
        page = act(desk, john_id, "reset")
    finally:
        slapd.process.send_signal(signal.SIGCONT)
    monkeypatch.undo()

    told_it_cannot_tell(desk_app, page, lang)
    # The directory did reset it: John's own password is refused once it answers again.
    wait_until(lambda: refused(services_of(desk_app).directory, john.uid, john.password))
    assert [row.outcome for row in rows(desk_app, "helpdesk_reset")] == ["unconfirmed"]


def refused(directory: Directory, login: str, password: str) -> bool:
    """Whether ``password`` is refused, once the directory answers again (until then, no)."""
    try:
        return verdict(directory, login, password) is Outcome.BAD_CREDENTIALS
    except DirectoryUnavailable:
        return False
