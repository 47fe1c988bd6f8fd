"""Emails to many people at once (expiry reminders): batches, exactly once each.

``Outbox.bulk`` queues one job per batch of recipients; the worker sends a
batch over one SMTP connection, claiming each recipient's email event just
before its message goes out. The servers are real and fail for real: a
worker process is killed with SIGKILL while the mail server holds a
message, aiosmtpd refuses one recipient (for a while, or for good) or
closes the connection at MAIL FROM. Each story ends by reading the mailbox:
every recipient got one email, or none, never two.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import select

from connectors.directory import Account, Directory
from lab import SeedAccount, Slapd
from lab.smtp import Mailbox, SmtpCatcher
from sspm.account.audit import check_chain
from sspm.infra import jobs
from sspm.infra.outbox import Recipient
from sspm.infra.store import AccountPreference, AuditEvent, JobRun, utcnow
from tests.flows.test_email import EMAIL_ENV, bodies, email_events, redis_values
from tests.flows.test_email_failures import PATIENCE, stop_group, wait_for, worker_process
from tests.support import Backing, services_of
from tests.support.flows import HTTPS_BASE_URL, AppFactory

KIND = "password_expires_soon"
BATCH = "sspm.email.jobs.send_batch"
#: The accounts that can get mail: every seeded one but the disabled.
SENDABLE = ("normal", "other", "temporary", "expired", "locked", "expiring", "nonascii")
SUBJECT = {"en": "Your password expires soon", "fr": "Votre mot de passe expire bientôt"}
NNBSP = "\u202f"


@dataclass
class Picky(Mailbox):
    """lab.smtp's mailbox, which can also refuse recipients, drop a connection, hold a message.

    ``refuse``: address → (reply, how many times; -1 for ever) at RCPT TO.
    ``close_at_mail``: how many times to answer MAIL FROM with 421 (closing).
    ``hold_from``: hold the answer to this message (1 for the first) and those after
    until ``hold`` is set; ``holding`` says one is held.
    """

    refuse: dict[str, tuple[str, int]] = field(default_factory=dict)
    close_at_mail: int = 0
    hold_from: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    #: Which connection (the client's address and port) each accepted message came over.
    peers: list[object] = field(default_factory=list)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.close_at_mail > 0:
            self.close_at_mail -= 1
            return "421 4.3.2 Closing this connection, come back on another"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply, times = self.refuse.get(address, ("", 0))
        if times != 0:
            self.refuse[address] = (reply, times - 1 if times > 0 else times)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peers.append(session.peer)
        if self.hold_from and len(self.messages) + 1 >= self.hold_from:
            self.holding.set()
            self.hold = self.hold or threading.Event()
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def picky(backing: Backing) -> Iterator[tuple[Picky, Backing]]:
    """A mail server of this test's own, and the backing that points at it."""
    mailbox = Picky()
    catcher = SmtpCatcher(mailbox).start()
    try:
        yield mailbox, dataclasses.replace(backing, mailbox=mailbox, smtp_port=catcher.port)
    finally:
        if mailbox.hold is not None:
            mailbox.hold.set()
        catcher.stop()


def app_on(build_app: AppFactory, slapd: Slapd, backing: Backing) -> Flask:
    return build_app(slapd, **EMAIL_ENV, SSPM_SMTP_PORT=str(backing.smtp_port))


def run_bulk_jobs(app: Flask) -> None:
    """What ``python worker.py`` does with the housekeeping queue, in this process, until it is empty."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([jobs.HOUSEKEEPING], connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def housekeeping(app: Flask) -> Queue:
    return Queue(jobs.HOUSEKEEPING, connection=services_of(app).state.redis)


def batch_jobs(app: Flask, ids: list[str]) -> list[Job]:
    found = Job.fetch_many(ids, connection=services_of(app).state.redis)
    assert all(job is not None for job in found)
    return [job for job in found if job is not None]


def accounts_in(directory: Directory, accounts: dict[str, SeedAccount], states: tuple[str, ...]) -> list[Account]:
    found = [directory.find_account(accounts[state].uid) for state in states]
    assert all(account is not None for account in found)
    return [account for account in found if account is not None]


def expires_at(directory: Directory, account: Account) -> datetime:
    """When the account's password expires, as the directory says now (what a reminder quotes)."""
    details = directory.account_details(account.id)
    assert details is not None and details.expires_at is not None, account.username
    return details.expires_at


def one_each(mailbox: Mailbox, people: list[Account]) -> dict[str, EmailMessage]:
    """Every person's one message, checked: one per address, and nobody else got any."""
    counted = Counter(str(message["To"]) for message in mailbox.messages)
    assert counted == Counter(str(person.email) for person in people), "one email each, nobody else"
    return {str(message["To"]): message for message in mailbox.messages}


def runs(app: Flask) -> list[JobRun]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(JobRun).where(JobRun.name == BATCH).order_by(JobRun.id)))


# -- every recipient, once, in their language --------------------------------------------------


