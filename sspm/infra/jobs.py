"""The job runtime: what runs off the request, on which queue, with what, and what it did.

Queues are named by purpose, so an operator can give each its own worker:
``EMAIL`` (a reset link someone is waiting for), ``SYNC`` (long runs
against the directory), ``HOUSEKEEPING`` (whatever can wait). One worker
serving several takes them in ``QUEUES`` order.

A job is put on a queue by its function's dotted name (``enqueue``), so
this layer never imports the feature that runs it, and its arguments are
plain values: ids, a language, a time, an address. Never a secret (a
password, an answer, a link's token): a job sits in Redis, and in RQ's
registries long after it ran. The parameters of a ``@job`` function are
checked for names that say otherwise, and ``enqueue`` takes nothing but
strings, numbers, booleans and tuples of them (a batch's recipients: one
job for many, as RQ's own bookkeeping per job costs more than a short job).

A ``@job`` function gets the process's ``Services`` as its first argument:
the Services built in this process (the worker builds them once at start,
as the web app and the command line do) whose Redis the job came from, or
the latest built when it was called directly. Each run is logged (name,
queue, outcome, duration) and kept as a ``JobRun`` row, never with its
arguments. A job carries, in its meta (not its arguments), the id of the
request that queued it, and its log lines carry that id (sspm.infra.logs):
one search finds a reset request and the email job it queued.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Concatenate, ParamSpec

from redis import Redis
from rq import Queue, Retry
from rq.job import Job, get_current_job
from sqlalchemy.exc import SQLAlchemyError

from sspm.infra import logs, metrics, redisconn
from sspm.infra.store import JobRun, utcnow
from sspm.policy.auditchain import SECRET_WORDS

if TYPE_CHECKING:
    from sspm.infra.services import Services

log = logging.getLogger(__name__)

#: Someone is waiting for it (a reset link) or must hear of it now (a notification).
EMAIL = "email"
#: Long runs against the directory.
SYNC = "sync"
#: What can wait: clean-ups, reminders.
HOUSEKEEPING = "housekeeping"
#: Every queue, in the order one worker serving them all takes them.
QUEUES = (EMAIL, SYNC, HOUSEKEEPING)

#: What a job argument may be: a value to look something up by, or a tuple of them; never an object.
Plain = str | int | float | bool | None
Arg = Plain | tuple["Arg", ...]
_PLAIN = (str, int, float, bool, type(None))
P = ParamSpec("P")

_OUTCOME_LENGTH = 64
#: The key of a job's meta (not its arguments) holding the id of the request that queued it (sspm.infra.logs).
REQUEST_ID = "request_id"


class Queues:
    """The queues on one Redis, for putting jobs on them."""

    def __init__(self, connection: Redis) -> None:
        self._queues = {name: Queue(name, connection=connection) for name in QUEUES}

    def enqueue(
        self,
        queue: str,
        function: str,
        *args: Arg,
        job_id: str | None = None,
        retry: Retry | None = None,
        failure_ttl: int | None = None,
        timeout: int | None = None,
    ) -> str:
        """Put ``function`` (a dotted name) on ``queue`` with ``args``; the job's id.

        ``timeout``: seconds the run may take before RQ stops it (RQ's own
        default, 180, otherwise; a sync of a large directory will want more).
        Raises RedisError if Redis cannot take it: nothing was queued. Under
        Sentinel, returns once a replica holds the job too (``redisconn.replicated``).
        """
        _check(args)
        found = self._queue(queue)
        # One round trip: RQ's enqueue alone sends two (issue 11: a notification on every change).
        with found.connection.pipeline() as pipe:
            job = found.enqueue(
                function,
                *args,
                job_id=job_id,
                retry=retry,
                failure_ttl=failure_ttl,
                job_timeout=timeout,
                meta=_meta(),
                pipeline=pipe,
            )
            pipe.execute()
        redisconn.replicated(found.connection)
        return str(job.id)

    def enqueue_many(
        self,
        queue: str,
        function: str,
        calls: Sequence[tuple[Arg, ...]],
        *,
        retry: Retry | None = None,
        failure_ttl: int | None = None,
        timeout: int | None = None,
    ) -> list[str]:
        """Put one job per ``calls`` item on ``queue``, all in one Redis transaction; their ids.

        All or nothing: raises RedisError if Redis cannot take them, and then none was queued.
        """
        for args in calls:
            _check(args)
        found = self._queue(queue)
        meta = _meta()
        datas = [
            Queue.prepare_data(function, args, retry=retry, failure_ttl=failure_ttl, timeout=timeout, meta=meta)
            for args in calls
        ]
        ids = [str(job.id) for job in found.enqueue_many(datas)]
        redisconn.replicated(found.connection)
        return ids

    def _queue(self, name: str) -> Queue:
        if name not in self._queues:
            raise ValueError(f"no queue {name!r}: one of {', '.join(QUEUES)}")
        return self._queues[name]


def _meta() -> dict[str, str] | None:
    """What a job carries beside its arguments: the id of the request (or run) that queued it."""
    said = logs.current_request_id()
    return {REQUEST_ID: said} if said is not None else None


def request_id_of(current: Job | None) -> str | None:
    """The id a job's log lines carry: the one it was queued under, else the current one, else one of its own."""
    if current is None:
        return logs.current_request_id()
    queued_under = logs.sane_request_id(current.meta.get(REQUEST_ID))
    return queued_under or logs.current_request_id() or logs.new_request_id()


