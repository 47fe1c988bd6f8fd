"""The one way SSPM reaches Redis: ``connect(SSPM_REDIS_URL)`` for the app, the worker and the scheduler.

``SSPM_REDIS_URL`` is either a plain ``redis://`` (or ``rediss://``,
``unix://``) URL, handed to redis-py as it is, or a Sentinel group::

    redis+sentinel://[:password@]host1:port1,host2:port2,host3:port3/<service_name>[/<db>]

for which the client is redis-py's ``Sentinel(...).master_for(service)``:
its connection pool asks the sentinels where the primary is each time it
opens a connection, and drops a connection that meets a demoted primary
(``READONLY``), so after a failover every user of the client (RQ's blocking
pops, the scheduler's claims, the pages) reaches the new primary at its
next connection without a restart. While no primary is known (the seconds
of the failover) each command raises a ``ConnectionError`` like a Redis
that is down, which every caller already treats as "Redis away".

The password, if any, is the data nodes' (``requirepass`` on the primary
and its replicas); the sentinels are asked without one. The form is the
one the ``limits`` library documents for its own Sentinel storage.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
from redis.exceptions import RedisError
from redis.sentinel import Sentinel, SentinelConnectionPool

log = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel"
#: Sentinel's own default port, for an address written without one.
SENTINEL_PORT = 26379
_PLAIN_SCHEMES = ("redis", "rediss", "unix")
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?$")
_SERVICE = re.compile(r"^[A-Za-z0-9_.-]+$")


class BadRedisUrl(ValueError):
    """SSPM_REDIS_URL cannot be used; the message says why in a line, without the password."""


@dataclass(frozen=True)
class SentinelGroup:
    """What a ``redis+sentinel://`` URL names: where to ask, for which service, and which database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None
    username: str | None = None


def is_sentinel(url: str) -> bool:
    return url.strip().lower().startswith(SENTINEL_SCHEME + "://")


def parse_sentinel(url: str) -> SentinelGroup:
    """The sentinels, service and database of a ``redis+sentinel://`` URL; BadRedisUrl if it is not one."""
    scheme, _, rest = url.strip().partition("://")
    if scheme.lower() != SENTINEL_SCHEME or not rest:
        raise BadRedisUrl(f"SSPM_REDIS_URL must start with {SENTINEL_SCHEME}:// for a Sentinel group")
    netloc, _, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        if not colon or not secret:
            raise BadRedisUrl("SSPM_REDIS_URL: write the password as :password@ before the sentinels")
        username, password = (unquote(user) or None), unquote(secret)
    sentinels = tuple(_address(one) for one in hosts.split(","))
    parts = path.split("/") if path else []
    if parts and parts[-1] == "":
        parts.pop()  # a trailing slash
    if not parts or not _SERVICE.match(parts[0]):
        raise BadRedisUrl(
            "SSPM_REDIS_URL names no Sentinel service: write redis+sentinel://host:port,host:port/<service_name>[/<db>]"
        )
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise BadRedisUrl("SSPM_REDIS_URL: after the service name comes only the database number, as in /sspm/0")
    db = int(parts[1]) if len(parts) == 2 else 0
    return SentinelGroup(sentinels, parts[0], db, password, username)


def _address(text: str) -> tuple[str, int]:
    found = _ADDRESS.match(text.strip())
    if not found:
        raise BadRedisUrl(f"SSPM_REDIS_URL: {text.strip()!r} is not a sentinel address (host:port)")
    port = int(found["port"]) if found["port"] else SENTINEL_PORT
    if not 0 < port < 65536:
        raise BadRedisUrl(f"SSPM_REDIS_URL: {text.strip()!r} has no usable port")
    return found["v6"] or found["host"], port


def problem(url: str) -> str | None:
    """Why ``url`` cannot be SSPM_REDIS_URL, in one line (for the settings check); None if it can."""
    if is_sentinel(url):
        try:
            parse_sentinel(url)
        except BadRedisUrl as exc:
            return str(exc)
        return None
    scheme = url.strip().partition("://")[0].lower()
    if scheme not in _PLAIN_SCHEMES:
        return f"SSPM_REDIS_URL must be a redis://, rediss://, unix:// or {SENTINEL_SCHEME}:// URL"
    return None


def connect(
    url: str, *, socket_timeout: float, socket_connect_timeout: float | None = None, **options: Any
) -> redis.Redis:
    """A redis-py client for SSPM_REDIS_URL; it opens no connection until first used.

    ``options`` go to every connection to Redis itself (``health_check_interval``,
    ``decode_responses``...). The sentinels are asked with the same timeouts.
    """
    connect_timeout = socket_timeout if socket_connect_timeout is None else socket_connect_timeout
    if not is_sentinel(url):
        return redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout, **options
        )
    group = parse_sentinel(url)
    asking = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
    sentinel = Sentinel(list(group.sentinels), sentinel_kwargs=asking)  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        group.service,
        db=group.db,
        username=group.username,
        password=group.password,
        **asking,
        **options,
    )
    return client


#: How long a write that must survive a failover waits for a replica's acknowledgement (milliseconds).
REPLICA_WAIT_MS = 250
#: How long the primary's count of connected replicas is trusted before it is asked again (seconds).
REPLICAS_KNOWN_FOR = 5.0
_replicas_seen: weakref.WeakKeyDictionary[redis.Redis, tuple[float, int]] = weakref.WeakKeyDictionary()


def replicated(client: redis.Redis) -> int | None:
    """Wait until a replica holds what this client wrote; how many do (None: not under Sentinel).

    Redis replicates asynchronously: a job queued on the primary just before
    it dies may never reach the replica the sentinels promote, and the email
    it stood for is lost. Under Sentinel, a queued job therefore waits (at
    most ``REPLICA_WAIT_MS``, Redis's WAIT) until one replica has it. While
    the primary has no replica connected (after a failover, until the old
    primary comes back as a replica) there is nothing to wait for: 0 at once,
    the job queued as on a Redis without replicas. The primary's count is
    asked at most every ``REPLICAS_KNOWN_FOR`` seconds, and a wait that no
    replica answered counts as none for that long too: at most one wait in
    vain per client in that time. Never raises: see below.
    """
    if not isinstance(client.connection_pool, SentinelConnectionPool):
        return None
    try:
        now = time.monotonic()
        known = _replicas_seen.get(client)
        if known is None or known[0] < now:
            replicas = int(client.info("replication").get("connected_slaves", 0))
            known = (now + REPLICAS_KNOWN_FOR, replicas)
            _replicas_seen[client] = known
        if known[1] == 0:
            return 0
        acknowledged = int(client.execute_command("WAIT", 1, REPLICA_WAIT_MS))  # type: ignore[no-untyped-call]
    except RedisError as exc:
        # The job is queued (its transaction was answered); only the confirmation is lost, with the
        # primary. Saying "try again" now would send a second email if the job did survive.
        log.warning("a queued job's replication could not be confirmed: %s", exc)
        return 0
    if acknowledged == 0:  # its replicas are gone (or this is a new primary): stop waiting for a while
        _replicas_seen[client] = (time.monotonic() + REPLICAS_KNOWN_FOR, 0)
    return acknowledged
