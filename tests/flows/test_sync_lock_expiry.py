"""On OpenLDAP, a lock that ran out reaches the copy (and leaves the Locked report) at the next incremental sync.

ppolicy ends a lockout when pwdLockoutDuration has passed without writing
to the entry: pwdAccountLockedTime stays, and neither modifyTimestamp nor
entryCSN moves. The incremental sync, which reads the entries whose
entryCSN moved since its checkpoint, saw nothing, so the copy kept calling
the user locked, and the Locked report kept naming someone the directory
had let back in, until the next day's full sync. The helpdesk would call
them, or unlock an account that needed nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.directory import Directory
from lab import SeedAccount, Slapd
from sspm.account.sync import sync_changes
from sspm.infra.store import DirectoryAccount, Store
from tests.contract import labs
from tests.contract.labs import RoleLab, account_of
from tests.flows.test_outsider_operator import DC_PATIENCE
from tests.support import Backing
from tests.support.flows import lock_by_wrong_binds

#: The lab policy's lockout, made short enough to wait out (SSPM reads the duration in whole minutes).
LOCKOUT_SECONDS = 60
#: How long ago the lock is made to look: the rest of the minute is all the story waits.
AGO = LOCKOUT_SECONDS - 3


@pytest.fixture
def lab(slapd: Slapd, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    opened = labs.openldap_lab(slapd, accounts)
    opened.modify(opened.settings.policy_dn, {"pwdLockoutDuration": [str(LOCKOUT_SECONDS)]})
    yield opened
    opened.close()


@pytest.mark.both_databases
def test_on_openldap_a_lock_that_ran_out_leaves_the_copy_at_the_next_incremental_sync(
    lab: RoleLab, backing: Backing
) -> None:
    """jsmith typed wrong passwords until slapd locked her; a minute later slapd lets her in again.

    The lock is moved back to 57 seconds ago, as an administrator can
    write it, so that the story waits three seconds rather than a minute.
    """
    directory: Directory = lab.connect()
    store = Store(backing.database_url)

    def copied_locked(account_id: str) -> bool:
        with store.session() as session:
            row = session.get(DirectoryAccount, account_id)
            assert row is not None
            return row.locked

    def incremental() -> None:
        sync_changes(store, directory, lambda _found: None)

    jsmith = account_of(directory, lab.accounts["normal"])
    incremental()  # the first run: every account, and the checkpoint
    lock_by_wrong_binds(directory, jsmith.username)
    locked_at = datetime.now(UTC) - timedelta(seconds=AGO)
    lab.modify(jsmith.dn, {"pwdAccountLockedTime": [locked_at.strftime("%Y%m%d%H%M%SZ")]})
    incremental()
    assert copied_locked(jsmith.id), "the copy follows the lock"

    deadline = time.monotonic() + DC_PATIENCE
    while _locked(directory, jsmith.id):
        assert time.monotonic() < deadline, "the lock never ran out"
        time.sleep(0.2)
    incremental()
    assert not copied_locked(jsmith.id), "the copy still says locked: the Locked report names her"
    store.close()


def _locked(directory: Directory, account_id: str) -> bool:
    found = directory.account_details(account_id)
    assert found is not None
    return found.locked