def _check(args: Sequence[object]) -> None:
    for arg in args:
        if isinstance(arg, tuple):
            _check(arg)
        elif not isinstance(arg, _PLAIN):
            raise TypeError(f"a job argument is a plain value or a tuple of them, not {type(arg).__name__}")


def job(function: Callable[Concatenate[Services, P], str]) -> Callable[P, str]:
    """Make ``function(services, *args) -> outcome`` a job: run with the process's Services, and recorded.

    The outcome is a short word ("sent", "no-recipient"); a job that raises
    is recorded as failed and the exception goes on to RQ (which retries it
    if it was queued with a retry).
    """
    name = f"{function.__module__}.{function.__qualname__}"
    said = [p for p in list(inspect.signature(function).parameters)[1:] if any(w in p.lower() for w in SECRET_WORDS)]
    if said:
        raise TypeError(f"job {name}: an argument named {said[0]!r} would carry a secret through Redis")

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> str:
        current = get_current_job()
        the = services_for(current.connection if current else None)
        queue = current.origin if current else "-"
        started_at, started = utcnow(), time.perf_counter()
        outcome = "failed"
        with logs.request_id(request_id_of(current)):
            try:
                outcome = function(the, *args, **kwargs)
            except BaseException as exc:
                outcome = f"failed: {type(exc).__name__}"
                raise
            finally:
                _record(the, name, queue, current.id if current else None, started_at, started, outcome)
        return outcome

    return run


def _record(
    the: Services, name: str, queue: str, job_id: str | None, started_at: datetime, started: float, outcome: str
) -> None:
    took = time.perf_counter() - started
    metrics.job_ran(name, outcome.startswith("failed"), took)
    log.info("job %s on %s: %s in %.1f ms", name, queue, outcome, took * 1000)
    try:
        with the.store.session() as session:
            session.add(
                JobRun(
                    job_id=job_id,
                    name=name[:128],
                    queue=queue[:32],
                    started_at=started_at,
                    duration_ms=round(took * 1000, 3),
                    outcome=outcome[:_OUTCOME_LENGTH],
                )
            )
    except SQLAlchemyError as exc:  # the job's own outcome stands; only its record is lost
        log.warning("job %s on %s: run not recorded: %s", name, queue, exc)


# -- the process's Services ---------------------------------------------------------------

#: Every Services built in this process and not closed, by their Redis connection's id.
_built: weakref.WeakValueDictionary[int, Services] = weakref.WeakValueDictionary()
_lock = threading.RLock()


def attach(services: Services) -> None:
    """Make ``services`` what jobs fetched through its Redis run with (``build()`` does)."""
    with _lock:
        _built[id(services.state.redis)] = services


def detach(services: Services) -> None:
    with _lock:
        if _built.get(id(services.state.redis)) is services:
            del _built[id(services.state.redis)]


def services_for(connection: Redis | None) -> Services:
    """The Services a job gets: those whose Redis it came from, else the latest built, else new ones.

    A process has one Services (the worker's, the web app's); only a test
    or a benchmark running jobs in its own process holds several, and a job
    then gets those of the Redis its worker reads. A process that never
    built any (RQ's own ``rq worker``) builds them once, from the settings.
    """
    with _lock:
        if connection is not None and (found := _built.get(id(connection))) is not None:
            return found
        latest = list(_built.values())
        if latest:
            return latest[-1]
        from sspm.infra import settings
        from sspm.infra.services import build

        return build(settings.load())  # attaches itself (the lock is re-entrant)
