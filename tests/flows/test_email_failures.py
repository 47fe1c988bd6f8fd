"""When the email pipeline's parts fail: SMTP, the worker, Redis, a hostile
Host header, someone trying to flood a mailbox.

The servers fail for real: aiosmtpd answers 451 or holds a message, the
SMTP port is closed, a worker process is killed with SIGKILL, a
redis-server is stopped and started again. Each story ends by reading the
mailbox: exactly one email per event, or none, never two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from rq.job import Job, JobStatus

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.env import sspm_environ
from lab.redis import start_redis
from lab.slapd import free_port
from tests.flows.test_email import (
    CHECK_EMAIL,
    EMAIL_ENV,
    ask_for_link,
    audit_rows,
    email_events,
    every_job,
    link_in,
    messages_to,
    open_link,
    queue_of,
    run_jobs,
    set_password_by_link,
    token_rows,
    verdict,
)
from tests.support import Backing
from tests.support.flows import HTTPS_BASE_URL, NEW_PASSWORD, AppFactory, Visitor, csrf_token, reason_in, says, text_in

ROOT = Path(__file__).resolve().parents[2]
#: How long a test waits for a worker process before it gives up on it (a guard, not a measure).
PATIENCE = 60.0


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


def reset_jobs(app: Flask) -> list[Job]:
    return [job for job in every_job(app) if job.func_name == "sspm.email.jobs.send_reset_link"]


# -- SMTP refusing, SMTP gone ----------------------------------------------------------------


def test_a_mail_server_that_refuses_then_recovers_delivers_the_email_exactly_once(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    backing.mailbox.refuse_next = 2
    visitor = Visitor(app)
    assert ask_for_link(visitor, john.uid).status_code == 200

    run_jobs(app)

    (message,) = backing.mailbox.messages
    assert message["To"] == john.mail
    (job,) = reset_jobs(app)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "sent"
    assert job.retries_left == 1, "two tries refused, the third went through"
    outcomes = [row.outcome for row in audit_rows(app, "email_reset_link")]
    assert outcomes == ["send_failed: SMTPDataError", "send_failed: SMTPDataError", "sent"]
    (event,) = email_events(app)
    assert event.state == "sent"
    # Each try made a fresh link; only the one that went out still works.
    assert sum(row.spent_at is None for row in token_rows(app)) == 1
    assert open_link(visitor, link_in(message)).status_code == 200
    assert set_password_by_link(visitor, NEW_PASSWORD).status_code == 303
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_a_mail_server_down_for_good_fails_the_job_with_a_reason_and_nothing_crashes(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    app = build_app(slapd, **EMAIL_ENV, SSPM_SMTP_PORT=str(free_port()))
    visitor = Visitor(app)

    asked = ask_for_link(visitor, john.uid)

    assert asked.status_code == 200, "the user was told what is true: the email is queued"
    assert says(asked, text_in(app, CHECK_EMAIL))
    run_jobs(app)  # returns: the worker survives the failure
    assert not backing.mailbox.messages
    queue = queue_of(app)
    (job_id,) = queue.failed_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=queue.connection)
    assert job.get_status() == JobStatus.FAILED
    assert job.retries_left == 0, "every retry was spent first"
    result = job.latest_result()
    assert result is not None and "ConnectionRefusedError" in (result.exc_string or "")
    outcomes = [row.outcome for row in audit_rows(app, "email_reset_link")]
    assert outcomes == ["send_failed: ConnectionRefusedError"] * 4
    assert all(row.subject == john.uid and row.source_ip == "worker" for row in audit_rows(app, "email_"))
    assert not email_events(app), "no claim is left behind: the event can still be sent"
    # The app carries on.
    assert visitor.get("/").status_code == 200
    assert visitor.get("/forgot/email").status_code == 200

    # Once the operator fixes the mail server, the failed job can be sent again, once.
    fixed = build_app(slapd, **EMAIL_ENV)
    assert queue.failed_job_registry.requeue(job_id)
    run_jobs(fixed)
    (message,) = backing.mailbox.messages
    assert message["To"] == john.mail
    assert open_link(Visitor(fixed), link_in(message)).status_code == 200


# -- a worker killed in the middle of sending ---------------------------------------------------


@contextmanager
def worker_process(
    slapd: Slapd,
    backing: Backing,
    log: Path,
    *,
    redis_url: str | None = None,
    queues: Sequence[str] = (),
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """``python worker.py [queues]``, as an operator runs it, with this test's settings (``env`` on top)."""
    environ = {
        **os.environ,
        **sspm_environ(
            slapd,
            redis_url=redis_url or backing.redis_url,
            database_url=backing.database_url,
            smtp_port=backing.smtp_port,
            **{**EMAIL_ENV, **env},
        ),
        "PYTHONPATH": str(ROOT),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "worker.py", *queues],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.returncode is None:  # not stopped (and reaped) by the test itself
            stop_group(process, signal.SIGKILL)


