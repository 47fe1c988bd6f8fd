"""Two domain controllers in LDAP_URL: the second, joined to the first, takes over when the first stops.

A real second DC (``samba-tool domain join``, lab.samba.start_dc_pair), not
a copy: what the first took replicates to it, and what it takes with the
first stopped is its own. Replication is waited on (a condition, with a
generous deadline); the figures (join, replication delay) are printed,
never asserted.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ldap3
import pytest

from connectors import open_directory
from connectors.activedirectory import ActiveDirectory
from connectors.directory import Outcome
from lab import SeedAccount, samba
from tests.contract.labs import ad_lab

NEW_PASSWORD = "Orchard-Kettle-Lantern-58"
OTHER_PASSWORD = "Harbour-Violet-Stencil-27"
TEMPORARY_PASSWORD = "Temp-Glacier-Pepper-19"
#: Every wait on replication ends by this; none is expected to come close.
PATIENCE = 90.0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[samba.SambaPair]:
    snapshot = samba.make_snapshot(tmp_path / "snapshot", cache=samba.default_cache(), count=2)
    both = samba.start_dc_pair(tmp_path / "pair", snapshot)
    yield both
    both.stop()


def admin(dc: samba.SambaDC) -> ldap3.Connection:
    tls = ldap3.Tls(ca_certs_file=str(dc.ca_file), validate=ssl.CERT_REQUIRED)
    return ldap3.Connection(ldap3.Server(dc.ldaps_url, tls=tls), dc.admin_dn, dc.admin_password, auto_bind=True)


def password_set_at(connection: ldap3.Connection, person: SeedAccount) -> str:
    """pwdLastSet as this DC has it: it moves with every change and reset, and replicates with them."""
    connection.search(samba.person_dn(person), "(objectClass=user)", ldap3.BASE, attributes=["pwdLastSet"])
    return str(connection.response[0]["raw_attributes"]["pwdLastSet"][0])


def binds(dc: samba.SambaDC, person: SeedAccount, password: str) -> bool:
    tls = ldap3.Tls(ca_certs_file=str(dc.ca_file), validate=ssl.CERT_REQUIRED)
    connection = ldap3.Connection(ldap3.Server(dc.ldaps_url, tls=tls), f"{person.uid}@partners.example", password)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def wait_for(condition: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < PATIENCE, f"still not {what} after {PATIENCE} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_with_the_first_dc_stopped_change_and_reset_work_on_the_joined_second(
    pair: samba.SambaPair, accounts: dict[str, SeedAccount]
) -> None:
    first, second = pair.first, pair.second
    settings = ad_lab(first, accounts).settings  # one CA signed both DCs' certificates
    directory = open_directory(
        "ad", dataclasses.replace(settings, url=f"{first.ldaps_url} {second.ldaps_url}", connect_timeout=3, timeout=5)
    )
    assert isinstance(directory, ActiveDirectory)
    person, other, helped = accounts["normal"], accounts["other"], accounts["expiring"]
    on_first, on_second = admin(first), admin(second)

    # Both up: the change goes to one (the first, unless it was slow to answer) and replicates to the other.
    before = password_set_at(on_first, person)
    account = directory.find_account(person.uid)
    assert account is not None
    assert directory.change_password(account, person.password, NEW_PASSWORD) is Outcome.OK

    def both_have_it() -> bool:
        now = {password_set_at(on_first, person), password_set_at(on_second, person)}
        return len(now) == 1 and before not in now

    delay = wait_for(both_have_it, "the change on both DCs")
    for dc in (first, second):
        assert binds(dc, person, NEW_PASSWORD), f"{dc.address} has the new password"

    first.stop()
    on_first.unbind()
    # Sign-in, a change and a reset followed by a status read, all on the second.
    _, verdict = directory.verify_password(person.uid, NEW_PASSWORD)
    assert verdict.outcome is Outcome.OK
    moved = directory.find_account(other.uid)
    assert moved is not None
    assert directory.change_password(moved, other.password, OTHER_PASSWORD) is Outcome.OK
    target = directory.find_account(helped.uid)
    assert target is not None
    with directory.same_server():
        assert directory.reset_password(target, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK
        assert directory.status(target).must_change
    assert binds(second, other, OTHER_PASSWORD), "the change is the second DC's own"
    assert not directory.guard.open
    print(f"\nsecond DC joined in {pair.join_seconds:.1f} s; a password change replicated in {delay:.2f} s")
    on_second.unbind()
    directory.close()
