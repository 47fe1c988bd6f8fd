"""Directory sync against real slapd and Samba: the copy follows creations, changes, locks and deletions.

The directory is changed the way its administrators change it (an admin
connection, wrong passwords typed until the lock), never through the code
under test; what is asserted is the copy in SSPM's store afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

import connectors
from connectors.directory import Directory
from lab import SeedAccount
from lab.seed import MAX_FAILURE, NORTH_CLINIC, ST_MARY
from sspm.account import sync
from sspm.account.sync import CHECKPOINT, sync_all, sync_changes
from sspm.infra import jobs, schedule
from sspm.infra.store import DirectoryAccount, Enrollment, JobRun, PersonRecord, Store, SyncCheckpoint
from sspm.policy.organizations import OrganizationSource, key, organization_of
from tests.contract import labs
from tests.contract.labs import RoleLab, account_of
from tests.support import Backing, services_of


@pytest.fixture(params=connectors.KINDS)
def role_lab(request: pytest.FixtureRequest, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    yield from labs.role_lab(request, accounts)


@pytest.fixture
def store(backing: Backing) -> Iterator[Store]:
    opened = Store(backing.database_url)
    yield opened
    opened.close()


def copy_of(store: Store) -> dict[str, DirectoryAccount]:
    with store.session() as session:
        return {row.login: row for row in session.scalars(select(DirectoryAccount))}


@pytest.mark.both_databases
def test_full_and_incremental_sync_follow_creations_changes_locks_and_deletions(
    role_lab: RoleLab, store: Store
) -> None:
    directory: Directory = role_lab.connect()
    source = OrganizationSource.parse(f"attribute:{role_lab.settings.organization_attribute}")

    def organization(found: connectors.directory.AccountDetails) -> str | None:
        return organization_of(found, source, role_lab.settings.base_dn)

    people = role_lab.accounts
    enrolled = account_of(directory, people["normal"])
    awaiting = account_of(directory, people["disabled"])
    with store.session() as session:
        session.add(Enrollment(account_id=enrolled.id))
        session.add(_awaiting_record(awaiting.id))

    first = sync_all(store, directory, organization, page_size=3)
    copy = copy_of(store)
    assert sorted(copy) == sorted(person.uid for person in people.values())
    assert first.seen == len(people) and first.gone == 0 and first.largest_batch <= 3
    assert copy["klee"].locked and not copy["jsmith"].locked
    assert copy["rpatel"].disabled and not copy["rpatel"].set_up
    assert copy["jsmith"].set_up and copy["jsmith"].enrolled and not copy["lsmith"].enrolled
    assert copy["tnguyen"].must_change
    assert copy["lsmith"].organization == key(NORTH_CLINIC)
    assert copy["jsmith"].organization == key(ST_MARY)
    assert copy["achen"].expires_at is not None
    assert all(row.gone_at is None for row in copy.values())
    # The times and texts as the directory gives them (the rows go through the driver's own executemany).
    for row in copy.values():
        found = directory.account_details(row.account_id)
        assert found is not None
        stored = (row.password_changed_at, row.expires_at, row.locked_since)
        assert tuple(aware(when) for when in stored) == (found.password_set_at, found.expires_at, found.locked_since)
        assert (row.display_name, row.email, row.phone, row.failures) == (
            found.display_name,
            found.email,
            found.phone,
            found.failures,
        )

    # The first incremental run has no checkpoint: every account, and the position stored.
    assert sync_changes(store, directory, organization).seen == len(people)
    assert sync_changes(store, directory, organization).seen == 0

    laura = account_of(directory, people["other"])
    role_lab.modify(laura.dn, {"telephoneNumber": ["+33 1 23 45 67 89"]})
    role_lab.add_person("newcomer", "New", "Comer")
    for _ in range(MAX_FAILURE):
        directory.verify_password("jsmith", "not-the-password")
    leaving = account_of(directory, people["expiring"])
    admin = role_lab.admin()
    try:
        assert admin.delete(leaving.dn), admin.result
    finally:
        admin.unbind()

    changed = sync_changes(store, directory, organization, page_size=2)
    assert changed.seen == 3  # lsmith, newcomer, jsmith: a deletion never comes this way
    copy = copy_of(store)
    assert copy["lsmith"].phone == "+33 1 23 45 67 89"
    assert copy["newcomer"].display_name == "New Comer" and copy["newcomer"].gone_at is None
    assert copy["jsmith"].locked and copy["jsmith"].enrolled
    assert copy["achen"].gone_at is None

    last = sync_all(store, directory, organization, page_size=3)
    assert last.gone == 1
    copy = copy_of(store)
    assert copy["achen"].gone_at is not None
    assert [login for login, row in copy.items() if row.gone_at is not None] == ["achen"]
    with store.session() as session:
        assert session.get(SyncCheckpoint, CHECKPOINT) is not None


def aware(when: datetime | None) -> datetime | None:
    """A stored time as the directory's (SQLite hands times back naive, in UTC as written)."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _awaiting_record(account_id: str) -> PersonRecord:
    """A record whose provisioned account waits for its owner (as sspm.people leaves one)."""
    return PersonRecord(
        kind="employee",
        organization=key(NORTH_CLINIC),
        given_name="Ravi",
        family_name="Patel",
        language="en",
        work_email="ravi.patel@example.org",
        start_date=datetime(2026, 11, 1, tzinfo=UTC).date(),
        status="active",
        account_id=account_id,
        username="rpatel",
    )


def test_the_scheduled_jobs_copy_the_directory_with_the_configured_organizations_and_are_recorded(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    the = services_of(app)
    assert sync.incremental_sync() == f"seen {len(accounts)}, gone 0, 1 batches"
    assert sync.full_sync() == f"seen {len(accounts)}, gone 0, 1 batches"
    assert sync.incremental_sync() == "seen 0, gone 0, 0 batches"
    with the.store.session() as session:
        ran = session.scalars(select(JobRun.name).order_by(JobRun.id)).all()
    assert ran == [
        "sspm.account.sync.incremental_sync",
        "sspm.account.sync.full_sync",
        "sspm.account.sync.incremental_sync",
    ]
    names = {entry.function for entry in schedule.ENTRIES if entry.queue == jobs.SYNC}
    assert names == set(ran)


def test_a_checkpoint_from_another_server_makes_the_incremental_sync_copy_everything(
    role_lab: RoleLab, store: Store
) -> None:
    """A restored or replaced DC (new invocationId), another provider: its position means nothing here."""
    foreign = "usn:00000000-0000-0000-0000-000000000000:99999999999"
    with store.session() as session:
        session.add(SyncCheckpoint(name=CHECKPOINT, value=foreign))
    directory = role_lab.connect()
    done = sync_changes(store, directory, lambda _found: None, page_size=3)
    assert done.seen == len(role_lab.accounts) == len(copy_of(store))
    with store.session() as session:
        assert session.scalar(select(SyncCheckpoint.value).where(SyncCheckpoint.name == CHECKPOINT)) != foreign
    assert sync_changes(store, directory, lambda _found: None).seen == 0
