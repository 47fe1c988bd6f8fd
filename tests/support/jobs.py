"""Job functions for the worker stories: real ``@job``s that a ``python worker.py``
subprocess imports by name, as it imports SSPM's own.

They talk only to Redis (the process's Services give them the connection),
so a test sees from outside what ran, in which order, and can hold a job
in the middle of its run for as long as the story needs.
"""

from __future__ import annotations

import time

from sspm.infra import jobs
from sspm.infra.services import Services

#: What ran, in the order it ran: the labels the jobs were given.
RAN = "sspm-test:ran"
#: The labels of the held jobs that have started.
STARTED = "sspm-test:started"
#: A held job waits for a value on this key (plus its label), then ends.
RELEASE = "sspm-test:release:"
#: However the test ends, a held job gives up after this long: a worker is never stuck for good.
GIVE_UP_SECONDS = 120


@jobs.job
def note(the: Services, label: str) -> str:
    """A job that ran: its label goes at the end of RAN."""
    the.state.redis.rpush(RAN, label)
    return "noted"


@jobs.job
def hold(the: Services, label: str) -> str:
    """A long run (a sync of the whole directory, say): starts, then waits to be released."""
    redis = the.state.redis
    redis.rpush(STARTED, label)
    deadline = time.monotonic() + GIVE_UP_SECONDS
    released = None
    # A second at a time: well inside the connection's socket timeout.
    while released is None and time.monotonic() < deadline:
        released = redis.blpop([RELEASE + label], timeout=1)
    redis.rpush(RAN, label)
    return "released" if released else "gave-up"


@jobs.job
def fail(the: Services, label: str) -> str:
    """A job that fails, as a job does when what it needs is away."""
    raise RuntimeError("this job fails")
