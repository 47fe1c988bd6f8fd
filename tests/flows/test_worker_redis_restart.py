"""The email worker rides out a Redis restart, as an operator would do one.

``python worker.py`` runs against a redis-server of the test's own; the
server is stopped and started again on the same port, and the worker (and
RQ's scheduler, a process it forks) must carry on by themselves: no crash,
no traceback in the log, and mail flowing again once Redis answers.

What a restart keeps depends on Redis's own persistence, and SSPM's email
queue lives in Redis: with a snapshot (``save``, written when redis-server
is stopped cleanly) the queue and the retries scheduled before the restart
come back with it; without any, they are gone, like the sessions and the
CAPTCHAs, and only what is asked for after the restart is sent. Both are
told here. (A crash, SIGKILL or power loss, loses what was written since
the last snapshot, unless Redis also keeps an append-only file.)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq import Worker as RQWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from lab import SeedAccount, Slapd
from lab.redis import RedisServer, start_redis
from sspm.email.jobs import QUEUE
from tests.flows.test_email import EMAIL_ENV, ask_for_link, link_in, messages_to, open_link
from tests.flows.test_email_failures import worker_process
from tests.support import Backing
from tests.support.flows import AppFactory, Visitor

#: How long the test waits for something the worker does before giving up (a guard, not a measure).
PATIENCE = 60.0
#: A retry an hour away: nothing moves it before the test says the hour has passed.
AN_HOUR = "3600"
TRACEBACK = "Traceback (most recent call last):"


@contextmanager
def worker_on(slapd: Slapd, backing: Backing, server: RedisServer, log: Path, **env: str) -> Iterator[Worker]:
    """``python worker.py`` as an operator runs it, on this test's Redis."""
    with worker_process(slapd, backing, log, redis_url=server.url, **env) as process:
        worker = Worker(process, log)
        connection = redis.Redis.from_url(server.url)
        # Up: registered, and its scheduler holds the queue's lock.
        worker.wait_for("the worker starting", lambda: RQWorker.all(connection=connection))
        worker.wait_for("the scheduler starting", lambda: connection.exists(RQScheduler.get_locking_key(QUEUE)))
        yield worker


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def said(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, done: Callable[[], object]) -> None:
        """Poll until ``done()`` is true; fail (with the log) if the worker dies or never gets there."""
        deadline = time.monotonic() + PATIENCE
        while not done():
            assert self.process.poll() is None, f"the worker died while waiting for {what}:\n{self.said()[-3000:]}"
            assert time.monotonic() < deadline, f"never saw {what}:\n{self.said()[-3000:]}"
            time.sleep(0.05)

    def ride_out(self, server: RedisServer, workdir: Path, *, persist: bool) -> RedisServer:
        """Stop Redis, let the worker and its scheduler find it gone, start it again on the same port."""
        server.stop()  # SIGTERM: with persistence on, redis-server writes its snapshot on the way out
        self.wait_for("the worker finding Redis gone", lambda: "could not connect to Redis" in self.said())
        self.wait_for("the scheduler finding Redis gone", lambda: scheduler_lost_redis(self.said()))
        return start_redis(workdir, port=server.port, persist=persist)

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(PATIENCE)


def redis_tracebacks(log: str) -> list[str]:
    """The tracebacks in the log that are about Redis (a refused send logs its own, as it should)."""
    # Each ends where the next line begins: a JSON line (the default), or a text line's date.
    parts = log.split(TRACEBACK)[1:]
    tracebacks = [re.split(r"^(?:\{|\d{4}-\d\d-\d\d)", part, maxsplit=1, flags=re.M)[0] for part in parts]
    return [text for text in tracebacks if "redis" in text.lower()]


def scheduler_lost_redis(log: str) -> bool:
    """Whether the scheduler met the outage: it says so (or, as RQ's own did, dies of it)."""
    return "Scheduler: Redis unreachable" in log or "Scheduler [PID" in log


@pytest.fixture
def redis_dir(tmp_path: Path) -> Path:
    return tmp_path / "redis"


