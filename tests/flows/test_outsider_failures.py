"""What a user is told when one of SSPM's own systems fails after the directory has acted.

Found by breaking a running demo from the outside: with SSPM's SQLite
database locked by another process (a backup tool, a stuck job, an
operator's ``sqlite3`` shell), Change Password changed the password in
the directory and then answered 500 "Nothing was changed". The user,
believing it, tried the old password again and was refused. The
directory's word is the truth the page must tell; a record SSPM could not
write is the operator's to hear about (logged as an error), not the user's.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask

from connectors.directory import Directory, Outcome
from lab import SeedAccount
from tests.flows.test_change_password import SUCCESS_TITLE
from tests.flows.test_email import audit_rows, verdict
from tests.flows.test_redis_failover import SECOND_PASSWORD
from tests.support import Backing
from tests.support.flows import NEW_PASSWORD, Visitor, says, text_in


@contextmanager
def database_locked(backing: Backing) -> Iterator[None]:
    """Another process's connection holds SQLite's write lock (readers still read, as under WAL)."""
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
