"""The Directory contract, against every real directory SSPM supports.

Each test runs once per directory kind in ``LABS``: the same sentences must
hold for OpenLDAP (slapd + ppolicy) and for Active Directory (a Samba AD DC).
A lab is a real server, fresh for each test and seeded with an account in
every state (lab/seed.py, lab/samba.py); nothing here is faked or patched.
"""

from __future__ import annotations

import abc
import re
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap3
import pytest

import connectors
from connectors import ad_codes, open_directory
from connectors.directory import (
    Directory,
    DirectoryMisconfigured,
    DirectoryUnavailable,
    Outcome,
    Verdict,
)
from connectors.guard import Guard
from lab import SeedAccount, Slapd, free_port, make_pki, samba
from sspm.infra.settings import Settings
from tests.contract.labs import account_of, established_connections_to
from tests.support import settings_for  # the one way tests build settings

NO_ENV_FILE = Path("/nonexistent/.env")
LDAP_SUCCESS = 0
LDAP_INSUFFICIENT_ACCESS = 50

#: Passwords chosen to pass any directory's quality rules and never to be seeded.
NEW_PASSWORD = "Orchard-Kettle-Lantern-58"
OTHER_PASSWORD = "Saffron-Beacon-Willow-73"
TEMPORARY_PASSWORD = "Temp-Glacier-Pepper-19"

#: Logins an attacker types to match someone else, or to break the query.
HOSTILE_LOGINS = [
    "*",
    ")(uid=*",
    "\\00",
    "\x00",
    "jsmith\x00",
    "x" * 5000,
    "jsmith)(|(uid=*",
    "jsmith*",
    "*smith",
    "jsmïth",
    "éloïse*",
    "jsmith\u200b",
    "uid=jsmith,ou=people,dc=partners,dc=example",
]


class DirectoryLab(abc.ABC):
    """One real directory server for one test, and what a test may do to it.

    ``accounts`` are the seeded people by state (see the ``accounts`` fixture).
    """

    kind: str

    def __init__(self, accounts: dict[str, SeedAccount], port: int) -> None:
        self.accounts = accounts
        #: The TCP port SSPM reaches the server on.
        self.port = port
        self._opened: list[Directory] = []

    def connect(self, **environ: str) -> Directory:
        """A connector built the way the app builds it, from (overridden) settings."""
        connector = open_directory(self.kind, self.settings(**environ).directory)
        self._opened.append(connector)
        return connector

    def close(self) -> None:
        for connector in self._opened:
            connector.close()

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server keeps its sockets open but answers nothing."""
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    @abc.abstractmethod
    def settings(self, **environ: str) -> Settings:
        """SSPM's settings for this server, with some keys overridden."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Take the server away, as a crash or a network cut would."""

    @abc.abstractmethod
    def freeze(self) -> None: ...

    @abc.abstractmethod
    def thaw(self) -> None: ...

    @abc.abstractmethod
    def raw(self, dn: str, password: str) -> ldap3.Connection:
        """A plain ldap3 connection over verified TLS, not yet bound."""

    @abc.abstractmethod
    def immutable_id(self, dn: str) -> str:
        """The entry's immutable id as the server itself stores it."""

    @abc.abstractmethod
    def set_password(self, dn: str, password: str) -> None:
        """Set a password the way the directory's own administrators would, never through SSPM."""


class OpenLdapLab(DirectoryLab):
    kind = "openldap"

    def __init__(self, slapd: Slapd, accounts: dict[str, SeedAccount]) -> None:
        super().__init__(accounts, port=int(slapd.ldaps_url.rsplit(":", 1)[1]))
        self.slapd = slapd

    def settings(self, **environ: str) -> Settings:
        return settings_for(self.slapd, **environ)

    def stop(self) -> None:
        self.slapd.stop()

    def freeze(self) -> None:
        self.slapd.process.send_signal(signal.SIGSTOP)
        # The signal is delivered asynchronously: wait until every thread has stopped.
        tasks = Path(f"/proc/{self.slapd.process.pid}/task")
        deadline = time.monotonic() + 10
        while not all(_stopped(stat) for stat in tasks.glob("*/stat")):
            assert time.monotonic() < deadline, "slapd did not stop on SIGSTOP"
            time.sleep(0.001)

    def thaw(self) -> None:
        self.slapd.process.send_signal(signal.SIGCONT)

    def raw(self, dn: str, password: str) -> ldap3.Connection:
        tls = ldap3.Tls(ca_certs_file=str(self.slapd.ca_file), validate=ssl.CERT_REQUIRED)
        server = ldap3.Server("127.0.0.1", port=self.port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
        return ldap3.Connection(server, user=dn, password=password, receive_timeout=5)

    def immutable_id(self, dn: str) -> str:
        conn = self.raw(self.slapd.root_dn, self.slapd.root_password)
        assert conn.bind(), conn.result
        try:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
            return bytes(conn.response[0]["raw_attributes"]["entryUUID"][0]).decode("ascii")
        finally:
            conn.unbind()

    def set_password(self, dn: str, password: str) -> None:
        # As ldappasswd would: Password Modify with the bytes as typed; then not a temporary one.
        conn = self.raw(self.slapd.root_dn, self.slapd.root_password)
        assert conn.bind(), conn.result
        try:
            assert conn.extend.standard.modify_password(user=dn, new_password=password.encode("utf-8")), conn.result
            assert conn.modify(dn, {"pwdReset": [(ldap3.MODIFY_DELETE, [])]}), conn.result
        finally:
            conn.unbind()


def _stopped(stat: Path) -> bool:
    try:
        # "pid (comm) S ...": the state follows the last parenthesis.
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return True  # the thread is gone


class ActiveDirectoryLab(DirectoryLab):
    """A Samba AD DC of its own for the test, copied from the session's snapshot."""

    kind = "ad"

    def __init__(self, dc: samba.SambaDC, accounts: dict[str, SeedAccount]) -> None:
        super().__init__(accounts, port=636)
        self.dc = dc

    def settings(self, **environ: str) -> Settings:
        return settings_for(self.dc, **environ)

    def stop(self) -> None:
        self.dc.stop()

    def freeze(self) -> None:
        self.dc.process.send_signal(signal.SIGSTOP)
        tasks = Path(f"/proc/{self.dc.process.pid}/task")
        deadline = time.monotonic() + 10
        while not all(_stopped(stat) for stat in tasks.glob("*/stat")):
            assert time.monotonic() < deadline, "samba did not stop on SIGSTOP"
            time.sleep(0.001)

    def thaw(self) -> None:
        self.dc.process.send_signal(signal.SIGCONT)

    def raw(self, dn: str, password: str) -> ldap3.Connection:
        tls = ldap3.Tls(ca_certs_file=str(self.dc.ca_file), validate=ssl.CERT_REQUIRED)
        server = ldap3.Server(self.dc.address, port=self.port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
        return ldap3.Connection(server, user=dn, password=password, receive_timeout=5)

    def admin(self) -> ldap3.Connection:
        """Bound as the domain's Administrator: for what SSPM's service account may not do."""
        conn = self.raw(self.dc.admin_dn, self.dc.admin_password)
        assert conn.bind(), conn.result
        return conn

    def immutable_id(self, dn: str) -> str:
        # Samba's own ldbsearch prints objectGUID in its canonical form.
        found = subprocess.run(
            ["ldbsearch", "-H", str(self.dc.sam_ldb), "-b", dn, "-s", "base", "objectGUID"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"^objectGUID: ([0-9a-f-]{36})$", found, re.MULTILINE)
        assert match, found
        return match.group(1)

    def set_password(self, dn: str, password: str) -> None:
        # As a Windows administrator's reset would: unicodePwd, as typed, in UTF-16.
        conn = self.admin()
        try:
            value = f'"{password}"'.encode("utf-16-le")
            assert conn.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]}), conn.result
        finally:
            conn.unbind()