def test_a_retry_scheduled_before_a_redis_restart_is_sent_after_it(
    build_app: AppFactory,
    slapd: Slapd,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    redis_dir: Path,
    tmp_path: Path,
) -> None:
    john = accounts["normal"]
    server = start_redis(redis_dir, persist=True)
    try:
        app = build_app(slapd, **{**EMAIL_ENV, "SSPM_EMAIL_RETRY_SECONDS": AN_HOUR}, SSPM_REDIS_URL=server.url)
        backing.mailbox.refuse_next = 1  # the mail server refuses the first try: a retry is scheduled
        with worker_on(slapd, backing, server, tmp_path / "worker.log", SSPM_EMAIL_RETRY_SECONDS=AN_HOUR) as worker:
            assert ask_for_link(Visitor(app), john.uid).status_code == 200
            scheduled = Queue(QUEUE, connection=redis.Redis.from_url(server.url)).scheduled_job_registry
            worker.wait_for("the retry being scheduled", scheduled.get_job_ids)
            (job_id,) = scheduled.get_job_ids()

            server = worker.ride_out(server, redis_dir, persist=True)

            # The hour passes: the retry falls due, in the Redis that came back.
            connection = redis.Redis.from_url(server.url)
            scheduled = Queue(QUEUE, connection=connection).scheduled_job_registry
            assert scheduled.get_job_ids() == [job_id], "the snapshot kept the scheduled retry"
            scheduled.schedule(Job.fetch(job_id, connection=connection), datetime.now(UTC))
            worker.wait_for("the email", lambda: messages_to(backing.mailbox, john.mail))

            assert worker.stop() == 0, worker.said()[-3000:]
        assert not redis_tracebacks(worker.said()), worker.said()[-3000:]
        assert "Scheduler: Redis is back" in worker.said()
        (message,) = messages_to(backing.mailbox, john.mail)
        assert open_link(Visitor(app), link_in(message)).status_code == 200, "the link that went out works"
    finally:
        server.stop()


def test_after_a_restart_that_lost_everything_the_worker_sends_what_is_asked_next(
    build_app: AppFactory,
    slapd: Slapd,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    redis_dir: Path,
    tmp_path: Path,
) -> None:
    john = accounts["normal"]
    server = start_redis(redis_dir)
    try:
        # Retries after one second: the scheduler must be working again to deliver.
        app = build_app(slapd, **{**EMAIL_ENV, "SSPM_EMAIL_RETRY_SECONDS": "1"}, SSPM_REDIS_URL=server.url)
        with worker_on(slapd, backing, server, tmp_path / "worker.log", SSPM_EMAIL_RETRY_SECONDS="1") as worker:
            server = worker.ride_out(server, redis_dir, persist=False)

            backing.mailbox.refuse_next = 1
            assert ask_for_link(Visitor(app), john.uid).status_code == 200
            worker.wait_for("the email", lambda: messages_to(backing.mailbox, john.mail))

            assert worker.stop() == 0, worker.said()[-3000:]
        assert not redis_tracebacks(worker.said()), worker.said()[-3000:]
        assert len(messages_to(backing.mailbox, john.mail)) == 1
    finally:
        server.stop()


def test_redis_gone_in_the_middle_of_a_send_does_not_take_the_worker_down(
    build_app: AppFactory,
    slapd: Slapd,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    redis_dir: Path,
    tmp_path: Path,
) -> None:
    """RQ's own worker gives up when Redis is away as a job ends; this one starts afresh."""
    john, laura = accounts["normal"], accounts["other"]
    mailbox = backing.mailbox
    server = start_redis(redis_dir, persist=True)
    try:
        app = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=server.url)
        with worker_on(slapd, backing, server, tmp_path / "worker.log") as worker:
            mailbox.hold = threading.Event()  # the mail server takes john's email and holds its answer
            assert ask_for_link(Visitor(app), john.uid).status_code == 200
            worker.wait_for("john's email reaching the mail server", mailbox.received.is_set)

            server.stop()
            mailbox.hold.set()  # the send ends while Redis is away
            worker.wait_for("the worker waiting for Redis", lambda: "a fresh worker starts" in worker.said())
            server = start_redis(redis_dir, port=server.port, persist=True)

            assert ask_for_link(Visitor(app), laura.uid).status_code == 200
            worker.wait_for("laura's email", lambda: messages_to(mailbox, laura.mail))

            assert worker.stop() == 0, worker.said()[-3000:]
        assert not redis_tracebacks(worker.said()), worker.said()[-3000:]
        assert len(messages_to(mailbox, john.mail)) == 1, "john's email went once, before Redis left"
    finally:
        mailbox.hold = None
        server.stop()
