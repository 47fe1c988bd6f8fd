"""A sync killed mid-run (SIGKILL, after its first batch) leaves a copy the next run makes whole.

The run is a real process (this module run as a script) syncing a real
slapd into the test's database, two accounts a page; it stops after its
first batch committed, waiting on its stdin, and the test kills it there:
no flag, no clean-up, as an OOM killer or a pulled plug would. Memory is
checked as the rows a run holds: one page at a time, whatever the count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from connectors import open_directory
from connectors.directory import AccountDetails
from connectors.settings import DirectorySettings
from lab import SeedAccount, Slapd
from sspm.account.sync import CHECKPOINT, sync_all, sync_changes
from sspm.infra.store import DirectoryAccount, Store, SyncCheckpoint
from tests.contract.labs import RoleLab, account_of, openldap_lab

ROOT = Path(__file__).resolve().parents[2]
PAGE = 2


def _no_organization(_found: AccountDetails) -> str | None:
    return None


@contextmanager
def run_stopped_after_first_batch(mode: str, settings: DirectorySettings, database_url: str) -> Iterator[None]:
    """A sync process, stopped after its first batch committed; killed with SIGKILL when the block ends."""
    described = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.flows.test_sync_killed", mode, json.dumps(described), database_url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"batch 1\n", "the run commits its first batch"
        yield
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def rows(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(DirectoryAccount)) or 0


def checkpoint(store: Store) -> str | None:
    with store.session() as session:
        return session.scalar(select(SyncCheckpoint.value).where(SyncCheckpoint.name == CHECKPOINT))


def test_a_full_sync_killed_after_its_first_batch_is_made_whole_by_the_next(
    slapd: Slapd, accounts: dict[str, SeedAccount], database_url: str
) -> None:
    lab: RoleLab = openldap_lab(slapd, accounts)
    store = Store(database_url)
    try:
        with run_stopped_after_first_batch("full", lab.settings, database_url):
            assert rows(store) == PAGE  # committed, and nothing more
        assert rows(store) == PAGE
        with store.session() as session:
            assert session.scalars(select(DirectoryAccount.gone_at)).all() == [None, None]

        again = sync_all(store, lab.connect(), _no_organization, page_size=PAGE)
        assert again.seen == rows(store) == len(accounts)
        assert again.gone == 0
        # Memory: a run holds one page of accounts at a time, whatever the directory's size.
        assert again.largest_batch == PAGE
        assert again.batches == math.ceil(len(accounts) / PAGE)
    finally:
        store.close()
        lab.close()


def test_an_incremental_sync_killed_mid_run_keeps_its_old_checkpoint_and_misses_nothing(
    slapd: Slapd, accounts: dict[str, SeedAccount], database_url: str
) -> None:
    lab: RoleLab = openldap_lab(slapd, accounts)
    store = Store(database_url)
    directory = lab.connect()
    try:
        sync_changes(store, directory, _no_organization)
        before = checkpoint(store)
        assert before is not None
        for login in ("ada", "bea", "cyd"):
            lab.add_person(login, login.title(), "Newman")
        lab.modify(account_of(directory, accounts["normal"]).dn, {"telephoneNumber": ["+1 514 555 0101"]})

        with run_stopped_after_first_batch("changes", lab.settings, database_url):
            assert checkpoint(store) == before
        assert checkpoint(store) == before  # never moved past what was not copied

        again = sync_changes(store, directory, _no_organization, page_size=PAGE)
        assert again.seen == 4 and again.largest_batch == PAGE
        assert checkpoint(store) != before
        with store.session() as session:
            logins = set(session.scalars(select(DirectoryAccount.login)))
            phone = session.scalar(select(DirectoryAccount.phone).where(DirectoryAccount.login == "jsmith"))
        assert {"ada", "bea", "cyd", "jsmith"} <= logins and len(logins) == len(accounts) + 3
        assert phone == "+1 514 555 0101"
        assert sync_changes(store, directory, _no_organization).seen == 0
    finally:
        store.close()
        lab.close()


def _child(mode: str, described: str, database_url: str) -> None:
    """The killed run: prints each committed batch, and after the first waits for a signal."""
    fields = json.loads(described)
    fields["ca_file"] = Path(fields["ca_file"]) if fields["ca_file"] else None
    directory = open_directory("openldap", DirectorySettings(**fields))
    store = Store(database_url)

    def after_batch(number: int) -> None:
        print(f"batch {number}", flush=True)
        if number == 1:
            sys.stdin.readline()  # held here until SIGKILL

    run = sync_all if mode == "full" else sync_changes
    run(store, directory, _no_organization, page_size=PAGE, after_batch=after_batch)


if __name__ == "__main__":
    _child(*sys.argv[1:4])
