"""No secret ever reaches a log line or a queued job, and each line is one JSON object.

One app runs every flow that handles a secret, with the whole process
logging at DEBUG through SSPM's own JSON handler (``sspm.infra.logs.setup``
on a buffer, as gunicorn's app and the worker set it up on stderr): a
password changed, a sign-in, security answers enrolled, Forgot Password by
the answers, a reset by an emailed link (its token), a helpdesk caller's
emailed code and the temporary password it leads to, a staff sign-in with
TOTP (its key, its codes, its recovery codes) and a set-up link. The jobs
run as ``python worker.py`` runs them (RQ's SimpleWorker, in this process,
so their lines land in the same buffer). Then every line is parsed, and
every secret used is looked for in every line and in every job Redis still
holds (arguments, meta, description).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import unquote

import pyotp
import pytest
import redis
from flask import Flask
from rq import Queue, SimpleWorker
from rq.job import Job

from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from sspm.infra import jobs, logs
from tests.flows.test_email import ask_for_link, link_in, messages_to, set_password_by_link, token_of
from tests.flows.test_email import open_link as open_reset_link
from tests.flows.test_helpdesk import _TEMPORARY, account_page, act, verify_by_email
from tests.flows.test_setup import PASSWORD as SETUP_PASSWORD
from tests.flows.test_setup import choose, last_link, new_user, send_link
from tests.flows.test_setup import open_link as open_setup_link
from tests.flows.test_staff_signin import enrolled, fresh_code, give_code, give_password, sign_out
from tests.support import Backing, services_of
from tests.support.flows import (
    AppFactory,
    Visitor,
    account_id,
    enroll,
    recover,
    seed_enrolled,
    set_new_password,
    sign_in,
)

#: Retries at once, so a burst of the worker sees each job to its end.
ENV = {"SSPM_EMAIL_RETRY_SECONDS": "0,0,0"}
CHANGED = "Tangerine-Viaduct-Osprey-93"
RECOVERED = "Juniper-Lighthouse-Cobalt-26"
BY_LINK = "Saffron-Quarry-Nimbus-48"
#: Answers no log line could hold by chance.
ANSWERS = {
    "childhood-street": "Wisteria Crescent Nine",
    "first-job": "Lamplighter Apprentice",
    "first-pet": "Zephyrine",
}
MAILBOX_LOGGERS = ("mail.log", "aiosmtpd")
#: What every JSON line holds (``exception`` too, when there is one).
FIELDS = {"timestamp", "level", "logger", "message", "request_id", "process"}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The process's log, everything at DEBUG, through SSPM's JSON handler, into a buffer."""
    root, sspm_log = logging.getLogger(), logging.getLogger("sspm")
    levels = (root.level, sspm_log.level)
    buffer = io.StringIO()
    handler = logs.setup("json", "DEBUG", stream=buffer)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sspm_log.setLevel(levels[1])


