"""Signed-in sessions in Redis, for either realm, with idle and absolute timeouts.

The browser holds only a random handle; the record it points at lives in
Redis under a digest of that handle, so a copied Redis dump is no cookie.
The idle timeout is the record's TTL, pushed back at each use; the absolute
one is checked against the time the session started, however busy it is.
Ending a session deletes its record, so a copied cookie is worthless
afterwards.

Each record is also listed under its owner (a directory account's
immutable id, or a staff member's id), so that when a password is set, an
account unlocked or a staff member removed, ``end_all`` ends every session
of that owner at once: whoever was signed in is signed out at their next
request. The realms never share a record, a list or a timeout.

No Flask here: the cookie side is sspm.web.auth; use cases and jobs end
sessions with plain Python.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sspm.infra.settings import Settings
from sspm.infra.state import State
from sspm.policy.realm import Realm

#: Redis kind of each realm's records (its lists are "<kind>-of"), and the record field naming the owner.
_KIND = {Realm.USER: "session", Realm.STAFF: "staff-session"}
_OWNER = {Realm.USER: "account_id", Realm.STAFF: "staff_id"}


@dataclass(frozen=True)
class Timeouts:
    idle_seconds: int
    absolute_seconds: int

    @classmethod
    def of(cls, settings: Settings, realm: Realm) -> Timeouts:
        if realm is Realm.STAFF:
            return cls(settings.staff_session_idle_minutes * 60, settings.staff_session_max_hours * 3600)
        return cls(settings.session_idle_minutes * 60, settings.session_max_hours * 3600)


@dataclass(frozen=True)
class Record:
    """A live session: whose, since when, and what its realm keeps in it."""

    realm: Realm
    owner: str
    started: float
    values: Mapping[str, Any]


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def start(
    state: State,
    realm: Realm,
    timeouts: Timeouts,
    owner: str,
    values: Mapping[str, Any],
    *,
    started: float | None = None,
) -> str:
    """Open a session and return its new handle, for the browser only.

    ``started`` carries the absolute timeout over when a session is renewed.
    """
    handle = secrets.token_urlsafe(32)
    record = {**values, _OWNER[realm]: owner, "started": time.time() if started is None else started}
    # No session outlives the absolute limit, so neither need its owner's list of them.
    state.put_listed(
        _KIND[realm],
        _digest(handle),
        record,
        ttl=timeouts.idle_seconds,
        owner=owner,
        list_ttl=max(timeouts.absolute_seconds, timeouts.idle_seconds),
    )
    return handle


def read(state: State, realm: Realm, timeouts: Timeouts, handle: str) -> Record | None:
    """The live session of a handle, or None; each read while it lives pushes its idle timeout back.

    A session past its absolute timeout is ended here, at its first use after it.
    """
    kind, key = _KIND[realm], _digest(handle)
    stored = state.get(kind, key)
    if stored is None:
        return None
    owner = str(stored.pop(_OWNER[realm]))
    started = float(stored.pop("started"))
    if time.time() - started >= timeouts.absolute_seconds:
        state.delete_one_listed(kind, key, owner=owner)
        return None
    state.touch(kind, key, timeouts.idle_seconds)
    return Record(realm, owner, started, stored)


def renew(state: State, realm: Realm, timeouts: Timeouts, handle: str, changes: Mapping[str, Any]) -> str | None:
    """Replace a live session by one under a new handle, with ``changes`` made; the new handle, or None if it ended.

    A session that gains trust (re-authenticated) gets a new handle, so an
    old copy of its cookie does not gain it too; and a new record, rather
    than one written over, cannot bring back a session ``end_all`` ended in
    between (whatever it writes is listed, and ended by the next one).
    """
    record = read(state, realm, timeouts, handle)
    if record is None:
        return None
    renewed = start(state, realm, timeouts, record.owner, {**record.values, **changes}, started=record.started)
    end(state, realm, handle)
    return renewed


def end(state: State, realm: Realm, handle: str) -> None:
    """End one session (sign-out) and take it off its owner's list."""
    kind, key = _KIND[realm], _digest(handle)
    stored = state.get(kind, key)
    if stored is not None:
        state.delete_one_listed(kind, key, owner=str(stored[_OWNER[realm]]))


def end_all(state: State, owner: str, realm: Realm = Realm.USER) -> int:
    """End every session of an owner in a realm, wherever it was opened; how many there were.

    Plain Python (no request needed): the use cases that set a password call it.
    """
    return state.delete_listed(_KIND[realm], owner)
