"""Short-lived shared state in Redis: challenges, CAPTCHAs, sessions, counters.

Everything here has a TTL and can be lost in a flush without harm (a user
starts a step again). Because it lives in Redis, every app process sees the
same challenges and the same failure counts.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from redis.exceptions import RedisError


class StateUnavailable(Exception):
    """Redis could not be reached: nothing was recorded, the user tries again."""


class State:
    def __init__(self, url: str, *, prefix: str = "sspm") -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
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