def run_jobs(app: Flask) -> None:
    """What ``python worker.py`` does, in this process, until every queue is empty."""
    import signal

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker(list(jobs.QUEUES), connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def every_job(connection: redis.Redis) -> list[Job]:
    """Every job Redis still holds, on every queue: waiting, running, scheduled, done or failed."""
    ids: set[str] = set()
    for name in jobs.QUEUES:
        queue = Queue(name, connection=connection)
        ids.update(queue.get_job_ids())
        for registry in (
            queue.started_job_registry,
            queue.scheduled_job_registry,
            queue.deferred_job_registry,
            queue.finished_job_registry,
            queue.failed_job_registry,
            queue.canceled_job_registry,
        ):
            ids.update(registry.get_job_ids())
    return [job for job in Job.fetch_many(sorted(ids), connection=connection) if job is not None]


def spellings(secret: str) -> set[str]:
    """A secret as it could show: as typed, case-folded, stripped (answers are compared so)."""
    return {secret, secret.lower(), secret.strip(), secret.casefold()}


@pytest.mark.both_databases
def test_a_full_run_of_every_secret_handling_flow_logs_no_secret_and_queues_none(
    captured: io.StringIO,
    build_app: AppFactory,
    slapd: Slapd,
    accounts: dict[str, SeedAccount],
    backing: Backing,
) -> None:
    app = build_app(slapd, **ENV)
    john, laura, eloise, kevin, alice = (
        accounts["normal"],
        accounts["other"],
        accounts["nonascii"],
        accounts["locked"],
        accounts["expiring"],
    )
    secrets = [services_of(app).settings.secret_key, services_of(app).settings.directory.bind_password]

    # Change Password, sign in with the new one, enroll security answers.
    visitor = Visitor(app)
    assert visitor.change_password(john.uid, john.password, CHANGED).status_code == 303
    assert sign_in(visitor, john.uid, CHANGED).status_code == 303
    assert enroll(visitor, ANSWERS, CHANGED).status_code == 303
    secrets += [john.password, CHANGED, *ANSWERS.values()]

    # Forgot Password by the security answers, then the new password.
    seed_enrolled(app, laura)
    recovering = Visitor(app)
    assert recover(recovering, "forgot", laura.uid, DEMO_ANSWERS).status_code == 303
    assert set_new_password(recovering, RECOVERED).status_code == 303
    secrets += [laura.password, RECOVERED, *DEMO_ANSWERS.values()]

    # Forgot Password by an emailed link: its token, then the new password.
    emailed = Visitor(app)
    assert ask_for_link(emailed, eloise.mail or "").status_code == 200
    run_jobs(app)
    (message,) = messages_to(backing.mailbox, eloise.mail)
    link = link_in(message)
    form = open_reset_link(emailed, link)
    assert set_password_by_link(emailed, BY_LINK, form=form).status_code == 303
    secrets += [eloise.password, BY_LINK, token_of(link), unquote(token_of(link))]

    # A staff member's first sign-in (password, TOTP key, recovery codes), then again with a code.
    desk, totp_key, recovery_codes = enrolled(app, alice, "admin")
    assert sign_out(desk).status_code == 303
    assert give_password(desk, alice.uid, alice.password).status_code == 303
    code = fresh_code(totp_key)
    assert give_code(desk, code).status_code == 303
    secrets += [alice.password, totp_key, code, pyotp.TOTP(totp_key).now(), *recovery_codes]

    # The helpdesk: a caller's emailed code, then a reset to a temporary password shown once.
    kevin_id = account_id(app, kevin.uid)
    verify_by_email(app, backing, desk, kevin)
    caller_codes = [line.strip() for m in messages_to(backing.mailbox, kevin.mail) for line in _text(m).splitlines()]
    caller_codes = [line for line in caller_codes if line.isdigit() and len(line) == 6]
    assert caller_codes, "the caller was emailed a code"
    assert account_page(desk, kevin_id).status_code == 200
    done = act(desk, kevin_id, "reset")
    found = _TEMPORARY.search(done.get_data(as_text=True))
    assert found, "the temporary password is shown to the agent"
    secrets += [kevin.password, *caller_codes, found.group(1)]

    # A new user's set-up link: its token, then their first password.
    account = new_user(app)
    send_link(app, account)
    setup_link = last_link(backing)
    opened = Visitor(app)
    page = open_setup_link(opened, setup_link)
    assert choose(opened, page, SETUP_PASSWORD).status_code == 303
    secrets += [SETUP_PASSWORD, token_of(setup_link), unquote(token_of(setup_link))]

    run_jobs(app)  # whatever the flows queued last (notifications)

    lines = captured.getvalue().splitlines()
    assert len(lines) > 20, "the run was logged"
    records = [json.loads(line) for line in lines]  # each line, one JSON object
    # The lab's mail catcher (aiosmtpd) runs in this process and logs the mail it reads, links and all: it is
    # the recipient's mailbox, not SSPM; no SSPM process runs it.
    records = [r for r in records if not r["logger"].startswith(MAILBOX_LOGGERS)]
    for record in records:
        assert set(record) >= FIELDS, record
    job_lines = [r for r in records if r["logger"] == "sspm.infra.jobs" and r["message"].startswith("job ")]
    assert job_lines and all(r["request_id"] for r in job_lines), "each job's line carries a request id"

    jobs_kept = every_job(services_of(app).state.redis)
    assert jobs_kept, "the flows queued jobs"
    stored = "\n".join(repr((job.args, job.kwargs, job.meta, job.description)) for job in jobs_kept)
    # Six-digit codes are looked for as whole tokens, outside the timestamp's microseconds and the pid.
    said = "\n".join(json.dumps({k: v for k, v in r.items() if k not in ("timestamp", "process")}) for r in records)
    for secret in secrets:
        assert secret and len(secret) >= 6, "only secrets that could not turn up by chance"
        for spelling in spellings(secret):
            assert not found_in(said, spelling), f"a secret ({secret[:2]}…) is in the log: " + next(
                (line for line in said.splitlines() if found_in(line, spelling)), ""
            ).replace(spelling, "<SECRET>")
            assert not found_in(stored, spelling), f"a secret ({secret[:2]}…) is in a queued job"


def found_in(text: str, secret: str) -> bool:
    if secret.isdigit():
        return re.search(rf"(?<![0-9A-Za-z]){secret}(?![0-9A-Za-z])", text) is not None
    return secret in text or json.dumps(secret)[1:-1] in text


def _text(message: object) -> str:
    from email.message import EmailMessage

    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
