"""Several directory servers in LDAP_URL: failover, skipping a dead one, the return to the preferred one.

Real servers only: two OpenLDAP providers replicating each other in mirror
mode (lab.slapd.start_mirror_pair), a socket of the test's own standing in
for a server that accepts and then fails, a SIGSTOPped slapd for one that
stopped answering, and the lab's Samba DC behind an address where nothing
listens. Figures (how long a request takes while the first server is down)
are printed, never asserted.
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors import open_directory
from connectors.activedirectory import ActiveDirectory
from connectors.directory import Directory, Outcome
from connectors.openldap import OpenLdapDirectory
from connectors.settings import DirectorySettings
from lab import SeedAccount, Slapd, free_port, samba
from lab.pki import Pki
from lab.slapd import start_mirror_pair
from tests.contract.labs import ad_lab, established_connections_to, openldap_lab

NEW_PASSWORD = "Orchard-Kettle-Lantern-58"
TEMPORARY_PASSWORD = "Temp-Glacier-Pepper-19"
#: Every wait on replication or a restart ends by this; none is expected to come close.
PATIENCE = 30.0


@pytest.fixture
def pair(tmp_path: Path, pki: Pki) -> Iterator[tuple[Slapd, Slapd]]:
    first, second = start_mirror_pair(tmp_path / "pair", pki)
    yield first, second
    first.stop()
    second.stop()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def settings_for(
    first: Slapd, accounts: dict[str, SeedAccount], *urls: str, prefer_after: int = 60
) -> DirectorySettings:
    settings = openldap_lab(first, accounts).settings
    return dataclasses.replace(settings, url=" ".join(urls), connect_timeout=1, timeout=2, prefer_after=prefer_after)


def connector(settings: DirectorySettings, kind: str = "openldap") -> OpenLdapDirectory | ActiveDirectory:
    directory = open_directory(kind, settings)
    assert isinstance(directory, OpenLdapDirectory | ActiveDirectory)
    return directory


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {PATIENCE} s"
        time.sleep(0.05)


def signs_in(directory: Directory, person: SeedAccount, password: str | None = None) -> bool:
    _, verdict = directory.verify_password(person.uid, password or person.password)
    return verdict.outcome is Outcome.OK


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


# -- what the mirror pair replicates ----------------------------------------------


def test_the_pair_replicates_passwords_and_ppolicy_state(
    pair: tuple[Slapd, Slapd], accounts: dict[str, SeedAccount]
) -> None:
    """What a failover can rely on: a lock, failures, a reset and a password written on one are on the other."""
    first, second = pair
    person = accounts["normal"]
    on_first = connector(settings_for(first, accounts, first.ldaps_url))
    on_second = connector(settings_for(first, accounts, second.ldaps_url))
    account = on_first.find_account(person.uid)
    assert account is not None

    def state(slapd: Slapd, *names: str) -> dict[str, list[str]]:
        return slapd.search(account.dn, *names, scope="base")

    # A wrong password on the first: its failure time reaches the second.
    assert not signs_in(on_first, person, "Not-The-Password-1")
    wait_for(lambda: len(state(second, "pwdFailureTime").get("pwdFailureTime", [])) == 1, "a failure replicated")
    # Locked out on the first (pwdMaxFailure 5): the lock reaches the second.
    for _ in range(4):
        signs_in(on_first, person, "Not-The-Password-1")
    assert state(first, "pwdAccountLockedTime")
    wait_for(lambda: bool(state(second, "pwdAccountLockedTime")), "the lock replicated")
    assert on_second.status(account).locked
    # Unlocked on the second: the first is unlocked too, failures gone with the lock.
    assert on_second.unlock(account) is Outcome.OK
    wait_for(lambda: not state(first, "pwdAccountLockedTime", "pwdFailureTime"), "the unlock replicated")
    # A reset on the first: the new password and its must-change mark work on the second.
    assert on_first.reset_password(account, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK
    wait_for(lambda: state(second, "pwdReset") == {"pwdReset": ["TRUE"]}, "the reset replicated")
    assert on_second.verify_password(person.uid, TEMPORARY_PASSWORD)[1].outcome is Outcome.MUST_CHANGE
    on_first.close()
    on_second.close()


# -- failover ------------------------------------------------------------------------


def test_with_the_first_stopped_every_request_works_on_the_second(
    pair: tuple[Slapd, Slapd], accounts: dict[str, SeedAccount]
) -> None:
    first, second = pair
    directory = connector(settings_for(first, accounts, first.ldaps_url, second.ldaps_url))
    person, helped = accounts["normal"], accounts["expiring"]
    assert signs_in(directory, person)
    up = timed(lambda: signs_in(directory, helped))
    second_binds = second.binds()

    first.stop()
    first_request = timed(lambda: signs_in(directory, helped))
    account = directory.find_account(person.uid)
    assert account is not None
    assert directory.change_password(account, person.password, NEW_PASSWORD) is Outcome.OK
    assert signs_in(directory, person, NEW_PASSWORD)
    # A reset followed by a status read: the read sees the reset.
    target = directory.find_account(helped.uid)
    assert target is not None
    with directory.same_server():
        assert directory.reset_password(target, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK
        assert directory.status(target).must_change
    later = [timed(lambda: signs_in(directory, accounts["other"])) for _ in range(5)]
    print(
        f"\nsign-in with both up {up:.1f} ms; first stopped: first request {first_request:.1f} ms, "
        f"then {min(later):.1f}-{max(later):.1f} ms"
    )
    # The second took it all (each sign-in is a bind there), and nothing is left open to the first.
    assert second.binds() - second_binds >= 1 + 1 + 5
    assert established_connections_to(port_of(first.ldaps_url)) == 0
    assert not directory.guard.open
    directory.close()


class _Accepting:
    """A listening socket that takes every connection and closes it at once: a server that is there but fails."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> int:
        """Stop, count what is still queued, and say how many connections came."""
        self._stop.set()
        self._thread.join()
        self.socket.setblocking(False)
        while True:
            try:
                conn, _ = self.socket.accept()
            except BlockingIOError:
                break
            self.accepted += 1
            conn.close()
        self.socket.close()
        return self.accepted