@pytest.mark.both_databases
def test_a_bulk_send_reaches_each_recipient_once_in_their_language_and_a_second_queueing_sends_nothing(
    build_app: AppFactory, slapd: Slapd, directory: Directory, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    app = build_app(slapd, **EMAIL_ENV)
    the = services_of(app)
    people = accounts_in(directory, accounts, tuple(state for state in SENDABLE if state != "expired"))
    disabled, expired = accounts_in(directory, accounts, ("disabled", "expired"))
    remembered_fr, unknown_language = people[4], people[5]
    with the.store.session() as session:
        session.add(AccountPreference(account_id=remembered_fr.id, language="fr"))
    # Each reminder quotes its password's expiry as the directory has it (the worker checks it again):
    # the expired password's is past, so it gets none, like the disabled account.
    expiry = {person.id: expires_at(directory, person) for person in [*people, disabled, expired]}
    languages = {person.id: "fr" if i % 2 else "en" for i, person in enumerate(people)}
    languages[remembered_fr.id] = languages[unknown_language.id] = ""
    recipients = [
        Recipient(person.id, languages.get(person.id, "en"), expiry[person.id], key=f"{person.id}:7")
        for person in [*people, disabled, expired]
    ]

    ids = the.outbox.bulk(KIND, recipients, batch_size=3)

    assert len(ids) == 3, "eight recipients, three to a batch"
    run_bulk_jobs(app)
    received = one_each(backing.mailbox, people)
    for person in people:
        message = received[str(person.email)]
        expected = languages[person.id] or ("fr" if person is remembered_fr else "en")
        assert message["Subject"] == SUBJECT[expected], person.username
        text, page = bodies(message)
        assert f"{HTTPS_BASE_URL}/change" in text and f'href="{HTTPS_BASE_URL}/change"' in page
        assert the.mail_templates.format_datetime(expiry[person.id], expected) in text
        if expected == "fr":
            assert f"{person.username} du domaine PARTNERS expire dans " in text
            assert f"à l’adresse suivante{NNBSP}:" in text
        else:
            assert f"account {person.username} expires in " in text
        assert person.display_name in text and person.display_name in page
    assert disabled.email not in {message["To"] for message in backing.mailbox.messages}
    events = email_events(app)
    assert len(events) == len(people) and {event.state for event in events} == {"sent"}
    assert {event.kind for event in events} == {KIND}
    assert [run.outcome for run in runs(app)] == ["sent 3", "sent 3", "sent 0, 1 without an address, 1 no longer due"]
    assert all(job.get_status() == JobStatus.FINISHED for job in batch_jobs(app, ids))
    # One audit row per reminder sent, by the worker, on one unbroken chain.
    with the.store.session() as session:
        sent_rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "email_password_expires_soon", AuditEvent.outcome == "sent")
        ).all()
    assert sorted(row.account_id or "" for row in sent_rows) == sorted(person.id for person in people)
    assert {row.actor_kind for row in sent_rows} == {"job"}
    assert check_chain(the.store)[1] is None

    # The same reminders queued again (two schedulers at once, a rerun of the day): nothing more goes out.
    again = the.outbox.bulk(KIND, recipients)
    run_bulk_jobs(app)

    assert len(backing.mailbox.messages) == len(people)
    assert runs(app)[-1].outcome == "sent 0, 1 without an address, 1 no longer due, 6 sent before"
    assert len(again) == 1


def test_a_batch_carries_ids_languages_times_and_event_ids_and_nothing_else(
    build_app: AppFactory, slapd: Slapd, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, **EMAIL_ENV)
    the = services_of(app)
    (john,) = accounts_in(directory, accounts, ("normal",))
    expires = utcnow() + timedelta(days=3)
    key = f"{john.id}:3:a-password-changed-at-this-time"

    (job_id,) = the.outbox.bulk(KIND, [Recipient(john.id, "fr", expires, key=key)])

    (job,) = batch_jobs(app, [job_id])
    assert job.func_name == BATCH and job.origin == jobs.HOUSEKEEPING
    kind, rows = job.args
    ((account_id, language, at, event_id),) = rows
    assert (kind, account_id, language, at) == (KIND, john.id, "fr", expires.isoformat())
    assert len(event_id) == 64 and int(event_id, 16) >= 0, "the key's digest"
    assert not job.kwargs
    assert not [value for value in redis_values(app) if key.encode() in value], "the key itself is nowhere"
    with pytest.raises(TypeError, match="plain value"):
        jobs.Queues(the.state.redis).enqueue(jobs.HOUSEKEEPING, BATCH, KIND, ((john.id, object()),))  # type: ignore[arg-type]


# -- a worker killed in the middle of a batch ---------------------------------------------------


