"""Prometheus metrics, once for every process: what is counted, how it is timed, how it is read.

The web app, the workers and the scheduler all count here; each call site
is one line (a finished request, a directory call, a sent email, a job run,
a limit hit, a failed recovery). Labels are words from SSPM's own closed
vocabularies (an endpoint, a directory operation, a job's name, a
``Reason``), never a user name, an address, a DN or a client IP: those
would make a series per person, and put them in a monitoring system.

Under gunicorn, several processes count at once: with
``PROMETHEUS_MULTIPROC_DIR`` set (in the environment, before the process
starts) each process writes its own files there, and any process on the host
reads them all when scraped, so the app's ``/metrics`` includes the workers
and the scheduler of the same host. Without it (tests, one process) the
default registry is used. The email queue's depth is not counted by anyone:
it is read from Redis at scrape time.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest, make_wsgi_app, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import get_current_job

from connectors.directory import Changes, Directory, DirectoryError, DirectoryUnavailable

if TYPE_CHECKING:
    from sspm.infra.settings import Settings

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Seconds a job may reasonably take, from a one-line email to a full sync.
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

REQUESTS = Counter("sspm_requests", "Requests answered, by page (Flask endpoint) and status.", ["page", "status"])
REQUEST_SECONDS = Histogram("sspm_request_duration_seconds", "Time to answer a request, by page.", ["page"])
DIRECTORY_CALLS = Counter(
    "sspm_directory_calls",
    "Directory calls by operation and outcome: ok (it answered, whatever it decided), refused "
    "(it answered with an error: misconfigured, login taken...), unavailable (no answer in time), error (a bug).",
    ["operation", "outcome"],
)
DIRECTORY_SECONDS = Histogram(
    "sspm_directory_duration_seconds", "Time of a directory call, by operation.", ["operation"]
)
EMAILS = Counter(
    "sspm_emails",
    "Emails handed to the SMTP server (sent) or not: retried later, or failed for good.",
    ["outcome"],
)
JOB_RUNS = Counter("sspm_job_runs", "Job runs by job (dotted name) and outcome (ok or failed).", ["job", "outcome"])
JOB_SECONDS = Histogram("sspm_job_duration_seconds", "Time of a job run, by job.", ["job"], buckets=_JOB_BUCKETS)
LIMIT_HITS = Counter(
    "sspm_limit_hits",
    "Requests refused by an attempt limit, by what it counts: ip, account (the login) or email.",
    ["scope"],
)
RECOVERY_FAILURES = Counter(
    "sspm_recovery_failures",
    "Forgot Password and Unlock Account ended without success, by purpose and reason (sspm.policy.reasons).",
    ["purpose", "reason"],
)

#: Each label value a limit hit may carry.
LIMIT_SCOPES = ("ip", "account", "email")


# -- what each call site counts ------------------------------------------------------------


def request_done(page: str, status: int, seconds: float) -> None:
    """A request answered: ``page`` is the Flask endpoint (never the path, which may carry a name or token)."""
    REQUESTS.labels(page, str(status)).inc()
    REQUEST_SECONDS.labels(page).observe(seconds)


def job_ran(name: str, failed: bool, seconds: float) -> None:
    JOB_RUNS.labels(name, "failed" if failed else "ok").inc()
    JOB_SECONDS.labels(name).observe(seconds)


def email_sent() -> None:
    EMAILS.labels("sent").inc()


def email_not_sent() -> None:
    """An email the SMTP server did not take: "retried" if the job running it will be run again (RQ), else "failed"."""
    current = get_current_job()
    EMAILS.labels("retried" if current is not None and current.should_retry else "failed").inc()


def limit_hit(scope: str) -> None:
    """One of ``LIMIT_SCOPES``."""
    if scope not in LIMIT_SCOPES:
        raise ValueError(f"no limit scope {scope!r}: one of {', '.join(LIMIT_SCOPES)}")
    LIMIT_HITS.labels(scope).inc()


def recovery_failed(purpose: str, reason: str) -> None:
    """``purpose``: forgot or unlock; ``reason``: a ``Reason`` (a closed vocabulary, never free text)."""
    RECOVERY_FAILURES.labels(purpose, reason).inc()


# -- the directory, timed ------------------------------------------------------------------

#: The contract's methods (connectors.directory): what is timed; any other attribute passes through.
OPERATIONS = frozenset(name for name in dir(Directory) if not name.startswith("_"))


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, DirectoryUnavailable):
        return "unavailable"
    if isinstance(exc, DirectoryError | ValueError):
        return "refused"
    return "error"


def _count(operation: str, started: float, exc: BaseException | None) -> None:
    DIRECTORY_CALLS.labels(operation, _outcome(exc)).inc()
    DIRECTORY_SECONDS.labels(operation).observe(time.perf_counter() - started)


def _read(operation: str, started: float, items: Iterator[Any]) -> Iterator[Any]:
    """A paged read counts once it is read to its end (or fails), over the whole read."""
    try:
        yield from items
    except BaseException as exc:
        _count(operation, started, exc)
        raise
    _count(operation, started, None)


class _Timed:
    """A directory whose contract's calls are timed and counted; connectors/ stays free of SSPM.

    Attributes outside the contract (a connector's ``guard``) are the
    directory's own, read through, so code and tests that look at them see
    the same object.
    """

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._directory, name)
        if name not in OPERATIONS:
            return found
        directory = self._directory

        def timed(*args: Any, **kwargs: Any) -> Any:
            # The method is looked up at each call, so a connector's method replaced later is the one called.
            return _call(name, getattr(directory, name), *args, **kwargs)

        setattr(self, name, functools.wraps(found)(timed))  # made once per operation
        return timed

    def __repr__(self) -> str:
        return f"timed({self._directory!r})"


def _call(operation: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        result = method(*args, **kwargs)
    except BaseException as exc:
        _count(operation, started, exc)
        raise
    if isinstance(result, Changes):
        return replace(result, accounts=_read(operation, started, result.accounts))
    if isinstance(result, Iterator):
        return _read(operation, started, result)
    _count(operation, started, None)
    return result


def timed(directory: Directory) -> Directory:
    """``directory`` with each call of its contract counted by outcome and timed (sspm.infra.services builds it)."""
    return cast(Directory, _Timed(directory))


# -- reading them --------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, read by prometheus_client when it is imported; None: one process, one registry."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _QueueDepth(Collector):
    """Jobs waiting on each queue, and those waiting for a later time (email retries), read when scraped."""

    def __init__(self, redis: Redis, queues: Sequence[str]) -> None:
        self._redis = redis
        self._queues = tuple(queues)

    def collect(self) -> Iterable[Metric]:
        waiting = GaugeMetricFamily("sspm_queue_depth", "Jobs waiting on each queue (email first).", labels=["queue"])
        later = GaugeMetricFamily(
            "sspm_queue_scheduled", "Jobs waiting for a later time on each queue (retries).", labels=["queue"]
        )
        try:
            for name in self._queues:
                queue = Queue(name, connection=self._redis)
                waiting.add_metric([name], queue.count)
                later.add_metric([name], queue.scheduled_job_registry.count)
        except RedisError as exc:  # /metrics still answers; the depth is missing, not zero
            log.warning("metrics: queue depth not read: %s", exc)
            return
        yield waiting
        yield later


class _Scrape(Collector):
    """What a scrape shows: every process of the host (multiprocess) or this one, and the queues."""

    def __init__(self, redis: Redis | None, queues: Sequence[str]) -> None:
        path = multiprocess_dir()
        self._counted: Collector = REGISTRY
        if path:
            self._counted = multiprocess.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        self._queues = _QueueDepth(redis, queues) if redis is not None else None

    def collect(self) -> Iterable[Metric]:
        yield from self._counted.collect()
        if self._queues is not None:
            yield from self._queues.collect()


def exposition(redis: Redis | None, queues: Sequence[str]) -> bytes:
    """The text a scrape gets (Prometheus' text format)."""
    return generate_latest(_Scrape(redis, queues))


#: The content type of :func:`exposition`'s text.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_networks(text: str) -> tuple[Network, ...]:
    """SSPM_METRICS_ALLOWED: addresses or networks, comma separated; ValueError naming a wrong one."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an address or a network") from None
    return tuple(networks)


def allowed(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether the client at ``address`` (already the client's, behind trusted proxies) may scrape."""
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return any(client in network for network in networks)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not news."""


def serve(settings: Settings, redis: Redis | None, queues: Sequence[str]) -> ThreadingWSGIServer | None:
    """A worker's or the scheduler's own ``/metrics`` at SSPM_METRICS_ADDRESS:SSPM_METRICS_PORT (0: none).

    For a scraper on another host; only SSPM_METRICS_ALLOWED get it (others
    a 404). A port already taken (another process of the host serves it;
    with the multiprocess dir they all show the same) is logged and
    skipped: the process runs on without it.
    """
    address, port, networks = settings.metrics_address, settings.metrics_port, settings.metrics_allowed
    if not port:
        return None
    scrape = make_wsgi_app(_Scrape(redis, queues))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or not allowed(environ.get("REMOTE_ADDR"), networks):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found\n"]
        return cast(Iterable[bytes], scrape(environ, start_response))

    try:
        server = make_server(address, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    except OSError as exc:
        log.warning("metrics: not served on %s:%s: %s", address, port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics: served at http://%s:%s/metrics", address, server.server_port)
    return server


def process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: a worker's live gauges leave with it (its counters stay counted)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