#: Every real directory the contract runs against.
LABS: dict[str, Callable[[pytest.FixtureRequest], DirectoryLab]] = {
    "openldap": lambda request: OpenLdapLab(request.getfixturevalue("slapd"), request.getfixturevalue("accounts")),
    "ad": lambda request: ActiveDirectoryLab(request.getfixturevalue("samba_dc"), request.getfixturevalue("accounts")),
}


@pytest.fixture(params=list(LABS))
def lab(request: pytest.FixtureRequest) -> Iterator[DirectoryLab]:
    server = LABS[request.param](request)
    yield server
    server.close()


@pytest.fixture
def directory(lab: DirectoryLab) -> Directory:
    return lab.connect()


def verdict(directory: Directory, login: str, password: str) -> Outcome:
    return directory.verify_password(login, password)[1].outcome


# -- every directory kind has a contract lab ------------------------------------


def test_every_directory_kind_sspm_supports_is_checked_against_a_real_server() -> None:
    assert set(LABS) == set(connectors.KINDS)


# -- check ------------------------------------------------------------------------


def test_a_well_configured_directory_passes_the_start_up_check(directory: Directory) -> None:
    directory.check()


def test_a_wrong_service_password_stops_the_start_up_check_as_a_misconfiguration(lab: DirectoryLab) -> None:
    misconfigured = lab.connect(LDAP_BIND_PASSWORD="Not-The-Service-Password-1")
    with pytest.raises(DirectoryMisconfigured, match="LDAP_BIND_PASSWORD"):
        misconfigured.check()


def test_a_server_certificate_signed_by_another_ca_is_refused(lab: DirectoryLab, tmp_path: Path) -> None:
    stranger = make_pki(tmp_path / "another-ca")
    suspicious = lab.connect(LDAP_CA_FILE=str(stranger.ca_file))
    with pytest.raises(DirectoryUnavailable, match="certificate verify failed"):
        suspicious.check()


# -- verify_password: one verdict per account state --------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("normal", Outcome.OK),
        ("other", Outcome.OK),
        ("nonascii", Outcome.OK),
        ("temporary", Outcome.MUST_CHANGE),
        ("expired", Outcome.EXPIRED),
        ("locked", Outcome.LOCKED),
        ("disabled", Outcome.DISABLED),
        ("expiring", Outcome.OK),
    ],
)
def test_the_right_password_gets_the_verdict_of_the_accounts_state(
    lab: DirectoryLab, directory: Directory, state: str, expected: Outcome
) -> None:
    person = lab.accounts[state]
    account, said = directory.verify_password(person.uid, person.password)
    assert said.outcome is expected
    assert account is not None
    assert account.username == person.uid
    assert account.display_name == person.display_name


def test_an_expired_password_is_reported_only_to_whoever_knows_it(lab: DirectoryLab, directory: Directory) -> None:
    marie = lab.accounts["expired"]
    assert verdict(directory, marie.uid, marie.password) is Outcome.EXPIRED
    assert verdict(directory, marie.uid, "Not-Her-Password-1") is Outcome.BAD_CREDENTIALS


def test_a_wrong_password_is_bad_credentials_and_proves_nothing(lab: DirectoryLab, directory: Directory) -> None:
    _, said = directory.verify_password(lab.accounts["normal"].uid, "Not-His-Password-1")
    assert said == Verdict(Outcome.BAD_CREDENTIALS)
    assert not said.password_proven


def test_a_password_about_to_expire_is_accepted_with_about_five_days_left(
    lab: DirectoryLab, directory: Directory
) -> None:
    alice = lab.accounts["expiring"]
    _, said = directory.verify_password(alice.uid, alice.password)
    assert said.outcome is Outcome.OK
    assert said.expires_in is not None
    assert abs(said.expires_in - timedelta(days=5).total_seconds()) < timedelta(hours=1).total_seconds()


