"""Password-expiry reminders: each threshold once per password, in the owner's language, never to the disabled.

The demo's directory on a real slapd (achen's password expires in about
5 days); the table the job reads is filled by the sync use case itself
(``sspm.account.sync.sync_all``), as the scheduled full sync fills it;
the job runs in a real worker on the housekeeping queue and its emails go
through real SMTP into the test's mailbox.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select

from connectors.directory import Account, Outcome
from lab import Pki, Slapd
from lab.smtp import Mailbox
from sspm.account import reminders
from sspm.account.sync import organization_for, sync_all
from sspm.infra import jobs
from sspm.infra.outbox import event_id_for
from sspm.infra.store import AccountPreference, DirectoryAccount, EmailEvent
from sspm.policy.expiry import thresholds
from tests.flows.test_console_roles import account_of, start_staff_slapd
from tests.flows.test_email import EMAIL_ENV
from tests.support import Backing, services_of
from tests.support.flows import AppFactory

JOB = "sspm.account.reminders.send_reminders"
FRENCH_SUBJECT = "Votre mot de passe expire bientôt"
NEW_PASSWORD = "Lantern-Meadow-Copper-57"


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


def sync(app: Flask) -> None:
    the = services_of(app)
    sync_all(the.store, the.directory, organization_for(the))


def run_housekeeping(app: Flask) -> None:
    """What ``python worker.py housekeeping`` does, in this process, until the queue is empty."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([jobs.HOUSEKEEPING], connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def queue_job(app: Flask, *args: str) -> None:
    jobs.Queues(services_of(app).state.redis).enqueue(jobs.HOUSEKEEPING, JOB, *args)


def row_of(app: Flask, account: Account) -> DirectoryAccount:
    with services_of(app).store.session() as session:
        row = session.get(DirectoryAccount, account.id)
        assert row is not None, "synced"
        session.expunge(row)
        return row


def to(mailbox: Mailbox, account: Account) -> list[EmailMessage]:
    return [m for m in mailbox.messages if str(m["To"]) == account.email]


def claimed(app: Flask, key: str) -> bool:
    with services_of(app).store.session() as session:
        found = session.scalar(select(EmailEvent.state).where(EmailEvent.event_id == event_id_for(reminders.KIND, key)))
        return found == "sent"


@pytest.mark.both_databases
def test_the_near_expiry_account_gets_the_7_day_reminder_once_in_french_and_nobody_else_any(
    app: Flask, backing: Backing
) -> None:
    achen = account_of(app, "achen")
    the = services_of(app)
    with the.store.session() as session:
        session.add(AccountPreference(account_id=achen.id, language="fr"))
    sync(app)
    row = row_of(app, achen)
    assert row.password_changed_at is not None

    queue_job(app)
    queue_job(app)  # two scheduler runs at once
    run_housekeeping(app)

    assert [str(m["To"]) for m in backing.mailbox.messages] == [achen.email], "achen only (5 days left)"
    message = backing.mailbox.messages[0]
    assert str(message["Subject"]) == FRENCH_SUBJECT
    changed, expires = reminders.aware(row.password_changed_at), reminders.aware(row.expires_at or row.last_seen_at)
    assert claimed(app, reminders.key_of(achen.id, 7, changed, expires))
    assert not claimed(app, reminders.key_of(achen.id, 14, changed, expires))

    queue_job(app)  # the next day's run, same password
    run_housekeeping(app)
    assert len(backing.mailbox.messages) == 1, "the 7-day reminder went once"


def test_a_disabled_account_gets_no_reminder(app: Flask, backing: Backing) -> None:
    achen = account_of(app, "achen")
    services_of(app).directory.disable_account(achen)
    sync(app)
    assert row_of(app, achen).disabled

    queue_job(app)
    run_housekeeping(app)
    assert backing.mailbox.messages == []


@pytest.mark.both_databases
def test_a_missed_week_sends_only_the_smallest_threshold_and_a_new_password_starts_again(
    app: Flask, backing: Backing
) -> None:
    achen = account_of(app, "achen")
    the = services_of(app)
    sync(app)
    first = row_of(app, achen)
    assert first.expires_at is not None
    expires = reminders.aware(first.expires_at)
    days = thresholds("14,7,3,1")

    # The job did not run until 2 days before expiry: the 3-day reminder, not 14 and 7 late.
    assert reminders.queue_reminders(the, expires - timedelta(days=20), days) == 0
    reminders.queue_reminders(the, expires - timedelta(days=2), days)
    reminders.queue_reminders(the, expires - timedelta(days=2), days)
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 1
    changed = reminders.aware(first.password_changed_at) if first.password_changed_at else None
    assert claimed(app, reminders.key_of(achen.id, 3, changed, expires))
    assert not claimed(app, reminders.key_of(achen.id, 7, changed, expires))

    # A new password: a new expiry and a new series; at 5 days before it, the 7-day reminder again.
    assert the.directory.reset_password(achen, NEW_PASSWORD, must_change=False) is Outcome.OK
    sync(app)
    second = row_of(app, achen)
    assert second.expires_at is not None and second.password_changed_at != first.password_changed_at
    renewed = reminders.aware(second.expires_at)
    reminders.queue_reminders(the, renewed - timedelta(days=5), days)
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 2
    changed_again = reminders.aware(second.password_changed_at) if second.password_changed_at else None
    assert claimed(app, reminders.key_of(achen.id, 7, changed_again, renewed))
