"""The clean-up job deletes what is past its lifetime or retention, and nothing else.

Rows are placed a day either side of each limit (a minute for the tokens),
in the test's own database, SQLite and PostgreSQL; the job runs as the
worker runs it (with the app's Services) under the default retentions
(SSPM_EMAIL_EVENT_RETENTION_DAYS=90, SSPM_JOB_RUN_RETENTION_DAYS=30) and
once more with shorter ones set.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from lab import Slapd
from sspm.account import cleanup
from sspm.infra.store import EmailEvent, JobRun, ResetToken, Store, utcnow
from tests.support import services_of
from tests.support.flows import AppFactory

A_MINUTE = timedelta(minutes=1)
A_DAY = timedelta(days=1)


def place(store: Store, now: datetime) -> None:
    with store.session() as session:
        for name, expires, spent in (
            ("expired", now - A_MINUTE, None),
            ("expired-spent", now - A_MINUTE, now - A_DAY),
            ("live-spent", now + A_MINUTE, now - A_MINUTE),  # used: still says "already used" until it expires
            ("live", now + A_MINUTE, None),
        ):
            session.add(
                ResetToken(
                    token_hash=name.ljust(64, "0"),
                    account_id="someone",
                    purpose="reset",
                    created_at=now - A_DAY,
                    expires_at=expires,
                    spent_at=spent,
                )
            )
        for days in (89, 91):
            session.add(
                EmailEvent(
                    event_id=f"event-{days}",
                    kind="reset_link",
                    account_id="x",
                    state="sent",
                    claimed_at=now - days * A_DAY,
                )
            )
        for days in (29, 31):
            session.add(
                JobRun(
                    job_id=f"run-{days}",
                    name="sspm.email.jobs.send_reset_link",
                    queue="email",
                    started_at=now - days * A_DAY,
                    duration_ms=1.0,
                    outcome="sent",
                )
            )


def left(store: Store) -> tuple[list[str], list[str], list[str | None]]:
    with store.session() as session:
        tokens = sorted(t.rstrip("0") for t in session.scalars(select(ResetToken.token_hash)))
        events = sorted(session.scalars(select(EmailEvent.event_id)))
        runs = sorted(r for r in session.scalars(select(JobRun.job_id)) if r is not None)
    return tokens, events, runs


@pytest.mark.both_databases
def test_clean_up_deletes_only_what_is_past_its_lifetime(build_app: AppFactory, slapd: Slapd) -> None:
    store = services_of(build_app(slapd)).store
    place(store, utcnow())

    assert cleanup.clean_up() == "purged 2 tokens, 1 email events, 1 job runs"

    tokens, events, runs = left(store)
    assert tokens == ["live", "live-spent"]
    assert events == ["event-89"]
    assert runs == ["run-29"]
    assert cleanup.clean_up() == "purged 0 tokens, 0 email events, 0 job runs", "a second run finds nothing"


def test_the_retentions_are_settings(build_app: AppFactory, slapd: Slapd) -> None:
    app = build_app(slapd, SSPM_EMAIL_EVENT_RETENTION_DAYS="10", SSPM_JOB_RUN_RETENTION_DAYS="10")
    store = services_of(app).store
    place(store, utcnow())

    assert cleanup.clean_up() == "purged 2 tokens, 2 email events, 2 job runs"
    assert left(store) == (["live", "live-spent"], [], [])