def test_a_person_with_a_non_ascii_name_signs_in_by_that_name(lab: DirectoryLab, directory: Directory) -> None:
    eloise = lab.accounts["nonascii"]
    account, said = directory.verify_password("éloïse", eloise.password)
    assert said.outcome is Outcome.OK
    assert account is not None
    assert account.username == "éloïse"
    assert account.display_name == "Éloïse Côté"


def test_an_unknown_user_gets_no_account_and_bad_credentials(lab: DirectoryLab, directory: Directory) -> None:
    assert directory.find_account("nobody-here") is None
    assert directory.verify_password("nobody-here", lab.accounts["normal"].password) == (
        None,
        Verdict(Outcome.BAD_CREDENTIALS),
    )


@pytest.mark.parametrize("login", HOSTILE_LOGINS, ids=repr)
def test_a_hostile_login_never_matches_someone_else_and_never_breaks_the_directory(
    lab: DirectoryLab, directory: Directory, login: str
) -> None:
    john = lab.accounts["normal"]
    assert directory.find_account(login) is None
    assert directory.verify_password(login, john.password) == (None, Verdict(Outcome.BAD_CREDENTIALS))
    # The connector is still healthy for the next, honest user.
    assert verdict(directory, john.uid, john.password) is Outcome.OK


@pytest.mark.parametrize("password", ["", " ", "   \t\n"], ids=["empty", "space", "whitespace"])
def test_an_empty_or_blank_password_is_refused_before_any_bind(
    lab: DirectoryLab, directory: Directory, password: str
) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    with pytest.raises(ValueError):
        directory.verify_password(john.uid, password)
    with pytest.raises(ValueError):
        directory.change_password(account, password, NEW_PASSWORD)
    with pytest.raises(ValueError):
        directory.change_password(account, john.password, password)
    with pytest.raises(ValueError):
        directory.reset_password(account, password, must_change=True)
    with pytest.raises(ValueError):
        directory.reset_password(account, password, must_change=False)
    # No wrong bind was counted, and nothing changed.
    assert directory.status(account).failures == 0
    assert verdict(directory, john.uid, john.password) is Outcome.OK


# -- change_password ------------------------------------------------------------------


@pytest.mark.parametrize("state", ["normal", "expired", "temporary", "nonascii"])
def test_a_user_changes_a_known_password_and_afterwards_only_the_new_one_works(
    lab: DirectoryLab, directory: Directory, state: str
) -> None:
    person = lab.accounts[state]
    account, said = directory.verify_password(person.uid, person.password)
    assert account is not None
    assert said.password_proven

    assert directory.change_password(account, person.password, NEW_PASSWORD) is Outcome.OK

    assert verdict(directory, person.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, person.uid, person.password) is Outcome.BAD_CREDENTIALS
    standing = directory.status(account)
    assert not standing.must_change
    assert not standing.expired(datetime.now(UTC))


