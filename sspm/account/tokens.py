"""One-time tokens for emailed links: random, hashed at rest, bound, single use.

A token is 256 random bits; only its SHA-256 is stored (a slow hash buys
nothing against a random secret), bound to one account and one purpose.
Issuing a new one voids the older ones; so does any password change; a
token is spent by the one request that uses it.

Past the moment a link is opened, SSPM handles only the digest (``Digest``,
so the type checker keeps raw tokens and digests apart): the raw token
then exists only in the email.

A password change outside SSPM is seen through the directory's own
timestamp (pwdChangedTime, pwdLastSet), which OpenLDAP keeps in whole
seconds and which comes from the directory host's clock, not ours. A link
is void unless it was issued clearly after that change could have happened
(``outdated``): the doubt goes against the link, since a user can always
ask for a new one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import NewType, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from sspm.infra.store import ResetToken, Store, utcnow

#: A token's SHA-256, as stored; what SSPM holds on to once a link is opened.
Digest = NewType("Digest", str)
#: The coarsest time a directory stamps a password change with (pwdChangedTime).
DIRECTORY_RESOLUTION = timedelta(seconds=1)


def digest(token: str) -> Digest:
    return Digest(hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest())


def outdated(issued_at: datetime, changed_at: datetime | None, clock_skew: timedelta) -> bool:
    """Whether a password change stamped ``changed_at`` may have come after a link issued at ``issued_at``.

    A change stamped T (whole seconds, the directory's clock) happened
    somewhere in [T, T + 1 s) on a clock up to ``clock_skew`` away from
    ours: only a link issued after all of that is still good. So a change
    in the same second as the link, or within the skew of it, voids it.
    """
    if changed_at is None:
        return False
    return issued_at < changed_at + DIRECTORY_RESOLUTION + clock_skew


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
                token_hash=digest(token),
                account_id=account_id,
                purpose=purpose,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


def _live(store: Store, link: Digest, purpose: str) -> ResetToken | None:
    with store.session() as session:
        row = session.scalar(select(ResetToken).where(ResetToken.token_hash == link))
        if row is None or row.purpose != purpose or row.spent_at is not None:
            return None
        if _aware(row.expires_at) <= utcnow():
            return None
        return row


def find(
    store: Store,
    link: Digest,
    purpose: str,
    *,
    changed_since: datetime | None = None,
    clock_skew: timedelta = timedelta(0),
) -> str | None:
    """The account a live token belongs to, or None (unknown, spent, expired, or outdated).

    ``changed_since`` is when the account's password last changed, by any
    path, as the directory stamped it: a token issued before that, or too
    close to it to tell (see ``outdated``), is void.
    """
    row = _live(store, link, purpose)
    if row is None or outdated(_aware(row.created_at), changed_since, clock_skew):
        return None
    return row.account_id


def live_until(store: Store, link: Digest, purpose: str) -> datetime | None:
    """When a live token expires; None if it is not live (unknown, spent, expired)."""
    row = _live(store, link, purpose)
    return _aware(row.expires_at) if row else None


def spend(store: Store, link: Digest) -> bool:
    """Mark a token used; False if it was already spent (a replay, or a race)."""
    with store.session() as session:
        done = session.execute(
            update(ResetToken)
            .where(ResetToken.token_hash == link, ResetToken.spent_at.is_(None))
            .values(spent_at=utcnow())
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def restore(store: Store, link: Digest) -> None:
    """Undo ``spend`` when the change it guarded was refused (e.g. a password in history)."""
    with store.session() as session:
        session.execute(update(ResetToken).where(ResetToken.token_hash == link).values(spent_at=None))


def void(store: Store, account_id: str, purpose: str) -> None:
    """Void the account's live links of one purpose now, before a newer one is even made.

    So a link re-sent by staff kills the older one at the click, not when
    the worker gets to the new email (whose ``issue`` voids them again).
    """
    with store.session() as session:
        session.execute(
            update(ResetToken)
            .where(ResetToken.account_id == account_id, ResetToken.purpose == purpose, ResetToken.spent_at.is_(None))
            .values(spent_at=utcnow())
        )


def void_all(store: Store, account_id: str, *, session: Session | None = None) -> None:
    """A password changed: no link issued before may still change it.

    With ``session``, in the caller's transaction (with the audit rows that
    say why: sspm.account.aftermath).
    """
    if session is None:
        with store.session() as own:
            void_all(store, account_id, session=own)
        return
    session.execute(_VOID_ALL, {"account": account_id, "now": utcnow()})


# On the hot path of every password change: a plain statement on the table, built once (compiled
# once, cached), not the ORM's bulk update, whose session synchronisation cost more than the UPDATE.
_TOKENS = cast(Table, ResetToken.__table__)
_VOID_ALL = (
    update(_TOKENS)
    .where(_TOKENS.c.account_id == bindparam("account"), _TOKENS.c.spent_at.is_(None))
    .values(spent_at=bindparam("now"))
)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything SSPM writes is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
