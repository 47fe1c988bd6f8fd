"""What runs on its own, how often, and the loop that puts it on the queues.

``ENTRIES`` is the schedule: each feature adds one ``Scheduled`` per job it
wants run every so often, named by the job function's dotted name (this
layer never imports the feature). ``python -m sspm scheduler`` runs
``Scheduler.run``: every tick (a few seconds) it puts each entry that is due
on its queue, through ``jobs.Queues``, like any other job.

Time is cut into slots of ``every_seconds`` from the Unix epoch; an entry is
due once per slot. Before enqueuing, a scheduler claims the slot in Redis
(``SET NX`` on ``sspm:schedule:<name>:<slot>``, expiring after the slot): any
number of schedulers may run, for redundancy, and each slot's job is still
queued once. A scheduler (re)started mid-slot finds the slot claimed and
waits for the next one. A claim whose enqueue failed is given back, so the
next tick (of any scheduler) tries again, and the failure is logged as an
error with its traceback. The claims live in Redis: a restart that loses
them (no persistence) queues each entry once more in the current slot,
which every scheduled job takes (each is safe to run twice).

Why this small loop and not RQ 3.0's own ``rq.cron.CronScheduler``: RQ's
keeps each job's next run in the memory of its own process, so two of them
queue every job twice, and a restarted one queues every interval job at once;
it has no claim shared between processes. And its loop dies of the first
lost Redis connection (like RQ's ``RQScheduler``, see worker.py), where this
one says once that Redis is gone and once that it is back, and carries on.
What the claim costs: one Redis round trip per entry per tick.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sspm.infra import jobs, logs

log = logging.getLogger("sspm.scheduler")

#: What a Redis that is restarting, failing over or gone looks like from here.
LOST = (RedisConnectionError, RedisTimeoutError)
#: Seconds between ticks: an entry runs at most this late into its slot.
TICK_SECONDS = 5.0
#: Where a scheduler says it is alive: ``<prefix><name>`` holds its tick count, expiring without ticks.
HEARTBEAT_PREFIX = "sspm:scheduler:"
CLAIM_PREFIX = "sspm:schedule:"


@dataclass(frozen=True)
class Scheduled:
    """One job run every ``every_seconds``: ``function`` (dotted name, no arguments) on ``queue``."""

    name: str
    function: str
    queue: str
    every_seconds: int


#: The schedule. Each feature adds its own line (re-read before editing: others do too).
ENTRIES: tuple[Scheduled, ...] = (
    # Tokens past their lifetime, old email events and job runs (sspm.account.cleanup).
    Scheduled("clean-up", "sspm.account.cleanup.clean_up", jobs.HOUSEKEEPING, 3600),
    # Expiry reminders from the synced table, each once ever (sspm.account.reminders); a cheap indexed query,
    # so every 15 minutes: a fresh sync (the demo's first) is followed soon by its reminders.
    Scheduled("reminders", "sspm.account.reminders.send_reminders", jobs.HOUSEKEEPING, 900),
    # The directory's accounts copied for reports and reminders (sspm.account.sync): changes, then a full pass.
    Scheduled("sync-changes", "sspm.account.sync.incremental_sync", jobs.SYNC, 300),
    Scheduled("sync-full", "sspm.account.sync.full_sync", jobs.SYNC, 86400),
    # People whose record's end date has come: ended as staff would by hand (sspm.people.jobs).
    Scheduled("records-end-dates", "sspm.people.jobs.end_due_records", jobs.HOUSEKEEPING, 3600),
)


def slot(entry: Scheduled, at: float) -> int:
    """The slot ``at`` (Unix seconds) falls in, for ``entry``: the same number in every scheduler."""
    return math.floor(at / entry.every_seconds)


class Scheduler:
    """Puts each due entry on its queue once per slot, however many schedulers run."""

    def __init__(
        self,
        connection: Redis,
        entries: Sequence[Scheduled] = ENTRIES,
        *,
        name: str,
        tick_seconds: float = TICK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for entry in entries:
            if entry.queue not in jobs.QUEUES or entry.every_seconds < 1:
                raise ValueError(f"schedule entry {entry.name!r}: queue one of {jobs.QUEUES}, every_seconds >= 1")
        self.connection = connection
        self.entries = tuple(entries)
        self.name = name
        self.tick_seconds = tick_seconds
        self.clock = clock
        self.queues = jobs.Queues(connection)
        self.ticks = 0
        self.stop = threading.Event()

    def tick(self) -> list[str]:
        """Enqueue every entry due now that no scheduler has claimed; the names enqueued.

        Raises one of ``LOST`` if Redis cannot be reached (nothing more was queued).
        """
        now = self.clock()
        enqueued = []
        for entry in self.entries:
            current = slot(entry, now)
            key = f"{CLAIM_PREFIX}{entry.name}:{current}"
            ends_in = max(1, math.ceil((current + 1) * entry.every_seconds - now))
            if not self.connection.set(key, self.name, nx=True, ex=ends_in + entry.every_seconds):
                continue
            with logs.request_id(logs.new_request_id()):  # each run its own id, which the job's lines carry on
                try:
                    self.queues.enqueue(entry.queue, entry.function)
                except LOST:
                    raise
                except Exception:
                    log.exception("Scheduler: could not enqueue %s (%s on %s)", entry.name, entry.function, entry.queue)
                    self.connection.delete(key)  # any scheduler tries again at its next tick
                    continue
                log.info("Scheduler: enqueued %s on %s", entry.name, entry.queue)
            enqueued.append(entry.name)
        self.ticks += 1
        heartbeat = max(30, math.ceil(self.tick_seconds * 3))
        self.connection.set(f"{HEARTBEAT_PREFIX}{self.name}", self.ticks, ex=heartbeat)
        return enqueued

    def run(self) -> None:
        """Tick until ``stop`` is set; a Redis outage is two log lines, not an end."""
        away_since: float | None = None
        while not self.stop.is_set():
            try:
                self.tick()
            except LOST as exc:
                if away_since is None:
                    away_since = time.monotonic()
                    log.warning("Scheduler: Redis unreachable (%s); trying again every %s s", exc, self.tick_seconds)
            else:
                if away_since is not None:
                    log.warning("Scheduler: Redis is back after %.0f s", time.monotonic() - away_since)
                    away_since = None
            self.stop.wait(self.tick_seconds)
