"""Short-lived shared state in Redis: challenges, CAPTCHAs, sessions, counters.

Everything here has a TTL and can be lost in a flush without harm (a user
starts a step again). Because it lives in Redis, every app process sees the
same challenges and the same failure counts. The same holds for a Sentinel
failover (``sspm.infra.redisconn``): what the new primary had not yet
received is lost as in a flush, and while no primary answers every call
raises ``StateUnavailable``, so nothing is decided without Redis.
"""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import RedisError

from sspm.infra import redisconn

#: KEYS[1] a list (a set of keys, without their prefix), ARGV[1] that prefix.
_DELETE_LISTED = """
local ended = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    ended = ended + redis.call('DEL', ARGV[1] .. key)
end
redis.call('DEL', KEYS[1])
return ended
"""

#: KEYS[1] a counter ``hit`` made: one event taken back; gone at zero, never made by this.
_UNHIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local left = redis.call('DECR', KEYS[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left
"""


class StateUnavailable(Exception):
    """Redis could not be reached: nothing was recorded, the user tries again."""


class State:
    def __init__(self, url: str, *, prefix: str = "sspm") -> None:
        self.redis = redisconn.connect(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}:{kind}:{key}"

    def check(self) -> None:
        try:
            self.redis.ping()
        except RedisError as exc:
            raise StateUnavailable(f"cannot reach Redis: {exc}") from None

    def put(self, kind: str, key: str, value: dict[str, Any], ttl: int) -> None:
        self._call(self.redis.set, self._key(kind, key), json.dumps(value), ex=max(1, ttl))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self._call(self.redis.get, self._key(kind, key))
        return json.loads(raw) if raw else None

    def take(self, kind: str, key: str) -> dict[str, Any] | None:
        """Read and delete in one step: what is taken can be used once only."""
        raw = self._call(self.redis.getdel, self._key(kind, key))
        return json.loads(raw) if raw else None

    def delete(self, kind: str, key: str) -> None:
        self._call(self.redis.delete, self._key(kind, key))

    # -- values listed under an owner, to be found (and ended) together ----------------------

    def put_listed(self, kind: str, key: str, value: dict[str, Any], ttl: int, *, owner: str, list_ttl: int) -> None:
        """``put``, and list ``key`` under ``owner`` so that ``delete_listed`` finds it.

        ``list_ttl`` must be at least as long as any value listed can live: the
        list is then never gone before what it lists. It is set again at each
        new entry, so it always covers the newest one.
        """
        listed = self._key(f"{kind}-of", owner)
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self._key(kind, key), json.dumps(value), ex=max(1, ttl))
                pipe.sadd(listed, key)
                pipe.expire(listed, max(1, list_ttl))
                pipe.execute()
        except RedisError as exc:
            raise StateUnavailable(str(exc)) from None

    def delete_one_listed(self, kind: str, key: str, *, owner: str) -> None:
        """Delete one value and take it off its owner's list (an emptied list is gone with it)."""
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(kind, key))
                pipe.srem(self._key(f"{kind}-of", owner), key)
                pipe.execute()
        except RedisError as exc:
            raise StateUnavailable(str(exc)) from None

    def delete_listed(self, kind: str, owner: str) -> int:
        """Delete every value listed under ``owner``, and the list; how many still existed.

        One script, so a value listed while this runs is either deleted now
        or stays listed for the next time, never left alive off the list.
        """
        script = self.redis.register_script(_DELETE_LISTED)
        prefix = self._key(kind, "")
        return int(self._call(script, keys=[self._key(f"{kind}-of", owner)], args=[prefix]))

    def touch(self, kind: str, key: str, ttl: int) -> None:
        self._call(self.redis.expire, self._key(kind, key), max(1, ttl))

    def hit(self, kind: str, key: str, window: int) -> int:
        """Count one event in a fixed window that starts with the first one."""
        name = self._key(kind, key)
        try:
            pipe = self.redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, window, nx=True)
            count, _ = pipe.execute()
        except RedisError as exc:
            raise StateUnavailable(str(exc)) from None
        return int(count)

    def unhit(self, kind: str, key: str) -> None:
        """Take back one event :meth:`hit` counted, as one step; a counter already gone stays gone.

        Never DECR alone: on a counter that expired meanwhile it would make one
        at -1 with no expiry, a free try that never ends.
        """
        script = self.redis.register_script(_UNHIT)
        self._call(script, keys=[self._key(kind, key)])

    def count(self, kind: str, key: str) -> int:
        raw = self._call(self.redis.get, self._key(kind, key))
        return int(raw) if raw else 0

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RedisError as exc:
            raise StateUnavailable(str(exc)) from None

    def close(self) -> None:
        self.redis.close()