def stop_group(process: subprocess.Popen[bytes], signum: int) -> int:
    """Signal the worker and the RQ scheduler it forks (its own process group, as under
    systemd or a container), then reap the worker. A scheduler left behind by a killed
    worker would go on polling the suite's shared Redis in the tests that follow."""
    os.killpg(process.pid, signum)
    return process.wait(PATIENCE)


def wait_for(event: threading.Event, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + PATIENCE
    while not event.wait(0.02):
        assert process.poll() is None, "the worker died:\n" + log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "the worker never sent:\n" + log.read_text(errors="replace")[-3000:]


def test_a_worker_killed_while_sending_does_not_send_a_second_email_when_the_job_runs_again(
    app: Flask, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, tmp_path: Path
) -> None:
    john = accounts["normal"]
    mailbox = backing.mailbox
    mailbox.hold = threading.Event()  # the server takes the message and holds its answer
    log = tmp_path / "worker.log"
    try:
        with worker_process(slapd, backing, log) as worker:
            assert ask_for_link(Visitor(app), john.uid).status_code == 200
            wait_for(mailbox.received, worker, log)
            (job,) = reset_jobs(app)
            assert job.get_status() == JobStatus.STARTED

            assert stop_group(worker, signal.SIGKILL) == -signal.SIGKILL
    finally:
        mailbox.hold.set()
    (message,) = mailbox.messages
    (event,) = email_events(app)
    assert event.state == "sending", "whether the message left is unknown: the claim stays"

    # RQ's own clean-up, once the dead worker's time is up, gives the job back to the queue.
    queue = queue_of(app)
    queue.started_job_registry.cleanup(timestamp=time.time() + 24 * 3600)
    assert queue.get_job_ids() == [job.id], "requeued, as a retry"
    run_jobs(app)

    assert job.return_value(refresh=True) == "already-sent"
    assert mailbox.messages == [message], "one email for the event, not two"
    assert event.event_id[:16] in message["Message-ID"]
    assert open_link(Visitor(app), link_in(message)).status_code == 200, "the link that went out works"


def test_the_worker_process_sends_what_the_app_queues_and_stops_cleanly(
    app: Flask, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, tmp_path: Path
) -> None:
    john = accounts["normal"]
    log = tmp_path / "worker.log"
    with worker_process(slapd, backing, log) as worker:
        assert ask_for_link(Visitor(app), john.uid, lang="fr").status_code == 200
        wait_for(backing.mailbox.received, worker, log)
        assert stop_group(worker, signal.SIGTERM) == 0, log.read_text(errors="replace")[-3000:]
    (message,) = messages_to(backing.mailbox, john.mail)
    assert message["Subject"] == "Votre lien de réinitialisation du mot de passe"
    (job,) = reset_jobs(app)
    assert job.return_value(refresh=True) == "sent"


# -- Redis away when the request comes in ----------------------------------------------------


def test_with_redis_stopped_the_user_is_asked_to_try_again_and_can_ask_again_later(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, tmp_path: Path
) -> None:
    """The email limits cannot be counted without Redis: they fail closed, before anything is asked or queued."""
    john = accounts["normal"]
    server = start_redis(tmp_path / "redis")
    try:
        app = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=server.url)
        visitor = Visitor(app)
        form = visitor.get("/forgot/email")
        server.stop()

        refused = visitor.post("/forgot/email", {"username": john.uid, "csrf_token": csrf_token(form.text)})

        assert refused.status_code == 503
        assert says(refused, text_in(app, "Please try again in a minute"))
        assert not says(refused, text_in(app, CHECK_EMAIL))
        assert audit_rows(app, "reset_email_request") == []
        assert not token_rows(app) and not email_events(app), "nothing half-done"

        server = start_redis(tmp_path / "redis", port=server.port)
        asked = ask_for_link(visitor, john.uid)

        assert asked.status_code == 200
        assert says(asked, text_in(app, CHECK_EMAIL))
        run_jobs(app)
        (message,) = backing.mailbox.messages
        assert message["To"] == john.mail
        assert open_link(visitor, link_in(message)).status_code == 200
    finally:
        server.stop()


