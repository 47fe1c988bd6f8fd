"""Workers by queue: a reset email is never stuck behind a long sync, and one
worker serving everything takes the most urgent first.

``python worker.py email`` and ``python worker.py sync housekeeping`` run as
an operator runs them, against this test's Redis, database and mail catcher;
the long job is a real job (tests/support/jobs.py) that the worker imports
by name, and it holds until the test lets it go. What is asserted is order
and delivery, never a duration: the email arrives while the sync is still
running, and the job runs the store kept say the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from flask import Flask
from rq import Queue, SimpleWorker
from rq import Worker as RQWorker
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from sqlalchemy import select

from lab import SeedAccount, Slapd
from sspm.infra import jobs
from sspm.infra.store import JobRun
from tests.flows.test_email import EMAIL_ENV, ask_for_link, messages_to
from tests.flows.test_email_failures import worker_process
from tests.flows.test_worker_redis_restart import PATIENCE, Worker
from tests.support import Backing, services_of
from tests.support import jobs as test_jobs
from tests.support.flows import AppFactory, Visitor

ROOT = Path(__file__).resolve().parents[2]
HOLD = "tests.support.jobs.hold"
NOTE = "tests.support.jobs.note"


@contextmanager
def worker_for(slapd: Slapd, backing: Backing, log: Path, queues: Sequence[str] = ()) -> Iterator[Worker]:
    """``python worker.py [queues]``, up: registered on its queues, its scheduler holding their locks."""
    served = set(queues or jobs.QUEUES)
    with worker_process(slapd, backing, log, queues=queues) as process:
        worker = Worker(process, log)
        connection = redis.Redis.from_url(backing.redis_url)

        def registered() -> bool:
            return any(set(w.queue_names()) == served for w in RQWorker.all(connection=connection))

        worker.wait_for(f"the worker on {sorted(served)} starting", registered)
        for queue in served:
            worker.wait_for(
                f"the scheduler of {queue} starting", lambda q=queue: connection.exists(RQScheduler.get_locking_key(q))
            )
        yield worker


def ran(connection: redis.Redis) -> list[str]:
    return [label.decode() for label in connection.lrange(test_jobs.RAN, 0, -1)]


def runs_of(app: Flask) -> dict[str, JobRun]:
    """The job runs the store kept, by the job's function name."""
    with services_of(app).store.session() as session:
        return {run.name.rsplit(".", 1)[1]: run for run in session.scalars(select(JobRun))}


def test_with_email_on_a_worker_of_its_own_a_long_sync_does_not_hold_up_a_reset_email(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, tmp_path: Path
) -> None:
    john = accounts["normal"]
    app = build_app(slapd, **EMAIL_ENV)
    connection = redis.Redis.from_url(backing.redis_url)
    with (
        worker_for(slapd, backing, tmp_path / "email.log", [jobs.EMAIL]) as email_worker,
        worker_for(slapd, backing, tmp_path / "other.log", [jobs.SYNC, jobs.HOUSEKEEPING]) as other_worker,
    ):
        sync_id = jobs.Queues(connection).enqueue(jobs.SYNC, HOLD, "sync")
        other_worker.wait_for("the sync starting", lambda: connection.lrange(test_jobs.STARTED, 0, -1))

        assert ask_for_link(Visitor(app), john.uid).status_code == 200
        email_worker.wait_for("the reset email", lambda: messages_to(backing.mailbox, john.mail))
        finished = Queue(jobs.EMAIL, connection=connection).finished_job_registry
        email_worker.wait_for("the email job ending", finished.get_job_ids)

        # The email's run is over and kept; the sync's is not over yet.
        assert sorted(runs_of(app)) == ["send_reset_link"]
        sync = Job.fetch(sync_id, connection=connection)
        assert sync.get_status() == JobStatus.STARTED
        assert ran(connection) == []
        connection.rpush(test_jobs.RELEASE + "sync", "go")
        other_worker.wait_for("the sync ending", lambda: sync.get_status(refresh=True) == JobStatus.FINISHED)
        assert sync.return_value() == "released"

        assert email_worker.stop() == 0, email_worker.said()[-3000:]
        assert other_worker.stop() == 0, other_worker.said()[-3000:]

    runs = runs_of(app)
    assert sorted(runs) == ["hold", "send_reset_link"]
    email, held = runs["send_reset_link"], runs["hold"]
    assert (email.queue, email.outcome) == (jobs.EMAIL, "sent")
    assert (held.queue, held.outcome, held.job_id) == (jobs.SYNC, "released", sync_id)
    assert "job sspm.email.jobs.send_reset_link on email: sent in" in email_worker.said()
    assert "tests.support.jobs.hold" not in email_worker.said(), "the email worker never touched the sync"


