"""One-time tokens for emailed links: random, hashed at rest, bound, single use.

A token is 256 random bits; only its SHA-256 is stored (a slow hash buys
nothing against a random secret), bound to one account and one purpose.
Issuing a new one voids the older ones; so does any password change; a
token is spent by the one request that uses it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from sspm.store import ResetToken, Store, utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue(store: Store, account_id: str, purpose: str, lifetime: timedelta) -> str:
    """A new token for ``account_id``; every older one for the same purpose is voided."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with store.session() as session:
        session.execute(
            update(ResetToken)
            .where(ResetToken.account_id == account_id, ResetToken.purpose == purpose, ResetToken.spent_at.is_(None))
            .values(spent_at=now)
        )
        session.add(
            ResetToken(
                token_hash=_digest(token),
                account_id=account_id,
                purpose=purpose,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


def find(store: Store, token: str, purpose: str, *, changed_since: datetime | None = None) -> str | None:
    """The account a live token belongs to, or None (unknown, spent, expired, or outdated).

    ``changed_since`` is when the account's password last changed, by any
    path: a token issued before that is void.
    """
    with store.session() as session:
        row = session.scalar(select(ResetToken).where(ResetToken.token_hash == _digest(token)))
        if row is None or row.purpose != purpose or row.spent_at is not None:
            return None
        if _aware(row.expires_at) <= utcnow():
            return None
        if changed_since is not None and changed_since > _aware(row.created_at):
            return None
        return row.account_id


def spend(store: Store, token: str) -> bool:
    """Mark a token used; False if it was already spent (a replay, or a race)."""
    with store.session() as session:
        done = session.execute(
            update(ResetToken)
            .where(ResetToken.token_hash == _digest(token), ResetToken.spent_at.is_(None))
            .values(spent_at=utcnow())
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def restore(store: Store, token: str) -> None:
    """Undo ``spend`` when the change it guarded was refused (e.g. a password in history)."""
    with store.session() as session:
        session.execute(update(ResetToken).where(ResetToken.token_hash == _digest(token)).values(spent_at=None))


def void_all(store: Store, account_id: str) -> None:
    """A password changed: no link issued before may still change it."""
    with store.session() as session:
        session.execute(
            update(ResetToken)
            .where(ResetToken.account_id == account_id, ResetToken.spent_at.is_(None))
            .values(spent_at=utcnow())
        )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything SSPM writes is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