# -- a forged Host header ------------------------------------------------------------------


@pytest.mark.parametrize("proxies", ["0", "1"], ids=["no proxy", "behind a trusted proxy"])
def test_a_forged_host_header_does_not_change_the_link_in_the_email(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, proxies: str
) -> None:
    john = accounts["normal"]
    app = build_app(slapd, **EMAIL_ENV, SSPM_TRUSTED_PROXIES=proxies)
    # The attacker's own browser on the attacker's host name: Host, Referer and cookies agree.
    attacker = Visitor(app, base_url="https://evil.example")
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    form = attacker.get("/forgot/email", headers=forged)
    assert form.status_code == 200

    asked = attacker.client.post(
        "/forgot/email",
        base_url="https://evil.example",
        data={"username": john.uid, "csrf_token": csrf_token(form.text)},
        headers={**forged, "Referer": "https://evil.example/forgot/email"},
    )

    assert asked.status_code == 200
    assert says(asked, text_in(app, CHECK_EMAIL))
    run_jobs(app)
    (message,) = backing.mailbox.messages
    assert link_in(message).startswith(f"{HTTPS_BASE_URL}/reset?token=")
    assert "evil.example" not in message.as_string()


# -- flooding a mailbox ----------------------------------------------------------------------


def test_a_name_gets_two_emails_an_hour_and_an_unknown_name_is_limited_the_same(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    app = build_app(slapd, **EMAIL_ENV, SSPM_LIMIT_EMAIL_PER_ACCOUNT="2 per hour")
    visitor = Visitor(app)

    pages = {name: [ask_for_link(visitor, name) for _ in range(3)] for name in (john.uid, "nobody")}

    for name, (first, second, third) in pages.items():
        assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429), name
        assert says(third, reason_in(app, "rate_limited"))
    assert pages[john.uid][2].text == pages["nobody"][2].text, "the limit says nothing of who exists"
    assert ask_for_link(visitor, john.uid.upper()).status_code == 429, "the same name in capitals"
    assert ask_for_link(visitor, accounts["other"].uid).status_code == 200, "other people are not held up"
    run_jobs(app)
    assert len(messages_to(backing.mailbox, john.mail)) == 2
    assert len(reset_jobs(app)) == 5


def test_one_address_cannot_ask_for_more_than_its_share_of_emails(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    app = build_app(slapd, **EMAIL_ENV, SSPM_LIMIT_EMAIL_PER_IP="3 per hour")
    visitor = Visitor(app)
    names = [accounts[state].uid for state in ("normal", "other", "expiring")]

    assert [ask_for_link(visitor, name).status_code for name in names] == [200, 200, 200]
    assert ask_for_link(visitor, "nobody").status_code == 429
    assert ask_for_link(visitor, accounts["expired"].uid).status_code == 429

    elsewhere = Visitor(app)
    elsewhere.client.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    assert ask_for_link(elsewhere, accounts["expired"].uid).status_code == 200
    run_jobs(app)
    assert len(backing.mailbox.messages) == 4
