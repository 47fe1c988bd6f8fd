"""What a user is told when something SSPM relies on fails around the moment the directory acts.

Found by breaking a running demo from the outside. With SSPM's SQLite
database locked by another process (a backup tool, a stuck job, an
operator's ``sqlite3`` shell), Change Password changed the password in the
directory and then answered 500 "Nothing was changed". With slapd frozen
just as the new password reached it (Change Password, an emailed link,
the security questions), the request timed out and the page said "nothing
was changed, try again", yet slapd set the password when it woke. Either
way the user went back to a password that no longer worked. The
directory's word is the truth the page must tell, and when there is none,
the page says it cannot tell. And a language SSPM cannot speak (its
catalogue never compiled) was served as English labelled French.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from connectors.directory import Directory, DirectoryUnavailable, Outcome
from connectors.openldap import OpenLdapDirectory
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from sspm.infra.settings import ConfigError
from tests.flows.test_change_password import SUCCESS_TITLE
from tests.flows.test_email import (
    EMAIL_ENV,
    audit_rows,
    is_link_gone,
    one_link_for,
    open_link,
    set_password_by_link,
    verdict,
)
from tests.flows.test_frozen_directory import wait_until
from tests.flows.test_redis_failover import SECOND_PASSWORD
from tests.support import Backing, services_of, settings_for
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    reason_in,
    recover,
    says,
    seed_enrolled,
    set_new_password,
    text_in,
)


@contextmanager
def database_locked(backing: Backing) -> Iterator[None]:
    """A connection of its own (as another process's) holds SQLite's write lock; readers still read, under WAL."""
    holder = sqlite3.connect(backing.database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def changes(app: Flask) -> list[str]:
    """The outcomes of the trail's Change Password rows."""
    return [row.outcome for row in audit_rows(app, "change") if row.action == "change"]


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)  # a database file, locked: SQLite's failure
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_with_the_database_locked_a_password_the_directory_changed_is_said_to_be_changed(
    app: Flask,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    lang: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)

    with database_locked(backing), caplog.at_level(logging.ERROR):
        changed = visitor.change_password(john.uid, john.password, NEW_PASSWORD, entry=f"/change?lang={lang}")
        done = visitor.follow(changed) if changed.status_code == 303 else changed

    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK, "the directory took the new password"
    # So the page says so, in the user's language: never "nothing was changed", never a 500.
    assert done.status_code == 200, done.status
    assert says(done, text_in(app, SUCCESS_TITLE, lang))
    assert not says(done, text_in(app, "Something went wrong on our side", lang))
    # The operator hears of the record that could not be written (never of the password).
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("not recorded" in record.getMessage() for record in errors)
    assert not any(NEW_PASSWORD in record.getMessage() for record in caplog.records)
    # Once the lock is gone, SSPM works again and records what it does.
    assert changes(app) == [], "the change itself could not be recorded"
    back = Visitor(app).change_password(john.uid, NEW_PASSWORD, SECOND_PASSWORD)
    assert back.status_code == 303, back.status
    assert changes(app) == ["ok"]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_directory_that_froze_as_the_new_password_reached_it_is_not_said_to_have_changed_nothing(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
) -> None:
    """slapd freezes (a stalled disk, a paused VM) just as the new password is sent, and wakes later.

    The request times out, but slapd holds it and applies it when it wakes:
    the password did change. The page used to say "nothing was changed, try
    again"; trying again with the old password is then refused, and five
    such tries lock the account. It must say it cannot tell, and how to find out.
    """
    freeze_when_called(monkeypatch, slapd, "_modify_password_as")
    app = build_app(slapd, LDAP_TIMEOUT="1", LDAP_RETRY_AFTER="1")
    john = accounts["normal"]
    try:
        answer = Visitor(app).change_password(john.uid, john.password, NEW_PASSWORD, entry=f"/change?lang={lang}")
    finally:
        slapd.process.send_signal(signal.SIGCONT)

    assert answer.status_code == 503, answer.status
    assert says(answer, reason_in(app, "unconfirmed", lang))
    assert not says(answer, reason_in(app, "unavailable", lang)), "never 'nothing was changed'"
    # As the page says: once the directory is back, the new password is the one that works.
    wait_until(lambda: answers(directory, john.uid, NEW_PASSWORD))
    assert verdict(directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS
    assert changes(app) == ["unconfirmed"], "the trail says what is not known"


def answers(directory: Directory, login: str, password: str) -> bool:
    """Whether ``password`` signs in, once the directory answers again (until then, no)."""
    try:
        return verdict(directory, login, password) is Outcome.OK
    except DirectoryUnavailable:
        return False


def freeze_when_called(monkeypatch: pytest.MonkeyPatch, slapd: Slapd, method: str) -> None:
    """slapd is SIGSTOPped as SSPM enters the connector's ``method`` (the test sends SIGCONT)."""
    real = getattr(OpenLdapDirectory, method)

    def frozen_first(*args: Any, **kwargs: Any) -> Any:
        slapd.process.send_signal(signal.SIGSTOP)
        return real(*args, **kwargs)

    monkeypatch.setattr(OpenLdapDirectory, method, frozen_first)


@pytest.mark.parametrize(
    ("frozen_at", "password_set"),
    [("_modify_password_as", True), ("reset_password", False)],
    ids=["as-the-password-is-sent", "before-it-is-sent"],
)
def test_a_reset_link_used_while_the_directory_froze_works_again_unless_the_password_was_set(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    monkeypatch: pytest.MonkeyPatch,
    frozen_at: str,
    password_set: bool,
) -> None:
    """The link is spent as the form is sent; the directory then freezes, before or after taking the password.

    The page cannot tell which, and says so. If the password was not set,
    the same form sent again must work: the link used to stay spent, so the
    "try again" the page asked for met "this link has expired". If it was
    set, the link is dead (the directory's change time voids it).
    """
    app = build_app(slapd, **EMAIL_ENV, LDAP_TIMEOUT="1", LDAP_RETRY_AFTER="1")
    john = accounts["normal"]
    visitor = Visitor(app)
    form = open_link(visitor, one_link_for(app, visitor, backing.mailbox, john))
    freeze_when_called(monkeypatch, slapd, frozen_at)
    try:
        answer = set_password_by_link(visitor, NEW_PASSWORD, form=form)
    finally:
        slapd.process.send_signal(signal.SIGCONT)
    monkeypatch.undo()

    assert answer.status_code == 503, answer.status
    assert says(answer, reason_in(app, "unconfirmed"))
    expected = NEW_PASSWORD if password_set else john.password
    wait_until(
        lambda: answers(services_of(app).directory, john.uid, expected)
    )  # the app's own, once its breaker closes
    again = set_password_by_link(visitor, SECOND_PASSWORD, form=form)
    if password_set:
        assert is_link_gone(app, again)
    else:
        assert again.status_code == 303, again.status
        assert verdict(directory, john.uid, SECOND_PASSWORD) is Outcome.OK


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_forgot_password_by_the_questions_on_a_directory_that_froze_as_the_password_reached_it(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
) -> None:
    """The answers were right, the new password was sent, the directory froze and took it when it woke.

    As with Change Password: never "nothing was changed", the page says it
    cannot tell and to try the new password, and the trail says unconfirmed.
    """
    app = build_app(slapd, LDAP_TIMEOUT="1", LDAP_RETRY_AFTER="1")
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    visitor.get(f"/?lang={lang}")
    assert recover(visitor, "forgot", john.uid, DEMO_ANSWERS).status_code == 303
    freeze_when_called(monkeypatch, slapd, "_modify_password_as")
    try:
        answer = set_new_password(visitor, NEW_PASSWORD)
    finally:
        slapd.process.send_signal(signal.SIGCONT)

    assert answer.status_code == 503, answer.status
    assert says(answer, reason_in(app, "unconfirmed", lang))
    assert not says(answer, reason_in(app, "unavailable", lang)), "never 'nothing was changed'"
    wait_until(lambda: answers(directory, john.uid, NEW_PASSWORD))
    rows = [row.outcome for row in audit_rows(app, "forgot") if row.action == "forgot_reset"]
    assert rows == ["unconfirmed"]


def test_a_language_without_its_compiled_translations_stops_the_start_with_one_line(slapd: Slapd) -> None:
    """The catalogue SSPM reads is the compiled one (messages.mo, git-ignored, made by scripts/setup).

    A demo started with ``python -m lab.demo`` from a fresh clone (skipping
    scripts/setup) served every "French" page and email in English, marked
    lang="fr", so a screen reader read English with a French voice. A listed
    language SSPM cannot speak is a wrong setting like any other.
    """
    with pytest.raises(ConfigError) as refused:
        settings_for(slapd, SSPM_LANGUAGES="en,fr,de")

    message = str(refused.value)
    assert "\n" not in message
    assert "SSPM_LANGUAGES" in message and "'de'" in message and "pybabel compile" in message
    assert settings_for(slapd, SSPM_LANGUAGES="en,fr").languages == ("en", "fr")
