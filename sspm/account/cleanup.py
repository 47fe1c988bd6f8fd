"""Housekeeping: delete what SSPM no longer needs, once it no longer needs it.

Run by the scheduler (``sspm.infra.schedule.ENTRIES``) on the housekeeping
queue, hourly; each purge is one DELETE, and running it twice deletes
nothing the second time.

- Link tokens (reset, set-up, email verification: ``reset_token``) go once
  their lifetime is over, spent or not. A spent one is kept until then so
  that opening a used link still says "already used" rather than "unknown";
  after that, an expired and an unknown link read the same.
- Email events go after SSPM_EMAIL_EVENT_RETENTION_DAYS: an event stops the
  same email going twice (a retry, a reminder per threshold), which matters
  for days, not years. An expiry reminder's event stays, whatever that
  says, as long as its reminder can still be due (the largest of
  SSPM_REMINDER_DAYS, and a day for a table synced late): without it, the
  next reminders run would send the same reminder again.
- Job runs (the Jobs page) go after SSPM_JOB_RUN_RETENTION_DAYS.

The audit trail is not purged here: its rows are chained, and leave only
through ``python -m sspm audit archive`` (sspm.account.audit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, or_

from sspm.account import reminders
from sspm.infra import jobs
from sspm.infra.services import Services
from sspm.infra.store import EmailEvent, JobRun, ResetToken, Store, utcnow

#: The clean-up job's dotted name, for the schedule.
CLEAN_UP = "sspm.account.cleanup.clean_up"


@dataclass(frozen=True)
class Purged:
    tokens: int
    email_events: int
    job_runs: int

    def __str__(self) -> str:
        return f"purged {self.tokens} tokens, {self.email_events} email events, {self.job_runs} job runs"


def purge(
    store: Store, *, now: datetime, email_event_days: int, job_run_days: int, reminder_days: Sequence[int]
) -> Purged:
    """Delete the tokens past their lifetime and the events and runs older than their retention at ``now``.

    A reminder for a threshold of N days is due at most N days after it was
    first sent (the password has expired by then), so its event is kept
    at least the largest of ``reminder_days``, plus a day.
    """
    events_before, runs_before = _days_before(now, email_event_days), _days_before(now, job_run_days)
    reminders_before = _days_before(now, max(reminder_days, default=0) + 1)
    with store.session() as session:
        tokens = session.execute(delete(ResetToken).where(ResetToken.expires_at < now))
        events = session.execute(
            delete(EmailEvent).where(
                EmailEvent.claimed_at < events_before,
                or_(EmailEvent.kind != reminders.KIND, EmailEvent.claimed_at < reminders_before),
            )
        )
        runs = session.execute(delete(JobRun).where(JobRun.started_at < runs_before))
        return Purged(_count(tokens), _count(events), _count(runs))


def _days_before(now: datetime, days: int) -> datetime:
    """``days`` before ``now``; the first moment datetime holds for a retention longer than that ("forever")."""
    try:
        return now - timedelta(days=days)
    except OverflowError:
        return datetime.min.replace(tzinfo=now.tzinfo)


def _count(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


@jobs.job
def clean_up(services: Services) -> str:
    settings = services.settings
    return str(
        purge(
            services.store,
            now=utcnow(),
            email_event_days=settings.email_event_retention_days,
            job_run_days=settings.job_run_retention_days,
            reminder_days=settings.reminder_days,
        )
    )
