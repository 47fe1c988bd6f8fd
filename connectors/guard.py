"""How long one app process lets its requests wait on the directory: the one place.

A web process serves every page from a few threads (gunicorn ``--threads``).
A directory that stops answering, without refusing (a frozen server, a
black-holed network), holds each thread that calls it for a whole timeout;
with as many such requests as threads, pages that never touch the directory
(static files, the home page) queue behind them. Measured before this
module existed: slapd SIGSTOPped, 8 sign-ins waiting on 2 x 4 threads, a
static file took 4.9 s (bench/frozen_directory.py). Two rules, per process,
keep the other threads free:

- **A bulkhead.** At most ``max_calls`` directory calls are in flight at
  once; a caller beyond that waits for a free slot, then fails as
  unavailable. Set below the threads per process, it leaves the rest to
  pages that do not need the directory. Waiting a moment, rather than
  failing at once, is what keeps a burst on a healthy directory (calls of
  a few milliseconds) from becoming 503s; but nobody waits behind calls
  that have already been waiting ``queue_timeout`` seconds, since those
  are stuck, not busy: a caller waits at most until the oldest call in
  flight is that old. Otherwise every request arriving in the first
  seconds of an outage would still hold a thread for ``queue_timeout``,
  and the pages queued behind them would wait for all of those in turn
  (measured: a static file then took 2.8 s instead of 0.1 s).
- **A breaker.** Once a call got no answer in time, every call fails at
  once for ``retry_after`` seconds, and then one call at a time (a probe)
  tries again until one gets an answer. So a frozen directory costs one
  timeout per ``retry_after``, on one thread, instead of one per request.
  Only "no answer in time" trips it: a refused connection already fails in
  a millisecond, and tripping on it would keep SSPM refusing for a while
  after the directory came back.

A directory that answers slowly but within its timeout trips nothing: the
bulkhead alone sheds what it cannot keep up with. Everything here is
in-process state; each gunicorn worker has its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from connectors.directory import DirectoryUnavailable

log = logging.getLogger(__name__)


class NoAnswer(DirectoryUnavailable):
    """The directory did not answer in time (as opposed to refusing at once).

    Raised by connections; the one failure that opens the breaker.
    """


class Guard:
    """The bulkhead and the breaker of one directory, in one process."""

    def __init__(self, *, max_calls: int, queue_timeout: float, retry_after: float) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        self._max_calls = max_calls
        self._queue_timeout = queue_timeout
        self._retry_after = retry_after
        self._changed = threading.Condition()
        #: When each call in flight started (time.monotonic()), by call.
        self._started: dict[object, float] = {}
        #: While set, the breaker is open: nothing is tried before this moment (time.monotonic()).
        self._open_until: float | None = None
        self._probing = False
        self._local = threading.local()

    @property
    def in_flight(self) -> int:
        """Directory calls of this process running right now."""
        with self._changed:
            return len(self._started)

    @property
    def open(self) -> bool:
        """Whether calls currently fail at once (the directory did not answer lately)."""
        with self._changed:
            return self._open_until is not None

    @contextmanager
    def call(self) -> Iterator[None]:
        """One directory call: a slot for its duration, and its outcome for the breaker.

        Nested calls from the same thread (a connector method using another)
        share the outer call's slot, so they can never wait on themselves.
        """
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        call, probe = self._enter()
        self._local.depth = 1
        answered = True
        try:
            yield
        except NoAnswer:
            answered = False
            raise
        finally:
            self._local.depth = 0
            self._leave(call, probe, answered)

    def _enter(self) -> tuple[object, bool]:
        """Take a slot, or raise DirectoryUnavailable; the call's token, and whether it is the breaker's probe."""
        deadline = time.monotonic() + self._queue_timeout
        with self._changed:
            while True:
                now = time.monotonic()
                probe = False
                if self._open_until is not None:
                    if now < self._open_until or self._probing:
                        raise DirectoryUnavailable(
                            "the directory did not answer in time a moment ago; not asking it again yet"
                        )
                    probe = True
                if len(self._started) < self._max_calls:
                    self._probing = self._probing or probe
                    call = object()
                    self._started[call] = now
                    return call, probe
                # Wait for a slot, but not behind calls that are stuck rather than busy.
                stuck_at = min(self._started.values()) + self._queue_timeout
                left = min(deadline, stuck_at) - now
                if left <= 0:
                    raise DirectoryUnavailable(
                        f"all {self._max_calls} directory calls this process allows (LDAP_MAX_CALLS) are taken, "
                        f"by calls waiting on the directory for up to {self._queue_timeout:g} s "
                        "(LDAP_QUEUE_TIMEOUT) or more"
                    )
                self._changed.wait(left)

    def _leave(self, call: object, probe: bool, answered: bool) -> None:
        with self._changed:
            del self._started[call]
            if probe:
                self._probing = False
            if not answered:
                if self._open_until is None:
                    log.warning(
                        "the directory did not answer in time: directory calls fail at once for %g s, "
                        "then one at a time tries again",
                        self._retry_after,
                    )
                self._open_until = time.monotonic() + self._retry_after
            elif self._open_until is not None:
                log.warning("the directory answers again")
                self._open_until = None
            self._changed.notify_all()