def test_a_batch_run_again_after_its_worker_was_killed_mid_batch_sends_nobody_twice(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    picky: tuple[Picky, Backing],
    tmp_path: Path,
) -> None:
    mailbox, backing = picky
    app = app_on(build_app, slapd, backing)
    people = accounts_in(directory, accounts, SENDABLE)
    mailbox.hold_from = 3  # two go through; the server takes the third and holds its answer
    log = tmp_path / "worker.log"
    with worker_process(slapd, backing, log) as worker:
        (job_id,) = services_of(app).outbox.bulk(KIND, [Recipient(person.id, "en") for person in people])
        wait_for(mailbox.holding, worker, log)
        (job,) = batch_jobs(app, [job_id])
        assert job.get_status() == JobStatus.STARTED

        assert stop_group(worker, signal.SIGKILL) == -signal.SIGKILL
    assert mailbox.hold is not None
    mailbox.hold.set()
    deadline = time.monotonic() + PATIENCE
    while len(mailbox.messages) < 3:  # the held one is in the mailbox already; its answer was lost
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first = list(mailbox.messages)
    assert len(first) == 3
    states = Counter(event.state for event in email_events(app))
    assert states == {"sent": 2, "sending": 1}, "the one in hand is unknown: its claim stays"

    # RQ's own clean-up, once the dead worker's time is up, gives the batch back to the queue.
    mailbox.hold_from = 0
    mailbox.hold = None
    queue = housekeeping(app)
    queue.started_job_registry.cleanup(timestamp=time.time() + 24 * 3600)
    assert queue.get_job_ids() == [job_id]
    run_bulk_jobs(app)

    received = one_each(mailbox, people)
    assert all(message in received.values() for message in first)
    assert job.return_value(refresh=True) == "sent 4, 3 sent before"
    assert Counter(event.state for event in email_events(app)) == {"sent": 6, "sending": 1}


# -- the mail server refusing one recipient, or closing the connection --------------------------


def test_a_recipient_refused_for_a_while_does_not_hold_up_the_others_and_gets_one_email_later(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    picky: tuple[Picky, Backing],
) -> None:
    mailbox, backing = picky
    app = app_on(build_app, slapd, backing)
    people = accounts_in(directory, accounts, SENDABLE)
    refused = people[2]
    mailbox.refuse[str(refused.email)] = ("451 4.2.1 Mailbox busy, try again later", 2)

    (job_id,) = services_of(app).outbox.bulk(KIND, [Recipient(person.id, "en") for person in people])
    run_bulk_jobs(app)  # the retries come at once (SSPM_EMAIL_RETRY_SECONDS=0,0,0)

    received = one_each(mailbox, people)
    assert [message["To"] for message in mailbox.messages][-1] == refused.email, "the others went first"
    (job,) = batch_jobs(app, [job_id])
    assert job.get_status() == JobStatus.FINISHED and job.retries_left == 1, "two runs refused it, the third sent"
    assert [run.outcome for run in runs(app)] == ["failed: NotAllSent", "failed: NotAllSent", "sent 1, 6 sent before"]
    assert len(set(mailbox.peers[:-1])) == 1, "the first run's six messages went over one connection"
    assert {event.state for event in email_events(app)} == {"sent"}
    assert received[str(refused.email)]["Subject"] == SUBJECT["en"]


def test_a_recipient_refused_for_good_fails_the_batch_for_that_recipient_alone(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    picky: tuple[Picky, Backing],
) -> None:
    mailbox, backing = picky
    app = app_on(build_app, slapd, backing)
    people = accounts_in(directory, accounts, SENDABLE)
    refused = people[0]
    mailbox.refuse[str(refused.email)] = ("550 5.1.1 No such mailbox", -1)

    (job_id,) = services_of(app).outbox.bulk(KIND, [Recipient(person.id, "en") for person in people])
    run_bulk_jobs(app)

    one_each(mailbox, people[1:])
    (job,) = batch_jobs(app, [job_id])
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0, "every retry spent, on that one alone"
    assert housekeeping(app).failed_job_registry.get_job_ids() == [job_id], "kept for an operator to requeue"
    assert [run.outcome for run in runs(app)] == ["failed: NotAllSent"] * 4
    events = {event.account_id: event.state for event in email_events(app)}
    assert refused.id not in events, "no claim left behind: once the address is fixed, a requeue sends it"
    assert set(events.values()) == {"sent"} and len(events) == len(people) - 1


def test_a_server_that_closes_the_connection_before_a_message_gets_it_on_a_new_one(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    picky: tuple[Picky, Backing],
) -> None:
    mailbox, backing = picky
    app = app_on(build_app, slapd, backing)
    people = accounts_in(directory, accounts, SENDABLE)
    mailbox.close_at_mail = 1  # the first MAIL FROM: as a server limiting messages per connection does

    (job_id,) = services_of(app).outbox.bulk(KIND, [Recipient(person.id, "en") for person in people])
    run_bulk_jobs(app)

    one_each(mailbox, people)
    (job,) = batch_jobs(app, [job_id])
    assert job.return_value() == "sent 7" and job.retries_left == 3, "sent in one run, nothing retried"
    assert len(set(mailbox.peers)) == 1, "all seven over the new connection"