def test_one_worker_serving_every_queue_takes_email_first_then_sync_then_housekeeping(
    build_app: AppFactory, slapd: Slapd, backing: Backing, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(backing.redis_url)
    queues = jobs.Queues(connection)
    # Queued before any worker is up, the least urgent first.
    for queue in (jobs.HOUSEKEEPING, jobs.SYNC, jobs.EMAIL):
        queues.enqueue(queue, NOTE, queue)

    with worker_for(slapd, backing, tmp_path / "worker.log") as worker:
        worker.wait_for("the three jobs", lambda: len(ran(connection)) == 3)
        assert worker.stop() == 0, worker.said()[-3000:]

    assert ran(connection) == [jobs.EMAIL, jobs.SYNC, jobs.HOUSEKEEPING]
    assert "Worker serving email, sync, housekeeping" in worker.said()


def test_the_worker_names_the_queues_it_knows_when_asked_for_another() -> None:
    done = subprocess.run(
        [sys.executable, "worker.py", "emails"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 2
    assert "no queue 'emails'" in done.stderr
    assert "email, sync, housekeeping" in done.stderr


def test_the_worker_and_the_email_jobs_load_no_flask() -> None:
    """The worker builds Services, not the web app: nothing of Flask is even imported."""
    probe = (
        "import sys, worker, sspm.email.jobs, sspm.__main__; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'flask_babel', 'flask_wtf', 'werkzeug'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def run_in_process(connection: redis.Redis, queue: str) -> None:
    """A burst of RQ's SimpleWorker on ``queue``, in this process (as the email tests run jobs)."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([queue], connection=connection).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_every_run_is_kept_with_its_queue_and_outcome_never_its_arguments(
    database_url: str, build_app: AppFactory, slapd: Slapd
) -> None:
    app = build_app(slapd)
    the = services_of(app)
    queues = jobs.Queues(the.state.redis)
    noted = queues.enqueue(jobs.HOUSEKEEPING, NOTE, "a-label-to-look-for")
    failed = queues.enqueue(jobs.HOUSEKEEPING, "tests.support.jobs.fail", "another-label")

    run_in_process(the.state.redis, jobs.HOUSEKEEPING)

    with the.store.session() as session:
        runs = {run.job_id: run for run in session.scalars(select(JobRun))}
    assert set(runs) == {noted, failed}
    assert (runs[noted].name, runs[noted].queue, runs[noted].outcome) == (NOTE, jobs.HOUSEKEEPING, "noted")
    assert (runs[failed].queue, runs[failed].outcome) == (jobs.HOUSEKEEPING, "failed: RuntimeError")
    assert all(run.duration_ms >= 0 and run.started_at is not None for run in runs.values())
    stored = repr([vars(run) for run in runs.values()])
    assert "a-label-to-look-for" not in stored and "another-label" not in stored
    assert Job.fetch(failed, connection=the.state.redis).get_status() == JobStatus.FAILED


@pytest.mark.parametrize("bad", [object(), b"bytes", ["a", "list"]], ids=["object", "bytes", "list"])
def test_a_job_argument_is_a_plain_value(backing: Backing, bad: object) -> None:
    queues = jobs.Queues(redis.Redis.from_url(backing.redis_url))
    with pytest.raises(TypeError, match="plain value"):
        queues.enqueue(jobs.EMAIL, NOTE, bad)  # type: ignore[arg-type]
    assert redis.Redis.from_url(backing.redis_url).llen(f"rq:queue:{jobs.EMAIL}") == 0


def test_a_job_whose_argument_says_it_is_a_secret_is_refused_when_written() -> None:
    def reset(the: object, account_id: str, new_password: str) -> str:
        return "never"

    with pytest.raises(TypeError, match="new_password"):
        jobs.job(reset)  # type: ignore[arg-type]
