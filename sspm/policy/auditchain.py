"""The audit trail's hash chain: pure policy, no database.

Each audit row carries the SHA-256 of its own content together with the
digest of the row before it, so editing, deleting or slipping in a row
breaks a link that ``verify`` finds and names. A separate head record
holds the last position and digest, so cutting rows off the end (or
appending a well-forged one) shows too.

The digest covers one canonical JSON form of the row (sorted keys, no
spaces, UTF-8, times as UTC with microseconds), which both SQLite and
PostgreSQL give back unchanged; it must never change, or every row written
before would read as altered. Anyone who can rewrite the database can
recompute a whole chain: shipping each event as it happens to a separate
system (syslog, a JSON log) is what keeps a copy out of their reach.

Archiving old rows (``python -m sspm audit archive``) takes a prefix of the
chain out to a file and leaves one checkpoint row in its place: it carries
the last archived row's position and digest, where the chain goes on, and
an HMAC over them keyed from SSPM_SECRET_KEY (``sign_checkpoint``). Only a
first row may be a checkpoint, and only a signed one: anyone who can write
to the database but does not hold the key cannot cut the start of the trail
and leave a checkpoint that verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

#: The "previous digest" of the first row.
GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """What one audit row says, exactly as it is hashed (and stored)."""

    seq: int
    at: datetime
    actor_kind: str
    actor_id: str | None
    actor_role: str | None
    action: str
    outcome: str
    account_id: str | None
    subject: str
    source_ip: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": utc_text(self.at),
            "actor": {"kind": self.actor_kind, "id": self.actor_id, "role": self.actor_role},
            "action": self.action,
            "outcome": self.outcome,
            "account_id": self.account_id,
            "subject": self.subject,
            "source_ip": self.source_ip,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """The entry ``as_dict`` gave (an archive file's line); KeyError/ValueError/TypeError if it is not one."""
        actor = data["actor"]
        return cls(
            seq=int(data["seq"]),
            at=datetime.strptime(str(data["at"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            actor_kind=str(actor["kind"]),
            actor_id=actor["id"],
            actor_role=actor["role"],
            action=str(data["action"]),
            outcome=str(data["outcome"]),
            account_id=data["account_id"],
            subject=str(data["subject"]),
            source_ip=str(data["source_ip"]),
            details=dict(data["details"]),
        )


def utc_text(moment: datetime) -> str:
    """One spelling of an instant whatever the database hands back.

    SQLite returns naive datetimes (SSPM writes UTC); PostgreSQL returns
    them in the session's time zone.
    """
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: Entry, prev: str) -> bytes:
    content = entry.as_dict() | {"prev": prev}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(entry: Entry, prev: str) -> str:
    return hashlib.sha256(canonical(entry, prev)).hexdigest()


#: The action of the row that stands for an archived prefix of the chain.
CHECKPOINT = "audit_checkpoint"
#: Its details' entry holding the signature (not itself signed).
SIGNATURE = "hmac"


def checkpoint_key(secret_key: str) -> bytes:
    """The key checkpoints are signed with: SSPM_SECRET_KEY's, for this purpose only."""
    return hmac.new(secret_key.encode(), b"sspm audit checkpoint", hashlib.sha256).digest()


def _signed_text(entry: Entry, prev: str, digest_: str) -> bytes:
    unsigned = {k: v for k, v in entry.details.items() if k != SIGNATURE}
    content = entry.as_dict() | {"details": unsigned, "prev": prev, "digest": digest_}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sign_checkpoint(key: bytes, entry: Entry, prev: str, digest_: str) -> str:
    """The signature of a checkpoint row: over all it says, its digests included."""
    return hmac.new(key, _signed_text(entry, prev, digest_), hashlib.sha256).hexdigest()


def checkpoint_holds(link: Link, key: bytes | None) -> bool:
    """Whether ``link`` is a checkpoint whose signature verifies under ``key``."""
    given = link.entry.details.get(SIGNATURE)
    if key is None or link.entry.action != CHECKPOINT or not isinstance(given, str):
        return False
    return hmac.compare_digest(given, sign_checkpoint(key, link.entry, link.prev, link.digest))


#: Words that name a secret: details keyed by one are refused outright.
SECRET_WORDS = ("password", "answer", "token", "secret", "captcha")


def refuse_secrets(details: Mapping[str, Any]) -> None:
    """Raise if a detail's name says it holds a secret: the trail must never keep one.

    A name is all that can be checked; this catches the easy mistake of
    passing a form's fields through.
    """
    for key in details:
        if any(word in key.lower() for word in SECRET_WORDS):
            raise ValueError(f"audit details must never carry a secret ({key!r})")


@dataclass(frozen=True)
class Link:
    """A stored row: its content, its database id, and the two digests it carries."""

    id: int
    entry: Entry
    prev: str
    digest: str

    @property
    def seq(self) -> int:
        return self.entry.seq


@dataclass(frozen=True)
class Head:
    """The chain's last position and digest, kept apart from the rows."""

    seq: int
    digest: str


class Damage(StrEnum):
    ALTERED = "altered"
    REMOVED = "removed"
    INSERTED = "inserted"
    FORKED = "forked"
    HEAD = "head"


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold, in words an operator can act on."""

    damage: Damage
    seq: int
    row_id: int | None
    what: str

    def __str__(self) -> str:
        return self.what


class Index(Protocol):
    """Finding rows by digest, only needed to explain a break."""

    def with_digest(self, digest: str) -> Sequence[Link]: ...

    def with_prev(self, digest: str) -> Sequence[Link]: ...


class ListIndex:
    """An ``Index`` over rows in memory."""

    def __init__(self, links: Iterable[Link]) -> None:
        self._by_digest: dict[str, list[Link]] = {}
        self._by_prev: dict[str, list[Link]] = {}
        for link in links:
            self._by_digest.setdefault(link.digest, []).append(link)
            self._by_prev.setdefault(link.prev, []).append(link)

    def with_digest(self, digest: str) -> Sequence[Link]:
        return self._by_digest.get(digest, [])

    def with_prev(self, digest: str) -> Sequence[Link]:
        return self._by_prev.get(digest, [])


def _row(link: Link) -> str:
    return f"row {link.seq} (id {link.id}, {utc_text(link.entry.at)}, {link.entry.action})"


def verify(links: Iterable[Link], head: Head | None, index: Index, checkpoint_key: bytes | None = None) -> Break | None:
    """The first break in ``links`` (in chain order), or None when the whole chain holds.

    Walks once, keeping only the previous row; ``index`` is asked only to
    tell, at a break, a removed row from an inserted or a rewritten one.
    A first row that is a checkpoint (the rows before it archived) is where
    the chain starts if its signature verifies under ``checkpoint_key``.
    """
    before: Link | None = None
    first: Link | None = None
    for link in links:
        if first is None and link.entry.action == CHECKPOINT:
            if not checkpoint_holds(link, checkpoint_key):
                unsigned = "cannot be checked without SSPM_SECRET_KEY" if checkpoint_key is None else "is not signed"
                what = f"{_row(link)}, the archive checkpoint, {unsigned} with this server's key"
                return Break(Damage.ALTERED, link.seq, link.id, what)
            first = before = link
            continue
        first = first or link
        expected_prev = before.digest if before else GENESIS
        expected_seq = before.seq + 1 if before else 1
        if link.prev != expected_prev:
            return _explain(before, link, first, head, index)
        if digest(link.entry, link.prev) != link.digest:
            return Break(
                Damage.ALTERED, link.seq, link.id, f"{_row(link)} was altered: it no longer matches its digest"
            )
        if link.seq > expected_seq:
            return Break(
                Damage.REMOVED, link.seq, link.id, f"row {expected_seq} was removed: {_row(link)} is numbered after it"
            )
        if link.seq < expected_seq:
            return Break(Damage.INSERTED, link.seq, link.id, f"{_row(link)} was inserted: its number is taken")
        before = link
    return _check_head(before, head, index)


def _explain(before: Link | None, link: Link, first: Link, head: Head | None, index: Index) -> Break:
    expected_prev = before.digest if before else GENESIS
    if before is not None and link.prev == before.prev:
        if digest(link.entry, link.prev) != link.digest:
            # Renumbered to make room for the row before it, which took its place.
            return Break(Damage.INSERTED, before.seq, before.id, f"{_row(before)} was inserted")
        return Break(
            Damage.FORKED, link.seq, link.id, f"the chain forks: {_row(before)} and {_row(link)} follow one row"
        )
    if before is not None and link.prev == GENESIS:
        return Break(Damage.INSERTED, first.seq, first.id, f"{_row(first)} was inserted: {_row(link)} starts the chain")
    # The link names a row further back: the rows since that one were slipped in.
    for earlier in index.with_digest(link.prev):
        if before is not None and earlier.seq < before.seq:
            after = [x for x in index.with_prev(earlier.digest) if earlier.seq < x.seq < link.seq]
            forged = min(after, key=lambda x: x.seq) if after else before
            return Break(Damage.INSERTED, forged.seq, forged.id, f"{_row(forged)} was inserted")
    # The real successor comes later (or the head says the chain ends before): this row was slipped in.
    later = [x for x in index.with_prev(expected_prev) if x.id != link.id and x.seq >= link.seq]
    if later or (head is not None and head.digest == expected_prev and head.seq < link.seq):
        return Break(Damage.INSERTED, link.seq, link.id, f"{_row(link)} was inserted")
    if digest(link.entry, link.prev) != link.digest:
        return Break(Damage.ALTERED, link.seq, link.id, f"{_row(link)} was altered: it no longer matches its digest")
    if before is not None and link.seq == before.seq + 1:
        return Break(
            Damage.ALTERED, before.seq, before.id, f"{_row(before)} was altered and rehashed: {_row(link)} disowns it"
        )
    missing = f"row {before.seq + 1}" if before else "the first row"
    return Break(Damage.REMOVED, link.seq, link.id, f"{missing} was removed: {_row(link)} follows a row that is gone")


def _check_head(last: Link | None, head: Head | None, index: Index) -> Break | None:
    last_seq, last_digest = (last.seq, last.digest) if last else (0, GENESIS)
    if head is None:
        return Break(Damage.HEAD, last_seq, None, "the chain's head record is missing")
    if (head.seq, head.digest) == (last_seq, last_digest):
        return None
    if last is not None:
        for ending in index.with_digest(head.digest):
            if ending.seq < last.seq:
                after = [x for x in index.with_prev(ending.digest) if x.seq > ending.seq]
                forged = min(after, key=lambda x: x.seq) if after else last
                return Break(
                    Damage.INSERTED, forged.seq, forged.id, f"{_row(forged)} was inserted after the chain's end"
                )
    if head.seq > last_seq:
        return Break(Damage.REMOVED, last_seq + 1, None, f"rows {last_seq + 1} to {head.seq} were removed from the end")
    if head.digest == GENESIS and last is not None:
        return Break(Damage.INSERTED, 1, None, "every row was inserted: the head says the chain is empty")
    return Break(Damage.HEAD, head.seq, None, "the chain's head record was altered")
