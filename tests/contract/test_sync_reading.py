"""SyncReader, against every real directory: every account page by page, then what changed.

OpenLDAP's checkpoint is the database's contextCSN (syncprov), AD's the
DC's highestCommittedUSN with its invocationId; to the caller both are an
opaque string, stored between runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

import connectors
from connectors.directory import Directory, Outcome
from lab import SeedAccount
from tests.contract import labs
from tests.contract.labs import NEW_PASSWORD, RoleLab, account_of, established_connections_to


@pytest.fixture(params=connectors.KINDS)
def role_lab(request: pytest.FixtureRequest, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    yield from labs.role_lab(request, accounts)


@pytest.fixture
def directory(role_lab: RoleLab) -> Directory:
    return role_lab.connect()


def seeded_logins(role_lab: RoleLab) -> list[str]:
    return sorted(person.uid for person in role_lab.accounts.values())


def test_every_account_comes_once_page_after_page_and_nothing_that_is_not_an_account(
    role_lab: RoleLab, directory: Directory
) -> None:
    for size in (2, 3, 500):
        found = [account.login for account in directory.all_accounts(page_size=size)]
        assert sorted(found) == seeded_logins(role_lab), size
    every = {account.login: account for account in directory.all_accounts(page_size=2)}
    assert every["klee"].locked
    assert every["rpatel"].disabled
    assert every["tnguyen"].must_change


def test_reading_holds_one_connection_of_its_own_only_while_it_is_read(role_lab: RoleLab, directory: Directory) -> None:
    directory.check()  # the pool holds one connection from now on
    before = established_connections_to(role_lab.port)
    reading = directory.all_accounts(page_size=2)
    assert established_connections_to(role_lab.port) == before  # nothing asked yet
    first = list(itertools.islice(reading, 3))  # the second page is being read
    assert len(first) == 3
    assert established_connections_to(role_lab.port) == before + 1
    reading.close()  # the caller stops early
    assert established_connections_to(role_lab.port) == before
    # And a read to the end gives its connection back by itself.
    assert len(list(directory.all_accounts(page_size=3))) == len(role_lab.accounts)
    assert established_connections_to(role_lab.port) == before


def test_changes_since_a_checkpoint_are_exactly_the_accounts_changed_after_it(
    role_lab: RoleLab, directory: Directory
) -> None:
    everything = directory.changes_since(None, page_size=2)
    assert sorted(account.login for account in everything) == seeded_logins(role_lab)

    unchanged = directory.changes_since(everything.checkpoint)
    assert list(unchanged) == []

    laura = account_of(directory, role_lab.accounts["other"])
    role_lab.modify(laura.dn, {"telephoneNumber": ["+33 1 23 45 67 89"]})
    assert (
        directory.reset_password(account_of(directory, role_lab.accounts["normal"]), NEW_PASSWORD, must_change=True)
        is Outcome.OK
    )
    role_lab.add_person("newcomer", "New", "Comer")

    # The checkpoint is only a string: another process, another connector, reads on from it.
    later = role_lab.connect().changes_since(unchanged.checkpoint, page_size=2)
    changed = {account.login: account for account in later}
    assert sorted(changed) == ["jsmith", "lsmith", "newcomer"]
    assert changed["lsmith"].phone == "+33 1 23 45 67 89"
    assert changed["jsmith"].must_change

    assert list(directory.changes_since(later.checkpoint)) == []


def test_the_checkpoint_is_taken_before_the_read_so_a_change_during_it_comes_again(
    role_lab: RoleLab, directory: Directory
) -> None:
    reading = directory.changes_since(None, page_size=2)
    first = next(iter(reading))
    changed = account_of(directory, role_lab.accounts["other"])
    role_lab.modify(changed.dn, {"telephoneNumber": ["+33 9 87 65 43 21"]})
    rest = list(reading)
    assert len(rest) + 1 == len(role_lab.accounts)
    assert first.login not in {account.login for account in rest}

    again = [account.login for account in directory.changes_since(reading.checkpoint)]
    assert again == ["lsmith"]


@pytest.mark.parametrize(
    "checkpoint",
    [
        "",
        "garbage",
        "csn:)(objectClass=*",
        "csn:20990101000000.000000Z#000000#000#000000)(uid=*",
        "usn:00000000-0000-0000-0000-000000000000:1",
        "usn:00000000-0000-0000-0000-000000000000:99999999999",
        "usn:x:1)(uid=*",
    ],
    ids=repr,
)
def test_a_checkpoint_not_understood_or_from_another_server_gives_every_account(
    role_lab: RoleLab, directory: Directory, checkpoint: str
) -> None:
    changes = directory.changes_since(checkpoint, page_size=3)
    assert sorted(account.login for account in changes) == seeded_logins(role_lab)
    assert changes.checkpoint != checkpoint
    assert list(directory.changes_since(changes.checkpoint)) == []
