"""SSPM's RQ worker: ``python worker.py [queue ...]`` runs the jobs the web app queues.

It reads the same settings as the web app (config/defaults.env, .env, the
environment) and builds the same Services (``sspm.infra.services.build``),
never the web app. With no queue named it serves them all, in priority
order: email, then sync, then housekeeping. Named, it serves only those:
``python worker.py email`` and ``python worker.py sync housekeeping`` as
two processes, so a long sync never holds up a reset email someone is
waiting for. RQ's scheduler is on, so that failed jobs are retried after
their delay (SSPM_EMAIL_RETRY_SECONDS for emails).

A SimpleWorker runs each job in this process instead of forking one per
job: the jobs are short and share the process's connections (directory
pool, database, SMTP settings), and a fork per email would cap a worker
well below what one SMTP relay takes.

Redis going away (a restart, a failover) is part of the job. As RQ 3.0
ships it, the scheduler process dies of the first lost connection, with a
traceback, and the worker forks a new one only at its next maintenance, up
to ten minutes later: every retry falling due meanwhile waits. Here the
scheduler rides the outage out (``SteadyScheduler``); the worker looks for
Redis again every two seconds, not up to every minute; an outage reads as
a line a minute in the log, never a traceback; and if Redis went away in
the middle of a job, where RQ's worker gives up, a fresh worker starts as
soon as Redis answers. What survives the restart is Redis's business: with
its persistence on, the queue and the scheduled retries come back; without
it, they are lost like everything else there (see README). Under Sentinel
(``SSPM_REDIS_URL=redis+sentinel://...``) the same connection, from
``sspm.infra.redisconn``, asks the sentinels for the primary at every
reconnect, RQ's blocking pop and the scheduler's copy of it included, so a
failover reads here as a short outage followed by the new primary.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from types import FrameType

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from connectors.directory import DirectoryError
from sspm.infra import jobs, logs, metrics
from sspm.infra import settings as settings_module
from sspm.infra.services import build
from sspm.infra.settings import ConfigError
from sspm.infra.state import StateUnavailable

log = logging.getLogger("sspm.worker")

#: What a Redis that is restarting, failing over or gone looks like from here.
LOST = (RedisConnectionError, RedisTimeoutError)
#: RQ's worker says "could not connect" at each try; one line in this many seconds is enough.
QUIET_SECONDS = 60.0


class SteadyScheduler(RQScheduler):
    """RQ's scheduler loop, which waits out a lost connection instead of dying of it.

    It says once that Redis is gone and once that it is back; when it is
    back, it registers again (a restarted Redis may have lost that) and
    takes its locks again (the same name, so its own lock is its own).
    """

    def work(self) -> None:
        self._install_signal_handlers()  # type: ignore[no-untyped-call]
        away_since: float | None = None
        while not self._stop_requested:
            try:
                if away_since is not None or self.last_heartbeat is None:
                    self.register_birth()
                if self.should_reacquire_locks:
                    self.acquire_locks()  # type: ignore[no-untyped-call]
                self.heartbeat()  # type: ignore[no-untyped-call]
                self.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            except LOST as exc:
                if away_since is None:
                    away_since = time.monotonic()
                    self.log.warning("Scheduler: Redis unreachable (%s); trying again every %s s", exc, self.interval)
            else:
                if away_since is not None:
                    self.log.warning("Scheduler: Redis is back after %.0f s", time.monotonic() - away_since)
                    away_since = None
            time.sleep(self.interval)
        with contextlib.suppress(*LOST):  # if so, its locks and its record expire on their own
            self.stop()  # type: ignore[no-untyped-call]


class SteadyWorker(SimpleWorker):
    #: RQ backs off up to 60 s between tries while Redis is away: that long after it is back.
    max_connection_wait_time = 2.0
    #: Set by SIGTERM or Ctrl-C: the end of ``work()`` was asked for, not caused by Redis.
    stopping = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job under the id of the request that queued it: its lines, and RQ's about it, carry that id."""
        with logs.request_id(jobs.request_id_of(job)):
            super().execute_job(job, queue)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


class OutageInOneLine(logging.Filter):
    """RQ's worker logs each try to reach Redis, and a lost connection with a
    traceback; during an outage that is a screenful a minute. Keep one line
    a minute, and the reason without the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._said_at = -QUIET_SECONDS

    def filter(self, record: logging.LogRecord) -> bool:
        lost = record.exc_info[1] if record.exc_info else None
        if isinstance(lost, LOST):
            record.msg = f"{record.msg} (Redis unreachable: {str(lost).replace('%', '%%')})"
            record.exc_info = record.exc_text = None
        if str(record.msg).startswith("Worker %s: could not connect to Redis"):
            if time.monotonic() - self._said_at < QUIET_SECONDS:
                return False
            self._said_at = time.monotonic()
        return True


def serve(connection: Redis, queues: Sequence[str] = jobs.QUEUES) -> None:
    """Work ``queues`` (first the first) until asked to stop; if Redis took the
    worker down, start a fresh one when it answers."""
    # The same scheduler name across fresh workers: its lock, if Redis kept it, is still its own.
    scheduler_name = uuid.uuid4().hex
    while True:
        worker = SteadyWorker(list(queues), connection=connection)
        # The worker's own scheduler, started here rather than by with_scheduler=True (which
        # would fork RQ's); the worker still stops it with itself and restarts it if it dies.
        worker.scheduler = SteadyScheduler(
            list(queues), connection=worker.connection, logging_level="WARNING", name=scheduler_name
        )
        try:
            worker.scheduler.acquire_locks(auto_start=True)  # type: ignore[no-untyped-call]
            # RQ logs two INFO lines per job (~0.9 ms of CPU each time); its
            # warnings and errors still show.
            worker.work(logging_level="WARNING")
        except LOST:
            # RQ's worker could not say goodbye to Redis, and left its command listener running.
            if worker.pubsub_thread is not None:
                worker.pubsub_thread.stop()
        if worker.stopping:
            return
        log.warning("Worker: Redis went away mid-way; a fresh worker starts once it answers")
        if not _wait_for(connection):
            return


def _wait_for(connection: Redis) -> bool:
    """Wait for Redis to answer; False if told to stop meanwhile."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        try:
            connection.ping()
        except LOST:
            continue
        return True
    return False


def chosen_queues(names: Sequence[str]) -> tuple[str, ...]:
    """The queues named on the command line, in priority order; all of them if none is named."""
    unknown = [name for name in names if name not in jobs.QUEUES]
    if unknown:
        raise ValueError(f"no queue {unknown[0]!r}: name any of {', '.join(jobs.QUEUES)} (none: all, in that order)")
    return tuple(name for name in jobs.QUEUES if name in names or not names)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        queues = chosen_queues(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"sspm worker: {exc}", file=sys.stderr)
        return 2
    try:
        settings = settings_module.load()
        logs.setup(settings.log_format, settings.log_level)
        # Built once for the process: every job this worker runs gets these (sspm.infra.jobs).
        the = build(settings)
    except (ConfigError, DirectoryError, StateUnavailable) as exc:
        print(f"sspm worker: cannot start: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("rq.worker").addFilter(OutageInOneLine())
    log.info("Worker serving %s", ", ".join(queues))
    metrics.serve(the.settings, the.state.redis, jobs.QUEUES)  # its own /metrics, if SSPM_METRICS_PORT is set
    try:
        serve(the.state.redis, queues)
    finally:
        the.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
