"""A reminder is sent only while it is true: a password changed since the copy the reminders run read gets none.

The reminders run works from the synced copy of the directory, which may be
minutes old; the worker that sends asks the directory itself just before each
message. achen (the demo's account whose password expires in about 5 days)
changes her password between the sync and the send: told that it expires in
a few days, she would believe the change did not take, or change it again.
Real slapd, real worker (in this process), real SMTP into the test's mailbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from connectors.directory import Account, Outcome
from lab import DEMO_ACCOUNTS, Pki, Slapd
from sspm.account import reminders
from sspm.infra.store import JobRun, utcnow
from sspm.policy.expiry import thresholds
from tests.flows.test_console_roles import account_of, start_staff_slapd
from tests.flows.test_email import EMAIL_ENV
from tests.flows.test_reminders import NEW_PASSWORD, claimed, queue_job, row_of, run_housekeeping, sync, to
from tests.support import Backing, services_of
from tests.support.flows import AppFactory

BATCH = "sspm.email.jobs.send_batch"
DAYS = thresholds("14,7,3,1")


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


def change_own_password(app: Flask, account: Account) -> None:
    """What the Change Password page asks of the directory: the user's own change, with the old password."""
    (seed,) = [a for a in DEMO_ACCOUNTS if a.uid == account.username]
    assert services_of(app).directory.change_password(account, seed.password, NEW_PASSWORD) is Outcome.OK


def last_batch_outcome(app: Flask) -> str | None:
    with services_of(app).store.session() as session:
        return session.scalar(select(JobRun.outcome).where(JobRun.name == BATCH).order_by(JobRun.id.desc()).limit(1))


@pytest.mark.both_databases
def test_a_password_changed_after_the_sync_gets_no_reminder_of_its_old_expiry_and_its_own_series_still_goes(
    app: Flask, backing: Backing
) -> None:
    """The run reads the old password's expiry from the copy; the worker finds a new password and sends nothing.

    Nothing is claimed either: the reminder was never true, and the new
    password's own 7-day reminder, once the copy has caught up, goes out once.
    """
    achen = account_of(app, "achen")
    sync(app)
    before = row_of(app, achen)
    assert before.expires_at is not None and before.password_changed_at is not None
    old_key = reminders.key_of(
        achen.id, 7, reminders.aware(before.password_changed_at), reminders.aware(before.expires_at)
    )

    change_own_password(app, achen)  # minutes before the reminders run, after the last sync
    queue_job(app)
    run_housekeeping(app)

    assert to(backing.mailbox, achen) == [], "no reminder of a password she no longer has"
    assert not claimed(app, old_key)
    assert last_batch_outcome(app) == "sent 0, 1 no longer due"

    # The copy catches up: the new password's own series starts, and goes once.
    sync(app)
    after = row_of(app, achen)
    assert after.expires_at is not None and after.password_changed_at != before.password_changed_at
    renewed = reminders.aware(after.expires_at)
    the = services_of(app)
    reminders.queue_reminders(the, renewed - timedelta(days=5), DAYS)
    reminders.queue_reminders(the, renewed - timedelta(days=5), DAYS)
    run_housekeeping(app)
    (reminder,) = to(backing.mailbox, achen)
    assert the.mail_templates.format_datetime(renewed, "en") in reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_a_reminder_already_queued_when_the_password_changes_is_not_sent(app: Flask, backing: Backing) -> None:
    """The worker was busy: the reminder waited in the queue while achen changed her password and the
    sync copied the change. The queued reminder still quotes the old expiry; it is dropped."""
    achen = account_of(app, "achen")
    sync(app)
    assert reminders.queue_reminders(services_of(app), utcnow(), DAYS) == 1

    change_own_password(app, achen)
    sync(app)
    run_housekeeping(app)

    assert to(backing.mailbox, achen) == []
    assert last_batch_outcome(app) == "sent 0, 1 no longer due"
