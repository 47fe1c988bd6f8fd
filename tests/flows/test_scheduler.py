"""``python -m sspm scheduler``, as an operator runs it: two at once queue each due job
once, and one rides out a Redis restart.

The schedulers run as real processes against a redis-server of the test's
own, with a short tick so that they meet often; nothing works the queues,
so every job they put there stays to be counted. Each (entry, slot) a
scheduler claimed is a ``sspm:schedule:<name>:<slot>`` key in Redis: the
jobs on a queue must be exactly one per claim, whichever scheduler made it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from rq.job import Job

from lab import Slapd
from lab.env import sspm_environ
from lab.redis import start_redis
from sspm.infra import schedule
from tests.support import Backing

ROOT = Path(__file__).resolve().parents[2]
#: How long the test waits for something a scheduler does before giving up (a guard, not a measure).
PATIENCE = 60.0
TRACEBACK = "Traceback (most recent call last):"


class Running:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def said(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, done: Callable[[], object]) -> None:
        deadline = time.monotonic() + PATIENCE
        while not done():
            assert self.process.poll() is None, f"the scheduler died waiting for {what}:\n{self.said()[-3000:]}"
            assert time.monotonic() < deadline, f"never saw {what}:\n{self.said()[-3000:]}"
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(PATIENCE)


@contextmanager
def scheduler(slapd: Slapd, backing: Backing, redis_url: str, log: Path) -> Iterator[Running]:
    """``python -m sspm scheduler --tick 0.05`` on the Redis at ``redis_url`` (plain or Sentinel)."""
    environ = {
        **os.environ,
        **sspm_environ(slapd, redis_url=redis_url, database_url=backing.database_url),
        "PYTHONPATH": str(ROOT),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sspm", "scheduler", "--tick", "0.05"],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        yield Running(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def ticks(connection: redis.Redis) -> list[int]:
    """Each live scheduler's tick count."""
    keys = connection.keys(f"{schedule.HEARTBEAT_PREFIX}*")
    return [int(value) for value in connection.mget(keys) if value is not None] if keys else []


def queued(connection: redis.Redis, entry: schedule.Scheduled) -> list[str]:
    """The ids of the jobs on ``entry``'s queue that run its function."""
    ids = [job_id.decode() for job_id in connection.lrange(f"rq:queue:{entry.queue}", 0, -1)]
    jobs = Job.fetch_many(ids, connection=connection)
    return [job.id for job in jobs if job is not None and job.func_name == entry.function]


def claims(connection: redis.Redis, entry: schedule.Scheduled) -> list[bytes]:
    return list(connection.scan_iter(f"{schedule.CLAIM_PREFIX}{entry.name}:*"))


def test_two_schedulers_queue_each_due_job_once(slapd: Slapd, backing: Backing, tmp_path: Path) -> None:
    assert schedule.ENTRIES, "something is scheduled"
    server = start_redis(tmp_path / "redis")
    connection = redis.Redis.from_url(server.url)
    try:
        with ExitStack() as stack:
            both = [
                stack.enter_context(scheduler(slapd, backing, server.url, tmp_path / f"scheduler-{n}.log"))
                for n in (1, 2)
            ]
            # Each has looked many times: every entry was due for both, again and again.
            both[0].wait_for("both schedulers ticking", lambda: len(ticks(connection)) == 2)
            both[0].wait_for("twenty ticks each", lambda: min(ticks(connection)) >= 20)
            assert [one.stop() for one in both] == [0, 0], [one.said()[-2000:] for one in both]
        for entry in schedule.ENTRIES:
            made = claims(connection, entry)
            assert made, f"{entry.name} was claimed"
            jobs = queued(connection, entry)
            assert len(jobs) == len(made) == len(set(jobs)), f"{entry.name}: one job per slot, {jobs} for {made}"
        said = "".join(one.said() for one in both)
        assert TRACEBACK not in said
        assert said.count("Scheduler: enqueued") == sum(len(claims(connection, e)) for e in schedule.ENTRIES)
    finally:
        server.stop()


def test_the_scheduler_rides_out_a_redis_restart(slapd: Slapd, backing: Backing, tmp_path: Path) -> None:
    """A restart without persistence forgets the claims: the scheduler claims and queues afresh."""
    entry = schedule.ENTRIES[0]
    server = start_redis(tmp_path / "redis")
    try:
        with scheduler(slapd, backing, server.url, tmp_path / "scheduler.log") as one:
            connection = redis.Redis.from_url(server.url)
            one.wait_for("the first job", lambda: queued(connection, entry))
            server.stop()
            one.wait_for("the scheduler finding Redis gone", lambda: "Scheduler: Redis unreachable" in one.said())
            server = start_redis(tmp_path / "redis", port=server.port)
            connection = redis.Redis.from_url(server.url)
            one.wait_for("the job queued again in the new Redis", lambda: queued(connection, entry))
            one.wait_for("a tick after that", lambda: ticks(connection))
            assert one.stop() == 0, one.said()[-3000:]
        assert "Scheduler: Redis is back" in one.said()
        assert TRACEBACK not in one.said(), one.said()[-3000:]
        assert len(queued(connection, entry)) == len(claims(connection, entry)), "once per slot after it too"
    finally:
        server.stop()


def test_a_failed_enqueue_is_logged_loudly_and_tried_again_at_the_next_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis refuses the job (here: an ACL that lets the scheduler claim but not queue) but not the claim."""
    server = start_redis(tmp_path / "redis")
    try:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", "scheduler", "on", ">its-password", "~sspm:*", "+@all")
        limited = redis.Redis(port=server.port, username="scheduler", password="its-password")
        entry = schedule.Scheduled("clean-up", "sspm.account.cleanup.clean_up", "housekeeping", 3600)
        loop = schedule.Scheduler(limited, (entry,), name="test")

        with caplog.at_level(logging.INFO, logger="sspm.scheduler"):
            assert loop.tick() == []
        (said,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert (
            said.getMessage() == "Scheduler: could not enqueue clean-up (sspm.account.cleanup.clean_up on housekeeping)"
        )
        assert said.exc_info is not None, "with its traceback"
        assert not claims(admin, entry), "the claim was given back"

        admin.execute_command("ACL", "SETUSER", "scheduler", "~rq:*")
        assert loop.tick() == ["clean-up"]
        assert len(queued(admin, entry)) == len(claims(admin, entry)) == 1
        assert loop.tick() == [], "once per slot"
    finally:
        server.stop()
