"""The synced copy's tables on SQLite and PostgreSQL: a row and a checkpoint go in and come back as written.

Other features (reports, reminders) read ``directory_account`` with their
own queries, so its times must come back aware and equal on both stores.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from sspm.infra.store import DirectoryAccount, Store, SyncCheckpoint


def test_a_synced_account_and_a_checkpoint_round_trip(database_url: str) -> None:
    store = Store(database_url)
    expires = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        with store.session() as session:
            session.add(
                DirectoryAccount(
                    account_id="a1",
                    login="alice",
                    display_name="Alice Tremblay",
                    email=None,
                    organization="o=acme",
                    disabled=False,
                    locked=True,
                    failures=3,
                    expires_at=expires,
                    must_change=False,
                    enrolled=True,
                    set_up=False,
                )
            )
            session.add(SyncCheckpoint(name="ldap", value="20261201000000.000000Z#..."))
        with store.session() as session:
            row = session.get(DirectoryAccount, "a1")
            assert row is not None
            assert (row.locked, row.failures, row.set_up, row.gone_at) == (True, 3, False, None)
            # SQLite hands times back naive (UTC as written); readers make them aware.
            assert row.expires_at is not None
            assert row.expires_at.replace(tzinfo=row.expires_at.tzinfo or UTC) == expires
            assert session.scalars(select(SyncCheckpoint.value)).one() == "20261201000000.000000Z#..."
    finally:
        store.close()