def test_a_new_password_shorter_than_the_policy_is_refused_as_too_short(
    lab: DirectoryLab, directory: Directory
) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert directory.change_password(account, john.password, "Ab1-xyz") is Outcome.TOO_SHORT
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_keeping_the_same_password_is_refused_as_in_history(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert directory.change_password(account, john.password, john.password) is Outcome.IN_HISTORY
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_going_back_to_a_recent_password_is_refused_as_in_history(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert directory.change_password(account, john.password, NEW_PASSWORD) is Outcome.OK
    assert directory.change_password(account, NEW_PASSWORD, john.password) is Outcome.IN_HISTORY
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_a_change_with_the_wrong_old_password_is_bad_credentials_and_changes_nothing(
    lab: DirectoryLab, directory: Directory
) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert directory.change_password(account, "Not-His-Password-1", NEW_PASSWORD) is Outcome.BAD_CREDENTIALS
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.BAD_CREDENTIALS


# -- reset_password -------------------------------------------------------------------


def test_a_helpdesk_reset_with_must_change_gives_a_temporary_password(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)

    assert directory.reset_password(account, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK

    assert verdict(directory, john.uid, TEMPORARY_PASSWORD) is Outcome.MUST_CHANGE
    assert verdict(directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS
    assert directory.status(account).must_change


# Not for "ad": this proof speaks OpenLDAP's protocol (a temporary password binds, then
# only the RFC 3062 password-modify operation is allowed). AD refuses the bind itself
# (data 773) and has no such operation; its own proof is
# test_ad_a_temporary_password_cannot_even_bind_until_it_is_changed below.
@pytest.mark.parametrize("lab", ["openldap"], indirect=True)
def test_a_temporary_password_can_do_nothing_but_choose_a_new_password(lab: DirectoryLab, directory: Directory) -> None:
    """The proof, with the directory's own protocol and no SSPM code in between."""
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert directory.reset_password(account, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK

    conn = lab.raw(account.dn, TEMPORARY_PASSWORD)
    try:
        assert conn.bind(), conn.result
        # Even reading one's own entry is refused while the password is temporary.
        conn.search(account.dn, "(objectClass=*)", ldap3.BASE, attributes=["cn"])
        assert conn.result["result"] == LDAP_INSUFFICIENT_ACCESS, conn.result
        conn.search(lab.accounts["other"].dn, "(objectClass=*)", ldap3.BASE, attributes=["cn"])
        assert conn.result["result"] == LDAP_INSUFFICIENT_ACCESS, conn.result
        # Choosing a new password is the one thing allowed, and it lifts the restriction.
        assert conn.extend.standard.modify_password(account.dn, TEMPORARY_PASSWORD, NEW_PASSWORD), conn.result
        conn.search(account.dn, "(objectClass=*)", ldap3.BASE, attributes=["cn"])
        assert conn.result["result"] == LDAP_SUCCESS, conn.result
    finally:
        conn.unbind()
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert not directory.status(account).must_change


def test_a_reset_without_must_change_gives_a_usable_password(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert directory.reset_password(account, NEW_PASSWORD, must_change=False) is Outcome.OK
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS
    assert not directory.status(account).must_change


def test_a_reset_without_must_change_also_unlocks_a_locked_account(lab: DirectoryLab, directory: Directory) -> None:
    kevin = lab.accounts["locked"]
    account = account_of(directory, kevin)
    assert directory.status(account).locked

    assert directory.reset_password(account, NEW_PASSWORD, must_change=False) is Outcome.OK

    assert not directory.status(account).locked
    assert verdict(directory, kevin.uid, NEW_PASSWORD) is Outcome.OK


# -- lockout, status and unlock ---------------------------------------------------------


def test_five_wrong_passwords_lock_the_account_until_it_is_unlocked(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    policy = directory.policy()
    assert policy.lockout_threshold == 5

    for attempt in range(1, policy.lockout_threshold + 1):
        assert verdict(directory, john.uid, f"Wrong-Guess-{attempt}") is Outcome.BAD_CREDENTIALS

    standing = directory.status(account)
    assert standing.locked
    assert standing.failures == 5
    assert standing.locked_since is not None
    assert not standing.disabled
    # Now even the right password is turned away, and told why.
    assert verdict(directory, john.uid, john.password) is Outcome.LOCKED

    directory.unlock(account)

    standing = directory.status(account)
    assert not standing.locked
    assert standing.failures == 0
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_unlocking_an_account_that_is_not_locked_changes_nothing(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    directory.unlock(account)
    assert not directory.status(account).locked
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_a_seeded_locked_account_unlocks_with_its_password_unchanged(lab: DirectoryLab, directory: Directory) -> None:
    kevin = lab.accounts["locked"]
    account = account_of(directory, kevin)
    standing = directory.status(account)
    assert standing.locked
    assert standing.failures == 5

    directory.unlock(account)

    assert verdict(directory, kevin.uid, kevin.password) is Outcome.OK


def test_the_status_of_a_current_account_is_unremarkable(lab: DirectoryLab, directory: Directory) -> None:
    standing = directory.status(account_of(directory, lab.accounts["normal"]))
    now = datetime.now(UTC)
    assert not standing.locked
    assert standing.locked_since is None
    assert standing.failures == 0
    assert not standing.disabled
    assert not standing.must_change
    assert standing.password_changed_at is not None
    assert standing.password_changed_at <= now
    assert standing.expires_at is not None
    assert standing.expires_at > now + timedelta(days=80)


def test_the_status_of_an_expired_account_says_when_it_expired(lab: DirectoryLab, directory: Directory) -> None:
    standing = directory.status(account_of(directory, lab.accounts["expired"]))
    now = datetime.now(UTC)
    assert standing.expires_at is not None
    assert standing.expires_at < now
    assert standing.expired(now)
    assert not standing.locked
    assert not standing.disabled


def test_the_status_of_an_expiring_account_says_it_has_days_left(lab: DirectoryLab, directory: Directory) -> None:
    standing = directory.status(account_of(directory, lab.accounts["expiring"]))
    now = datetime.now(UTC)
    assert standing.expires_at is not None
    assert now + timedelta(days=4) < standing.expires_at < now + timedelta(days=6)
    assert not standing.expired(now)


def test_the_status_of_a_temporary_password_says_it_must_be_changed(lab: DirectoryLab, directory: Directory) -> None:
    standing = directory.status(account_of(directory, lab.accounts["temporary"]))
    assert standing.must_change
    assert not standing.locked


def test_the_status_of_a_disabled_account_says_disabled_not_locked(lab: DirectoryLab, directory: Directory) -> None:
    standing = directory.status(account_of(directory, lab.accounts["disabled"]))
    assert standing.disabled
    assert not standing.locked
    assert not standing.must_change


# -- accounts and their immutable id ------------------------------------------------------


def test_an_account_is_found_again_by_its_immutable_id(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    assert account.id == lab.immutable_id(account.dn)
    assert directory.get_account(account.id) == account
    assert directory.get_account(account.id.upper()) == account
    assert account.email == john.mail
    assert account.given_name == john.given_name


@pytest.mark.parametrize("bad_id", ["", "not-a-uuid", "*", ")(entryUUID=*", str(uuid.uuid4())])
def test_an_id_that_names_no_account_finds_nobody(directory: Directory, bad_id: str) -> None:
    assert directory.get_account(bad_id) is None


def test_an_accounts_id_survives_a_password_change(lab: DirectoryLab, directory: Directory) -> None:
    john = lab.accounts["normal"]
    before = account_of(directory, john)
    assert directory.change_password(before, john.password, NEW_PASSWORD) is Outcome.OK
    assert directory.reset_password(before, OTHER_PASSWORD, must_change=True) is Outcome.OK
    after = account_of(directory, john)
    assert after.id == before.id
    assert directory.get_account(before.id) == after


def test_each_account_has_its_own_id(lab: DirectoryLab, directory: Directory) -> None:
    ids = {account_of(directory, person).id for person in lab.accounts.values()}
    assert len(ids) == len(lab.accounts)


# -- passwords with any character a user can type -----------------------------------------------
#
# ldap3 runs every password it is given as text through SASLprep and raises where SASLprep has no
# answer; those passwords read as "directory unavailable". What each directory itself holds decides.

#: Passwords SASLprep refuses that both directories store and check, as their own tools set them.
HELD_BY_BOTH = {
    "right-to-left beside Latin": "Lantern-שלום-Orbit-2024",
    "tab": "Winter\tHarbour-42x",
    "another control character": "Winter\x01Harbour-42x",
    "a C1 control character": "Winter\u0085Harbour-42x",
    "a left-to-right mark": "Winter\u200eHarbour-42x",
    "a private-use character": "Winter\ue000Harbour-42x",
}

#: New passwords holding a character no directory is given: each could be used nowhere else.
UNUSABLE_NEW = {
    "NUL": "Orchard\x00Kettle-Lantern-58",
    "trailing NUL": "Orchard-Kettle-Lantern-58\x00",
    "tab": "Orchard\tKettle-Lantern-58",
    "escape": "Orchard\x1bKettle-Lantern-58",
    "DEL": "Orchard\x7fKettle-Lantern-58",
    "a C1 control character": "Orchard\u0085Kettle-Lantern-58",
    "a lone surrogate": "Orchard\ud800Kettle-Lantern-58",
}


@pytest.mark.parametrize("password", list(HELD_BY_BOTH.values()), ids=list(HELD_BY_BOTH))
def test_a_password_set_by_the_directorys_own_tools_signs_in_whatever_saslprep_says(
    lab: DirectoryLab, directory: Directory, password: str
) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    lab.set_password(account.dn, password)

    assert verdict(directory, john.uid, password) is Outcome.OK
    assert verdict(directory, john.uid, password + "x") is Outcome.BAD_CREDENTIALS
    # And it is a current password like any other: it proves the change.
    assert directory.change_password(account, password, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_a_password_with_a_nul_signs_in_where_the_directory_holds_it_and_is_only_wrong_elsewhere(
    lab: DirectoryLab, directory: Directory
) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)
    password = "Winter\x00Harbour-42x"
    lab.set_password(account.dn, password)

    # slapd keeps and checks the bytes; Samba accepts the write but no bind ever matches it again.
    expected = {"openldap": Outcome.OK, "ad": Outcome.BAD_CREDENTIALS}[lab.kind]
    assert verdict(directory, john.uid, password) is expected
    assert verdict(directory, john.uid, "Winter") is Outcome.BAD_CREDENTIALS


@pytest.mark.parametrize("new", list(UNUSABLE_NEW.values()), ids=list(UNUSABLE_NEW))
def test_a_new_password_with_a_control_character_is_refused_as_such_and_nothing_changes(
    lab: DirectoryLab, directory: Directory, new: str
) -> None:
    john = lab.accounts["normal"]
    account = account_of(directory, john)

    assert directory.change_password(account, john.password, new) is Outcome.UNUSABLE_CHARACTERS
    assert directory.reset_password(account, new, must_change=False) is Outcome.UNUSABLE_CHARACTERS
    assert directory.reset_password(account, new, must_change=True) is Outcome.UNUSABLE_CHARACTERS

    assert verdict(directory, john.uid, john.password) is Outcome.OK
    standing = directory.status(account)
    assert standing.failures == 0
    assert not standing.must_change


@pytest.mark.parametrize(
    "new",
    [
        "Lantern-שלום-Orbit-2024",  # SASLprep refuses it
        "Orchard\u00a0Kettle-Lantern-58",  # SASLprep turns the no-break space into a space
        "Ｏrchard-Ｋettle-Lantern-58",  # and fullwidth letters into ASCII ones
    ],
    ids=["right-to-left beside Latin", "no-break space", "fullwidth letters"],
)
def test_a_new_password_with_any_printable_character_is_set_and_then_signs_in_as_typed(
    lab: DirectoryLab, directory: Directory, new: str
) -> None:
    john, laura = lab.accounts["normal"], lab.accounts["other"]
    account = account_of(directory, john)
    assert directory.change_password(account, john.password, new) is Outcome.OK
    assert verdict(directory, john.uid, new) is Outcome.OK
    assert verdict(directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS

    helped = account_of(directory, laura)
    assert directory.reset_password(helped, new, must_change=False) is Outcome.OK
    assert verdict(directory, laura.uid, new) is Outcome.OK


# -- policy -------------------------------------------------------------------------------


def test_the_policy_read_from_the_directory_is_the_one_it_enforces(directory: Directory) -> None:
    policy = directory.policy()
    assert policy.min_length == 8
    assert policy.history == 5
    assert policy.lockout_threshold == 5
    assert policy.lockout_minutes == 30
    assert policy.max_age_days == 90


# -- reused user-bind connections -----------------------------------------------------------


def idle_user_connections(directory: Directory) -> list[ldap3.Connection]:
    """The open connections waiting for the next user's bind (taken out: the test owns them now)."""
    users = directory._connections._users  # type: ignore[attr-defined]
    taken = []
    while not users.empty():
        taken.append(users.get_nowait())
    return taken


def who_am_i(conn: ldap3.Connection) -> str:
    """What the directory says this connection is bound as ("" for anonymous), by the WhoAmI operation."""
    return str(conn.extend.standard.who_am_i() or "")


@pytest.mark.parametrize("how", ["right password", "wrong password", "unknown name", "change"])
def test_a_reused_connection_never_carries_the_last_users_identity(
    lab: DirectoryLab, directory: Directory, how: str
) -> None:
    """A user-bind connection goes back to the pool anonymous, whatever the bind said, so the next
    request can never act as the last user, even if it forgot to bind."""
    john = lab.accounts["normal"]
    if how == "right password":
        assert verdict(directory, john.uid, john.password) is Outcome.OK
    elif how == "wrong password":
        assert verdict(directory, john.uid, "Not-His-Password-1") is Outcome.BAD_CREDENTIALS
    elif how == "unknown name":
        assert verdict(directory, "nobody-here", john.password) is Outcome.BAD_CREDENTIALS
    else:  # as the change page does it: the old password proven, then the change
        assert verdict(directory, john.uid, john.password) is Outcome.OK
        assert directory.change_password(account_of(directory, john), john.password, NEW_PASSWORD) is Outcome.OK

    pooled = idle_user_connections(directory)
    assert pooled, "the connection should have been kept for the next user"
    for conn in pooled:
        assert conn.user is None and conn.password is None, "the password must not stay on the connection"
        assert who_am_i(conn) == "", f"a pooled connection answers as {who_am_i(conn)!r}, not as anonymous"
        conn.unbind()


def test_the_next_user_on_a_reused_connection_gets_their_own_verdict(lab: DirectoryLab, directory: Directory) -> None:
    john, eloise = lab.accounts["normal"], lab.accounts["nonascii"]
    for _ in range(3):
        assert verdict(directory, john.uid, john.password) is Outcome.OK
        assert verdict(directory, eloise.uid, john.password) is Outcome.BAD_CREDENTIALS
        assert verdict(directory, eloise.uid, eloise.password) is Outcome.OK
        assert verdict(directory, john.uid, eloise.password) is Outcome.BAD_CREDENTIALS
    assert len(idle_user_connections(directory)) == 1, "one client thread needs one pooled connection"


# -- close -------------------------------------------------------------------------------


def test_close_drops_every_open_connection_and_the_directory_still_works_afterwards(
    lab: DirectoryLab, directory: Directory
) -> None:
    john = lab.accounts["normal"]
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    assert established_connections_to(lab.port) >= 1

    directory.close()

    assert established_connections_to(lab.port) == 0
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    directory.close()
    directory.close()


# -- when the directory fails -------------------------------------------------------------------


def test_a_directory_that_went_away_is_unavailable_not_a_wrong_password(
    lab: DirectoryLab, directory: Directory
) -> None:
    john = lab.accounts["normal"]
    directory.check()  # a pooled connection is now open, and about to die
    lab.stop()
    with pytest.raises(DirectoryUnavailable):
        directory.verify_password(john.uid, john.password)
    with pytest.raises(DirectoryUnavailable):
        directory.find_account(john.uid)
    with pytest.raises(DirectoryUnavailable):
        directory.check()


def test_a_directory_that_was_never_there_is_unavailable(lab: DirectoryLab) -> None:
    john = lab.accounts["normal"]
    lab.stop()
    cold = lab.connect()
    with pytest.raises(DirectoryUnavailable):
        cold.verify_password(john.uid, john.password)
    with pytest.raises(DirectoryUnavailable):
        cold.find_account(john.uid)


def test_a_directory_that_stops_answering_is_unavailable_rather_than_a_hang(lab: DirectoryLab) -> None:
    john = lab.accounts["normal"]
    warm = lab.connect(LDAP_TIMEOUT="1", LDAP_CONNECT_TIMEOUT="1")
    warm.check()  # holds an open, bound connection when the server freezes
    cold = lab.connect(LDAP_TIMEOUT="1", LDAP_CONNECT_TIMEOUT="1")
    with lab.frozen():
        with pytest.raises(DirectoryUnavailable):
            warm.verify_password(john.uid, john.password)
        with pytest.raises(DirectoryUnavailable):
            cold.check()


def test_opening_a_connection_is_bounded_by_the_connect_timeout_tls_handshake_included(lab: DirectoryLab) -> None:
    # A frozen server still completes TCP connects (the kernel does): only the TLS handshake can
    # tell. It must get LDAP_CONNECT_TIMEOUT, not LDAP_TIMEOUT (an hour here).
    cold = lab.connect(LDAP_CONNECT_TIMEOUT="1", LDAP_TIMEOUT="3600")
    with lab.frozen():
        outcome = finishes(cold.check)
    assert isinstance(outcome, DirectoryUnavailable)


def finishes(call: Callable[[], object], *, within: float = 120.0) -> BaseException | object:
    """What ``call`` returned or raised, run in a thread; fails if it is still waiting after ``within`` s.

    Not a measure of speed: the bounds under test are a second or two, ``within`` is generous,
    and a call that waits on a frozen directory for the wrong bound (an hour) never gets there.
    """
    result: list[BaseException | object] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still waiting on the directory after {within} s"
    return result[0]


def wait_until(condition: Callable[[], bool], *, within: float = 60.0) -> None:
    """Wait for ``condition`` to hold (a liveness check, not a timing)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def guard_of(directory: Directory) -> Guard:
    guard = getattr(directory, "guard", None)
    assert isinstance(guard, Guard), "every LDAP connector has one guard per process"
    return guard


def test_while_the_directory_is_frozen_calls_beyond_the_limit_fail_and_the_waiting_ones_finish_after(
    lab: DirectoryLab,
) -> None:
    john, laura = lab.accounts["normal"], lab.accounts["other"]
    # Operations may wait an hour: the two sign-ins below wait exactly until the thaw.
    directory = lab.connect(LDAP_MAX_CALLS="2", LDAP_QUEUE_TIMEOUT="1", LDAP_TIMEOUT="3600")
    directory.check()
    guard = guard_of(directory)
    verdicts: list[Outcome] = []

    def sign_in(person: SeedAccount) -> None:
        verdicts.append(verdict(directory, person.uid, person.password))

    lab.freeze()
    try:
        waiting = [threading.Thread(target=sign_in, args=(person,)) for person in (john, laura)]
        for thread in waiting:
            thread.start()
        wait_until(lambda: guard.in_flight == 2)

        # A third caller does not join them: it is told at once that the directory is unavailable.
        third = finishes(lambda: directory.find_account(john.uid))
        assert isinstance(third, DirectoryUnavailable)
        assert "LDAP_MAX_CALLS" in str(third)
        assert all(thread.is_alive() for thread in waiting)
    finally:
        lab.thaw()
    for thread in waiting:
        thread.join()
    assert verdicts == [Outcome.OK, Outcome.OK]
    assert guard.in_flight == 0
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_a_burst_on_a_healthy_directory_waits_for_a_slot_rather_than_failing(lab: DirectoryLab) -> None:
    # One slot, eight callers at once: each waits its turn (calls take milliseconds), none is refused.
    people = [lab.accounts[state] for state in ("normal", "other", "nonascii", "expiring")] * 2
    directory = lab.connect(LDAP_MAX_CALLS="1", LDAP_QUEUE_TIMEOUT="30")
    start = threading.Barrier(len(people))
    verdicts: list[Outcome | BaseException] = []

    def sign_in(person: SeedAccount) -> None:
        start.wait()
        try:
            verdicts.append(verdict(directory, person.uid, person.password))
        except DirectoryUnavailable as exc:
            verdicts.append(exc)

    threads = [threading.Thread(target=sign_in, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdicts == [Outcome.OK] * len(people)


def test_after_a_call_got_no_answer_the_next_ones_fail_at_once_without_asking(lab: DirectoryLab) -> None:
    john = lab.accounts["normal"]
    directory = lab.connect(LDAP_TIMEOUT="1", LDAP_CONNECT_TIMEOUT="1", LDAP_RETRY_AFTER="3600")
    directory.check()
    with lab.frozen():
        with pytest.raises(DirectoryUnavailable, match="stopped answering"):
            directory.verify_password(john.uid, john.password)
        assert guard_of(directory).open
        with pytest.raises(DirectoryUnavailable, match="not asking it again yet"):
            directory.find_account(john.uid)
    # Even with the directory back, this process does not ask before LDAP_RETRY_AFTER is over.
    with pytest.raises(DirectoryUnavailable, match="not asking it again yet"):
        directory.verify_password(john.uid, john.password)


def test_once_the_directory_answers_again_one_probe_closes_the_breaker(lab: DirectoryLab) -> None:
    john = lab.accounts["normal"]
    directory = lab.connect(LDAP_TIMEOUT="1", LDAP_CONNECT_TIMEOUT="1", LDAP_RETRY_AFTER="1")
    directory.check()
    with lab.frozen(), pytest.raises(DirectoryUnavailable):
        directory.verify_password(john.uid, john.password)
    guard = guard_of(directory)
    assert guard.open

    def answered() -> bool:
        try:
            return verdict(directory, john.uid, john.password) is Outcome.OK
        except DirectoryUnavailable:
            return False

    wait_until(answered)
    assert not guard.open
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_a_directory_that_refuses_connections_does_not_make_sspm_wait_once_it_is_back(lab: DirectoryLab) -> None:
    # Refusals fail in a moment by themselves: they must not trip the breaker (LDAP_RETRY_AFTER
    # of an hour here), or SSPM would go on refusing after the directory came back.
    john = lab.accounts["normal"]
    directory = lab.connect(LDAP_RETRY_AFTER="3600")
    stopped = lab.connect(LDAP_URL=f"ldaps://127.0.0.1:{free_port()}", LDAP_RETRY_AFTER="3600")
    with pytest.raises(DirectoryUnavailable):
        stopped.check()
    assert not guard_of(stopped).open
    assert verdict(directory, john.uid, john.password) is Outcome.OK


# -- Active Directory's own codes, each produced on the real DC ------------------------------
#
# connectors/ad_codes.py is the one table of AD's codes. Each row Samba can produce is shown
# here with the DC's raw answer and the connector's outcome side by side. Not here, because
# Samba never says it: bind data 525 (Samba answers 52e for an unknown user, see
# test_an_unknown_user_gets_no_account_and_bad_credentials) and a 0000052D refusal without a
# reason (Windows' form; Samba always names the rule).

FILETIME_2012 = "130000000000000000"  # accountExpires long past


@pytest.fixture
def ad(samba_dc: samba.SambaDC, accounts: dict[str, SeedAccount]) -> Iterator[ActiveDirectoryLab]:
    lab = ActiveDirectoryLab(samba_dc, accounts)
    yield lab
    lab.close()


def _as_admin(ad: ActiveDirectoryLab, dn: str, changes: dict[str, str | bytes]) -> None:
    conn = ad.admin()
    try:
        assert conn.modify(dn, {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in changes.items()}), (
            conn.result
        )
    finally:
        conn.unbind()


def _raw_bind(ad: ActiveDirectoryLab, dn: str, password: str) -> str:
    conn = ad.raw(dn, password)
    try:
        assert not conn.bind()
        assert conn.result["result"] == 49, conn.result
        return str(conn.result["message"])
    finally:
        conn.unbind()


@pytest.mark.parametrize(
    "login",
    ["éloïse", "ÉLOÏSE", "éloïse@partners.example", "eloise.cote@partners.example", "ELOISE.COTE@partners.example"],
)
def test_ad_an_account_is_found_by_user_name_upn_or_email(ad: ActiveDirectoryLab, login: str) -> None:
    directory = ad.connect()
    account, said = directory.verify_password(login, ad.accounts["nonascii"].password)
    assert said.outcome is Outcome.OK
    assert account is not None
    assert account.username == "éloïse"


@pytest.mark.parametrize(
    ("code", "state", "restriction", "expected"),
    [
        ("52e", "normal", None, Outcome.BAD_CREDENTIALS),  # with a wrong password
        ("530", "normal", {"logonHours": bytes(21)}, Outcome.DISABLED),  # no hour allowed
        ("531", "normal", {"userWorkstations": "OTHERPC"}, Outcome.DISABLED),
        ("532", "expired", None, Outcome.EXPIRED),
        ("533", "disabled", None, Outcome.DISABLED),
        ("701", "normal", {"accountExpires": FILETIME_2012}, Outcome.DISABLED),
        ("773", "temporary", None, Outcome.MUST_CHANGE),
        ("775", "locked", None, Outcome.LOCKED),
    ],
)
def test_ad_each_bind_code_is_the_outcome_in_the_table(
    ad: ActiveDirectoryLab, code: str, state: str, restriction: dict[str, str | bytes] | None, expected: Outcome
) -> None:
    person = ad.accounts[state]
    directory = ad.connect()
    account = account_of(directory, person)
    if restriction:
        _as_admin(ad, account.dn, restriction)
    password = "Not-His-Password-1" if code == "52e" else person.password

    assert f"data {code}," in _raw_bind(ad, account.dn, password)
    assert ad_codes.BIND_CODES[code] is expected
    assert verdict(directory, person.uid, password) is expected


@pytest.mark.parametrize(
    ("number", "case", "expected"),
    [
        ("00000056", "wrong old password", Outcome.BAD_CREDENTIALS),
        ("0000052D", "too short", Outcome.TOO_SHORT),
        ("0000052D", "complexity", Outcome.TOO_WEAK),
        ("0000052D", "already used", Outcome.IN_HISTORY),
        ("0000052D", "too young", Outcome.TOO_YOUNG),
        ("00000775", "locked out", Outcome.LOCKED),
    ],
)
def test_ad_each_refused_change_is_the_outcome_in_the_table(
    ad: ActiveDirectoryLab, number: str, case: str, expected: Outcome
) -> None:
    person = ad.accounts["locked" if case == "locked out" else "normal"]
    directory = ad.connect()
    account = account_of(directory, person)
    old, new = person.password, NEW_PASSWORD
    if case == "wrong old password":
        old = "Not-His-Password-1"
    elif case == "too short":
        new = "Ab1-xyz"
    elif case == "complexity":
        new = "orchard kettle lantern"  # one character class
    elif case == "already used":
        new = person.password
    elif case == "too young":
        assert directory.change_password(account, old, NEW_PASSWORD) is Outcome.OK
        _as_admin(ad, ad.dc.domain_dn, {"minPwdAge": "-864000000000"})  # one day
        old, new = NEW_PASSWORD, OTHER_PASSWORD

    raw = ad.raw(ad.dc.service_dn, ad.dc.service_password)
    try:
        assert raw.bind(), raw.result
        assert not raw.extend.microsoft.modify_password(account.dn, new, old)
        message = str(raw.result["message"])
    finally:
        raw.unbind()
    assert message.startswith(f"{number}:"), message
    assert number != "0000052D" or case in message, message

    assert directory.change_password(account, old, new) is expected
    # Nothing changed.
    current = NEW_PASSWORD if case == "too young" else person.password
    locked = case == "locked out"
    assert verdict(directory, person.uid, current) is (Outcome.LOCKED if locked else Outcome.OK)
    if new != current:
        assert verdict(directory, person.uid, new) is (Outcome.LOCKED if locked else Outcome.BAD_CREDENTIALS)


@pytest.mark.parametrize(
    ("new", "expected"),
    [("Ab1-xyz", Outcome.TOO_SHORT), ("orchard kettle lantern", Outcome.TOO_WEAK)],
)
def test_ad_a_reset_is_held_to_the_length_and_complexity_rules(
    ad: ActiveDirectoryLab, new: str, expected: Outcome
) -> None:
    john = ad.accounts["normal"]
    directory = ad.connect()
    account = account_of(directory, john)
    assert directory.reset_password(account, new, must_change=True) is expected
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_ad_a_temporary_password_cannot_even_bind_until_it_is_changed(ad: ActiveDirectoryLab) -> None:
    """AD's form of the temporary-password proof, with no SSPM code in between."""
    john = ad.accounts["normal"]
    directory = ad.connect()
    account = account_of(directory, john)
    assert directory.reset_password(account, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK

    assert "data 773," in _raw_bind(ad, account.dn, TEMPORARY_PASSWORD)
    # Nor can the user change it without an authenticated connection of someone else's.
    anonymous = ad.raw("", "")
    try:
        anonymous.open()
        assert not anonymous.extend.microsoft.modify_password(account.dn, NEW_PASSWORD, TEMPORARY_PASSWORD)
    finally:
        anonymous.unbind()

    assert directory.change_password(account, TEMPORARY_PASSWORD, NEW_PASSWORD) is Outcome.OK
    conn = ad.raw(account.dn, NEW_PASSWORD)
    try:
        assert conn.bind(), conn.result
    finally:
        conn.unbind()


@pytest.mark.parametrize(
    ("state", "restriction"),
    [("disabled", None), ("normal", {"accountExpires": FILETIME_2012})],
    ids=["ACCOUNTDISABLE", "accountExpires"],
)
def test_ad_a_turned_off_account_is_disabled_and_neither_reset_nor_unlocked(
    ad: ActiveDirectoryLab, state: str, restriction: dict[str, str | bytes] | None
) -> None:
    person = ad.accounts[state]
    directory = ad.connect()
    if restriction:
        _as_admin(ad, account_of(directory, person).dn, restriction)
    account = account_of(directory, person)
    assert account.disabled
    assert directory.status(account).disabled

    assert directory.reset_password(account, NEW_PASSWORD, must_change=False) is Outcome.DISABLED
    assert directory.unlock(account) is Outcome.DISABLED

    assert verdict(directory, person.uid, NEW_PASSWORD) is Outcome.BAD_CREDENTIALS
    assert verdict(directory, person.uid, person.password) is Outcome.DISABLED


def test_ad_the_service_account_has_no_rights_outside_the_delegated_ou(ad: ActiveDirectoryLab) -> None:
    # An operator who set LDAP_BASE_DN to the whole domain finds Administrator (CN=Users)...
    directory = ad.connect(LDAP_BASE_DN=ad.dc.domain_dn)
    administrator = directory.find_account("Administrator")
    assert administrator is not None
    assert administrator.dn == ad.dc.admin_dn

    # ...but the domain refuses SSPM's service account, and SSPM says it is set up wrong.
    with pytest.raises(DirectoryMisconfigured, match="may not reset the password"):
        directory.reset_password(administrator, NEW_PASSWORD, must_change=False)
    ad.admin().unbind()  # admin() binds with the Administrator's password: still the same


def test_ad_the_service_account_cannot_enable_a_disabled_account(ad: ActiveDirectoryLab) -> None:
    ravi = account_of(ad.connect(), ad.accounts["disabled"])
    raw = ad.raw(ad.dc.service_dn, ad.dc.service_password)
    try:
        assert raw.bind(), raw.result
        assert not raw.modify(ravi.dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, ["512"])]})
        assert raw.result["result"] == LDAP_INSUFFICIENT_ACCESS, raw.result
    finally:
        raw.unbind()