def test_a_failed_server_is_skipped_not_tried_on_every_request(
    pair: tuple[Slapd, Slapd], accounts: dict[str, SeedAccount]
) -> None:
    first, _ = pair
    failing = _Accepting()
    directory = connector(settings_for(first, accounts, f"ldaps://127.0.0.1:{failing.port}", first.ldaps_url))
    try:
        for person in list(accounts.values()) * 2:
            directory.find_account(person.uid)
        assert signs_in(directory, accounts["normal"])
        other = directory.find_account(accounts["other"].uid)
        assert other is not None and not directory.status(other).locked
    finally:
        tried = failing.close()
        directory.close()
    # One attempt, then skipped for LDAP_PREFER_AFTER (60 s here): not one per request.
    assert tried == 1


def test_a_frozen_server_costs_one_connect_timeout_then_is_skipped(
    pair: tuple[Slapd, Slapd], accounts: dict[str, SeedAccount]
) -> None:
    """SIGSTOP: connections are accepted by the kernel but never answered (the breaker's case, with one server)."""
    first, second = pair
    directory = connector(settings_for(first, accounts, first.ldaps_url, second.ldaps_url))
    first.process.send_signal(signal.SIGSTOP)
    try:
        took = [timed(lambda: signs_in(directory, accounts["normal"])) for _ in range(6)]
        assert all(signs_in(directory, person) for person in (accounts["normal"], accounts["expiring"]))
        # Another server answered: nothing opened the breaker, which is for when none does.
        assert not directory.guard.open
    finally:
        first.process.send_signal(signal.SIGCONT)
        directory.close()
    print(f"\nfirst server frozen (LDAP_CONNECT_TIMEOUT=1): sign-in {took[0]:.0f} ms, then {max(took[1:]):.1f} ms")


# -- back to the preferred server --------------------------------------------------------


