"""Password-expiry reminders: one email per threshold per password, queued from the synced table.

The job reads ``directory_account`` (sspm.account.sync keeps it), never the
directory, so a run over 100,000 accounts is one indexed query on
``expires_at``. The table may be minutes old; the worker that sends each
email reads the account again (``send_batch``, the one directory read it
makes per message anyway) and skips one disabled or without an address
since, or whose password no longer expires when the reminder says
(``still_true``: changed since the copy, or the policy moved the date).
That reminder is not claimed: it was never true, and the right one (the
new password's, keyed by its own change time) goes once the copy catches up.

Which threshold: only the smallest one the account has crossed (5 days
left with thresholds 14, 7, 3, 1 → the 7-day reminder). A run that was
missed (the scheduler down for a week) therefore catches up with the
reminder that is true now, and never sends the larger thresholds late,
which would tell someone with 2 days left that they have 14.

Exactly once: each reminder is keyed ``<account id>:<threshold>:<password
changed at>``, and the outbox sends a (kind, key) at most once ever, so two
runs at once, a rerun, or a run every hour all send it once; a new
password has a new ``password_changed_at`` and starts the series again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sspm.infra import jobs
from sspm.infra.outbox import Recipient
from sspm.infra.services import Services
from sspm.infra.store import DirectoryAccount, Store, utcnow
from sspm.policy.expiry import thresholds

log = logging.getLogger(__name__)

KIND = "password_expires_soon"
#: How many table rows are read at a time (constant memory over any number of accounts).
PAGE = 1000


def threshold_reached(expires_at: datetime, now: datetime, days: Sequence[int]) -> int | None:
    """The smallest threshold ``expires_at`` is within at ``now``; None if none yet, or already expired."""
    left = expires_at - now
    if left <= timedelta(0):
        return None
    crossed = [d for d in days if left <= timedelta(days=d)]
    return min(crossed) if crossed else None


def key_of(account_id: str, threshold: int, password_changed_at: datetime | None, expires_at: datetime) -> str:
    """The reminder's once-ever key: one per threshold per password.

    Without a recorded change time (a directory that only says when it
    expires), the expiry itself stands for the password: a new one moves it.
    Times are spelled in UTC: PostgreSQL hands them back in the session's
    zone, and a worker with another PGTZ must make the same key.
    """
    if password_changed_at is not None:
        password = password_changed_at.astimezone(UTC).isoformat()
    else:
        password = f"expires {expires_at.astimezone(UTC).isoformat()}"
    return f"{account_id}:{threshold}:{password}"


def still_true(expires_at: datetime | None, quoted: datetime, now: datetime) -> bool:
    """Whether a reminder quoting ``quoted`` may still go to an account whose password expires at ``expires_at``
    (the directory's word now): the same expiry, and not yet past. The copy and the directory spell
    it alike (sync copies ``account_details``), so any difference means another password or policy."""
    return expires_at is not None and expires_at == quoted and expires_at > now


@dataclass(frozen=True)
class Due:
    account_id: str
    threshold: int
    recipient: Recipient


def due(store: Store, now: datetime, days: Sequence[int]) -> Iterator[Due]:
    """The reminders due at ``now``: accounts expiring within the largest threshold, enabled, present, with an email."""
    query = (
        select(
            DirectoryAccount.account_id,
            DirectoryAccount.expires_at,
            DirectoryAccount.password_changed_at,
        )
        .where(
            DirectoryAccount.expires_at > now,
            DirectoryAccount.expires_at <= now + timedelta(days=max(days)),
            DirectoryAccount.disabled.is_(False),
            DirectoryAccount.gone_at.is_(None),
            DirectoryAccount.email.is_not(None),
            DirectoryAccount.email != "",
        )
        .order_by(DirectoryAccount.account_id)
        .execution_options(yield_per=PAGE)
    )
    with store.session() as session:
        for account_id, expires_at, changed_at in session.execute(query):
            if expires_at is None:  # the query excludes it; the type does not know
                continue
            expires = aware(expires_at)
            threshold = threshold_reached(expires, now, days)
            if threshold is None:
                continue
            key = key_of(account_id, threshold, aware(changed_at) if changed_at else None, expires)
            # Language "": the account's remembered one (the worker reads account_preference).
            yield Due(account_id, threshold, Recipient(account_id, "", expires, key=key))


def queue_reminders(the: Services, now: datetime, days: Sequence[int]) -> int:
    """Queue every reminder due at ``now``; how many were handed to the outbox (sent at most once each)."""
    recipients = [d.recipient for d in due(the.store, now, days)]
    the.outbox.bulk(KIND, recipients)
    return len(recipients)


@jobs.job
def send_reminders(the: Services, days: str = "") -> str:
    """The scheduled job (sspm.infra.schedule): queue today's reminders; ``days`` overrides SSPM_REMINDER_DAYS."""
    queued = queue_reminders(the, utcnow(), thresholds(days) if days else the.settings.reminder_days)
    return f"queued {queued}"


def aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes for what was stored in UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)