def test_work_goes_back_to_the_first_once_it_answers_again(
    pair: tuple[Slapd, Slapd], accounts: dict[str, SeedAccount]
) -> None:
    first, second = pair
    prefer_after = 2
    directory = connector(settings_for(first, accounts, first.ldaps_url, second.ldaps_url, prefer_after=prefer_after))
    person, watcher = accounts["normal"], accounts["other"]
    first_port, second_port = port_of(first.ldaps_url), port_of(second.ldaps_url)

    first.stop()
    account = directory.find_account(person.uid)
    assert account is not None
    assert directory.change_password(account, person.password, NEW_PASSWORD) is Outcome.OK
    assert established_connections_to(second_port) >= 1
    first.restart()
    restarted = time.monotonic()

    def back_on_first() -> bool:
        assert signs_in(directory, watcher)
        return established_connections_to(first_port) >= 1 and established_connections_to(second_port) == 0

    wait_for(back_on_first, "back on the first server")
    print(f"\nback on the first server {time.monotonic() - restarted:.1f} s after its restart (LDAP_PREFER_AFTER=2)")
    # Every connection now goes to the first: it counts the binds, the second none of them.
    on_first, on_second = first.binds(), second.binds()
    for _ in range(5):
        assert signs_in(directory, watcher)
    assert first.binds() - on_first >= 5 + 1  # and the count's own bind
    assert second.binds() - on_second <= 1 + 1  # its own count, and at most the first's replication reconnecting
    assert established_connections_to(second_port) == 0
    # The change the second took while the first was down reached the first.
    wait_for(
        lambda: (
            first.search(account.dn, "userPassword", scope="base")
            == second.search(account.dn, "userPassword", scope="base")
        ),
        "the change replicated back",
    )
    assert signs_in(directory, person, NEW_PASSWORD)
    directory.close()


def test_a_pinned_use_case_reads_from_the_server_that_took_its_write(
    pair: tuple[Slapd, Slapd], accounts: dict[str, SeedAccount]
) -> None:
    """A return to the preferred server between a reset and its status read does not move the read."""
    first, second = pair
    prefer_after = 1
    directory = connector(settings_for(first, accounts, first.ldaps_url, second.ldaps_url, prefer_after=prefer_after))
    person = accounts["expiring"]
    first.stop()
    account = directory.find_account(person.uid)
    assert account is not None
    with directory.same_server():
        assert directory.reset_password(account, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK
        first.restart()
        marked_at = time.monotonic()
        wait_for(lambda: time.monotonic() > marked_at + prefer_after, "past LDAP_PREFER_AFTER")
        assert directory.status(account).must_change
        # The read went to the second, which took the reset, though the first is preferred and up again.
        assert established_connections_to(port_of(first.ldaps_url)) == 0
    # Outside the use case, the next call goes back to the first.
    directory.find_account(person.uid)
    assert established_connections_to(port_of(first.ldaps_url)) >= 1
    directory.close()


# -- Active Directory --------------------------------------------------------------------


def test_ad_with_a_dead_address_first_works_on_the_dc_behind_it(
    samba_dc: samba.SambaDC, accounts: dict[str, SeedAccount]
) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    lab = ad_lab(samba_dc, accounts)
    directory = connector(dataclasses.replace(lab.settings, url=f"{dead} {samba_dc.ldaps_url}"), "ad")
    person, helped = accounts["normal"], accounts["expiring"]
    took = [timed(lambda: signs_in(directory, person)) for _ in range(3)]
    account = directory.find_account(person.uid)
    assert account is not None
    assert directory.change_password(account, person.password, NEW_PASSWORD) is Outcome.OK
    assert signs_in(directory, person, NEW_PASSWORD)
    target = directory.find_account(helped.uid)
    assert target is not None
    with directory.same_server():
        assert directory.reset_password(target, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK
        assert directory.status(target).must_change
    assert not directory.guard.open
    print(f"\nAD, first address dead: sign-ins {', '.join(f'{t:.0f}' for t in took)} ms")
    directory.close()
