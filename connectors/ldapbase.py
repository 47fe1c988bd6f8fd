"""What every LDAP-speaking directory shares, whatever its kind.

The connection handling, the start-up check, the cached policy, the decoy
DN for unknown users, the translation of a refused service operation into
an error, and the parts of the administration, provisioning and sync roles
that are only LDAP (escaping a typed term, paging, checking that an account
is under the provisioning base) are the same for OpenLDAP and Active
Directory; each kind's module says only what differs.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import logging
import re
import threading
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from ldap3 import BASE, MODIFY_REPLACE, SUBTREE
from ldap3.utils.conv import escape_filter_chars

from connectors import dn, ldapconn
from connectors.directory import (
    Account,
    AccountDetails,
    AccountPage,
    AccountStatus,
    Changes,
    DirectoryMisconfigured,
    DirectoryUnavailable,
    Location,
    LoginTaken,
    NoSuchLocation,
    Outcome,
    PasswordPolicy,
    Person,
)
from connectors.guard import Guard
from connectors.ldapconn import raise_for
from connectors.settings import DirectorySettings

#: How a kind reads one attribute as text (its values come back in different shapes).
TextOf = Callable[[dict[str, object], str], str | None]

__all__ = ["LdapDirectory", "raise_for"]

log = logging.getLogger(__name__)

#: How long the policy entry is trusted before it is read again.
POLICY_TTL_SECONDS = 300.0

# LDAP result codes every kind reacts to.
SUCCESS = 0
NO_SUCH_ATTRIBUTE = 16
CONSTRAINT_VIOLATION = 19
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS = 50
UNWILLING_TO_PERFORM = 53
AUTHORIZATION_DENIED = 123
SIZE_LIMIT_EXCEEDED = 4
ENTRY_ALREADY_EXISTS = 68

#: The most accounts one page of a search may hold.
MAX_PAGE = 100
#: How many names an RDN is tried with before creating or moving gives up.
MAX_SUFFIX = 20
#: Longest name, OU or login accepted: Active Directory's bound for cn, ou,
#: givenName and sn, so an account made on one kind could be made on the other.
MAX_NAME = 64
_PROVISIONING_SETTINGS = "LDAP_PROVISIONING_BIND_DN / LDAP_PROVISIONING_BIND_PASSWORD"
#: What a login may not hold: Active Directory's forbidden sAMAccountName
#: characters, ``@`` (a login must never look like someone's email or UPN),
#: and spaces.
_LOGIN_FORBIDDEN = frozenset('"/\\[]:;|=,+*?<>@')
_PHONE = re.compile(r"[0-9+()./ -]{1,32}")
_EMAIL = re.compile(r"[!-~]{1,256}")


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def check_login(login: str, longest: int = MAX_NAME) -> None:
    """Refuse a login no directory should be given; ValueError says why."""
    if not login or len(login) > longest:
        raise ValueError(f"a login has 1 to {longest} characters")
    if has_control_characters(login) or any(char.isspace() or char in _LOGIN_FORBIDDEN for char in login):
        raise ValueError('a login holds no space, control character or any of " / \\ [ ] : ; | = , + * ? < > @')


def check_person(person: Person) -> None:
    """Refuse names and contact details no directory should be given; ValueError says why."""
    if not person.surname.strip():
        raise ValueError("a surname is required")
    for label, value in (
        ("given name", person.given_name),
        ("surname", person.surname),
        ("display name", person.shown_as),
    ):
        if len(value) > MAX_NAME or has_control_characters(value):
            raise ValueError(f"a {label} has at most {MAX_NAME} characters and no control character")
    if person.email and (not _EMAIL.fullmatch(person.email) or person.email.count("@") != 1):
        raise ValueError("an email is one address, in ASCII, with no space")
    for label, optional in (("title", person.title), ("department", person.department)):
        if optional and (len(optional) > MAX_NAME or has_control_characters(optional)):
            raise ValueError(f"a {label} has at most {MAX_NAME} characters and no control character")
    organization = person.organization
    if organization is not None and (
        not organization.strip() or len(organization) > MAX_NAME or has_control_characters(organization)
    ):
        raise ValueError(f"an organization has 1 to {MAX_NAME} characters and no control character")
    for number in (person.phone, person.mobile):
        if number and not _PHONE.fullmatch(number):
            raise ValueError("a phone number holds digits, spaces and + ( ) . / - only")


def check_location(location: Location) -> None:
    for name in location:
        if not name.strip() or len(name) > MAX_NAME or has_control_characters(name):
            raise ValueError(f"an OU name has 1 to {MAX_NAME} characters and no control character")


def encode_page(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode("utf-8")).decode("ascii")


def decode_page(page: str) -> tuple[str, str]:
    """The position a ``next_page`` holds; it is only ever compared in Python, never sent."""
    try:
        key = json.loads(base64.urlsafe_b64decode(page.encode("ascii")))
    except (ValueError, UnicodeError):
        raise ValueError("not a page a search gave") from None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(part, str) for part in key)):
        raise ValueError("not a page a search gave")
    return key[0], key[1]


_P = ParamSpec("_P")
_R = TypeVar("_R")
_D = TypeVar("_D", bound="LdapDirectory")


def one_server(method: Callable[Concatenate[_D, _P], _R]) -> Callable[Concatenate[_D, _P], _R]:
    """Every directory call of ``method`` goes to one server (see :meth:`LdapDirectory.same_server`).

    For methods that write and then read back what they wrote (an account
    created then read, a password reset then the account's status): with
    replicas, the read must come from the server that took the write.
    """

    @wraps(method)
    def pinned(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.same_server():
            return method(self, *args, **kwargs)

    return pinned


class LdapDirectory(ABC):
    """The shared half of an LDAP directory connector."""

    #: Every attribute :meth:`_details` reads, asked for in one search.
    _DETAIL_ATTRIBUTES: ClassVar[tuple[str, ...]]
    #: The attributes a helpdesk's term is matched against, as a prefix.
    _SEARCHED_ATTRIBUTES: ClassVar[tuple[str, ...]]
    #: How this kind spells an OU's RDN type.
    _OU: ClassVar[str] = "ou"

    def __init__(self, settings: DirectorySettings) -> None:
        self._settings = settings
        self._connections = ldapconn.Connections(settings, self._wire)
        #: Account lifecycle: as the provisioning account when there is one.
        self._lifecycle = self._connections
        if settings.provisioning_bind_dn:
            self._lifecycle = ldapconn.Connections(
                settings,
                self._wire,
                account=(settings.provisioning_bind_dn, settings.provisioning_bind_password),
                setting_names=_PROVISIONING_SETTINGS,
                guard=self._connections.guard,
                servers=self._connections.servers,
            )
        #: Every account SSPM serves: whatever the user filter finds with any login.
        self._every_account = settings.user_filter.format(login="*")
        #: What :meth:`_details` asks for: its kind's attributes, and the organization's when one is configured.
        self._detail_attributes = sorted(
            {*self._DETAIL_ATTRIBUTES, *([settings.organization_attribute] if settings.organization_attribute else [])}
        )
        self._policy: PasswordPolicy | None = None
        self._policy_read_at = 0.0
        self._policy_lock = threading.Lock()
        self._policy_reading = False
        # Binds for unknown users go to a DN that cannot exist, so they cost
        # the directory a bind round trip just like a real wrong password.
        self._decoy_parent = f"cn=sspm-no-such-account,{settings.base_dn}"

    def decoy_dn(self, login: str, attribute: str) -> str:
        """A DN no entry has, for a login nobody has.

        Named by a digest, not the typed text, so any login (a NUL, a very
        long name) still makes a valid DN.
        """
        digest = hashlib.sha256(login.strip().encode("utf-8", "surrogatepass")).hexdigest()
        return f"{attribute}={digest},{self._decoy_parent}"

    @staticmethod
    @abstractmethod
    def _wire(password: str) -> bytes:
        """A password as this kind of directory compares it (ldapconn.as_typed or ldapconn.prepared)."""

    @property
    def guard(self) -> Guard:
        """This process's bulkhead and breaker for the directory (connectors/guard.py)."""
        return self._connections.guard

    @contextmanager
    def same_server(self) -> Iterator[None]:
        """Inside, this thread's directory calls all go to one server while it answers.

        With several servers (LDAP_URL's list), a return to the preferred
        one may happen at any moment; a use case that writes and then reads
        what it wrote (a reset, then the account's status) wraps both in
        this, so the read comes from the server that took the write, before
        replication has carried it anywhere else. With one server it changes
        nothing.
        """
        with self._connections.servers.pinned():
            yield

    @staticmethod
    def refuse_new(new: str) -> Outcome | None:
        """The outcome for a new password no directory should be given, before any directory work."""
        return Outcome.UNUSABLE_CHARACTERS if ldapconn.unusable_characters(new) else None

    def check(self) -> None:
        with self._connections.service() as conn:
            conn.search(self._settings.base_dn, "(objectClass=*)", BASE, attributes=["1.1"])
            if conn.result["result"] != SUCCESS:
                raise DirectoryMisconfigured(
                    f"the service account cannot read LDAP_BASE_DN {self._settings.base_dn!r}: "
                    f"{conn.result['description']}"
                )
        if self._settings.provisioning_bind_dn or self._settings.provision_base_dn:
            base = self._settings.provision_base_dn or self._settings.base_dn
            with self._lifecycle.service() as conn:
                conn.search(base, "(objectClass=*)", BASE, attributes=["1.1"])
                if conn.result["result"] != SUCCESS:
                    raise DirectoryMisconfigured(
                        f"{self._lifecycle_who} cannot read LDAP_PROVISION_BASE_DN {base!r}: "
                        f"{conn.result['description']}"
                    )
        self.policy()

    def policy(self) -> PasswordPolicy:
        """The cached policy; read again after POLICY_TTL_SECONDS, by one caller at a time.

        Pages that only show the rules (the home page) must not wait on a
        directory that stopped answering: while one caller reads the policy
        again, the others get the one read before, and if the directory
        cannot be reached that one is kept until it can (the rules rarely
        change; the directory enforces its own anyway).
        """
        with self._policy_lock:
            known = self._policy
            if known is not None and (
                self._policy_reading or time.monotonic() - self._policy_read_at < POLICY_TTL_SECONDS
            ):
                return known
            self._policy_reading = True
        try:
            policy = self._read_policy()
        except DirectoryUnavailable as exc:
            if known is None:
                raise
            log.debug("keeping the password policy read before: the directory is unavailable (%s)", exc)
            return known
        finally:
            with self._policy_lock:
                self._policy_reading = False
        with self._policy_lock:
            self._policy, self._policy_read_at = policy, time.monotonic()
        return policy

    @abstractmethod
    def _read_policy(self) -> PasswordPolicy:
        """Read the policy users are under, from wherever this kind keeps it."""

    def close(self) -> None:
        self._connections.close()
        if self._lifecycle is not self._connections:
            self._lifecycle.close()

    @property
    def _lifecycle_who(self) -> str:
        return "the provisioning account" if self._settings.provisioning_bind_dn else "the service account"

    # -- reading accounts in full (administration, sync) ------------------------

    @abstractmethod
    def _id_filter(self, account_id: str) -> str | None:
        """A filter for the account with this immutable id; None for text that is no id."""

    @abstractmethod
    def _details(self, entry: dict[str, Any]) -> AccountDetails:
        """An account in full from one search entry holding :attr:`_DETAIL_ATTRIBUTES`."""

    #: The attribute each kind keeps the department or unit in.
    _DEPARTMENT: ClassVar[str]

    def _details_from(
        self, account: Account, standing: AccountStatus, attributes: dict[str, object], text: TextOf
    ) -> AccountDetails:
        """One AccountDetails from what both kinds read: ``text(attributes, name)`` is the kind's way to a string."""
        return AccountDetails(
            id=account.id,
            dn=account.dn,
            login=account.username,
            display_name=account.display_name,
            given_name=account.given_name,
            surname=text(attributes, "sn") or "",
            email=account.email,
            phone=text(attributes, "telephoneNumber"),
            title=text(attributes, "title"),
            department=text(attributes, self._DEPARTMENT),
            mobile=text(attributes, "mobile"),
            location=dn.parent(account.dn),
            locked=standing.locked,
            disabled=standing.disabled,
            expired=standing.expired(datetime.now(UTC)),
            must_change=standing.must_change,
            password_set_at=standing.password_changed_at,
            expires_at=standing.expires_at,
            organization=self._organization(attributes),
            locked_since=standing.locked_since,
            failures=standing.failures,
            failure_times=standing.failure_times,
        )

    def _organization(self, attributes: Mapping[str, Any]) -> str | None:
        """The configured organization attribute's (first) value, as text; None when unset or absent."""
        name = self._settings.organization_attribute
        value = attributes.get(name) if name else None
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is None:
            return None
        return str(value).strip() or None

    def account_details(self, account_id: str) -> AccountDetails | None:
        query = self._id_filter(account_id)
        if query is None:
            return None
        with self._connections.service() as conn:
            conn.search(self._settings.base_dn, query, SUBTREE, attributes=self._detail_attributes, size_limit=2)
            code = conn.result["result"]
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if code == SIZE_LIMIT_EXCEEDED or len(entries) > 1:
            raise DirectoryUnavailable("two entries claim one immutable id")
        if code not in (SUCCESS, NO_SUCH_OBJECT):
            raise DirectoryUnavailable(f"directory search failed ({conn.result['description']})")
        return self._details(entries[0]) if entries else None

    def _read_all(self, query: str, page_size: int) -> Iterator[AccountDetails]:
        for entries in self._connections.pages(self._settings.base_dn, query, self._detail_attributes, page_size):
            yield from (self._details(entry) for entry in entries)

    def search_accounts(self, term: str, *, limit: int = 20, page: str | None = None) -> AccountPage:
        after = decode_page(page) if page is not None else None
        limit = max(1, min(limit, MAX_PAGE))
        term = term.strip()
        # Samba ends a filter value at an (escaped) NUL: "jsmith" + NUL would
        # look for "jsmith"; no name holds a control character anyway.
        if not term or has_control_characters(term):
            return AccountPage((), None)
        prefix = escape_filter_chars(term) + "*"
        matches = "".join(f"({name}={prefix})" for name in self._SEARCHED_ATTRIBUTES)
        query = f"(&{self._every_account}(|{matches}))"

        def key(found: AccountDetails) -> tuple[str, str]:
            return (found.login.casefold(), found.id)

        candidates = (found for found in self._read_all(query, MAX_PAGE) if after is None or key(found) > after)
        # The smallest limit + 1 in login order: a heap of that size, however many match.
        first = heapq.nsmallest(limit + 1, candidates, key=key)
        shown = tuple(first[:limit])
        return AccountPage(shown, encode_page(key(shown[-1])) if len(first) > limit else None)

    # -- sync --------------------------------------------------------------------

    def all_accounts(self, *, page_size: int = 500) -> Iterator[AccountDetails]:
        return self._read_all(self._every_account, page_size)

    @abstractmethod
    def _sync_position(self, checkpoint: str | None) -> tuple[str, str | None]:
        """Where the directory stands now (the next checkpoint), and the filter for
        what changed after ``checkpoint`` (None: everything, for an unknown one)."""

    def changes_since(self, checkpoint: str | None, *, page_size: int = 500) -> Changes:
        # Read the position first: whatever changes during the read is after
        # it, so the next read brings it again rather than never.
        now, changed = self._sync_position(checkpoint)
        query = self._every_account if changed is None else f"(&{self._every_account}{changed})"
        return Changes(now, self._read_all(query, page_size))

    # -- provisioning --------------------------------------------------------------

    def _provision_base(self) -> str:
        base = self._settings.provision_base_dn
        if not base:
            raise DirectoryMisconfigured("provisioning is off: LDAP_PROVISION_BASE_DN is not set")
        return base

    def _location_dn(self, location: Location) -> str:
        check_location(location)
        ous = [f"{self._OU}={dn.escape_value(name)}" for name in reversed(location)]
        return ",".join([*ous, self._provision_base()])

    @abstractmethod
    def get_account(self, account_id: str) -> Account | None:
        """Look an account up by its immutable id (each kind's own filter and attributes)."""

    @abstractmethod
    def _person_written(self, person: Person) -> dict[str, list[str]]:
        """The kind's attributes for a person's names and contacts (an empty list clears one)."""

    @one_server
    def update_account(self, account: Account, person: Person) -> Account:
        check_person(person)
        found = self._provisioned(account)
        if person.email:
            self._check_free([person.email], found.id)
        with self._lifecycle.service() as conn:
            written = {**self._person_written(person), **self._organization_written(person)}
            changes = {name: [(MODIFY_REPLACE, value)] for name, value in written.items()}
            conn.modify(found.dn, changes)
            raise_for(conn.result, "change the account", self._lifecycle_who)
        updated = self.get_account(found.id)
        if updated is None:
            raise DirectoryUnavailable("the account changed out of sight")
        return updated

    def _provisioned(self, account: Account) -> AccountDetails:
        """The account as the directory has it now, found by its id: never by a DN handed in."""
        base = self._provision_base()
        found = self.account_details(account.id)
        if found is None or not dn.within(found.dn, base) or dn.same(found.dn, base):
            raise ValueError("this account is not under LDAP_PROVISION_BASE_DN: provisioning may not touch it")
        return found

    def _check_free(self, logins: list[str], account_id: str | None = None) -> None:
        """Raise LoginTaken if anyone but ``account_id`` signs in with one of ``logins``."""
        for login in logins:
            query = self._settings.user_filter.format(login=escape_filter_chars(login))
            with self._connections.service() as conn:
                conn.search(self._settings.base_dn, query, SUBTREE, attributes=self._detail_attributes, size_limit=3)
                code = conn.result["result"]
                entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            if code not in (SUCCESS, NO_SUCH_OBJECT, SIZE_LIMIT_EXCEEDED):
                raise DirectoryUnavailable(f"directory search failed ({conn.result['description']})")
            if any(self._details(entry).id != account_id for entry in entries):
                raise LoginTaken(f"{login!r} already signs someone in")

    def _organization_written(self, person: Person) -> dict[str, list[str]]:
        """The organization attribute's value for ``person``; nothing when none is configured or given."""
        name = self._settings.organization_attribute
        return {name: [person.organization]} if name and person.organization is not None else {}

    def _check_location(self, target: str) -> None:
        with self._lifecycle.service() as conn:
            conn.search(target, "(objectClass=*)", BASE, attributes=["1.1"])
            code = conn.result["result"]
        if code == NO_SUCH_OBJECT:
            raise NoSuchLocation(f"{target} does not exist")
        raise_for(conn.result, "read the place accounts go", self._lifecycle_who)

    def locations(self) -> list[Location]:
        base = self._provision_base()
        found: list[Location] = [()]
        for entries in self._lifecycle.pages(base, "(objectClass=organizationalUnit)", ["1.1"], MAX_PAGE):
            for entry in entries:
                path = dn.path_below(entry["dn"], base)
                if path:
                    found.append(path)
        return sorted(found, key=lambda path: [name.casefold() for name in path])

    def delete_account(self, account: Account) -> None:
        try:
            found = self._provisioned(account)
        except ValueError:
            if self.account_details(account.id) is None:
                return  # already gone
            raise
        with self._lifecycle.service() as conn:
            conn.delete(found.dn)
            if conn.result["result"] != NO_SUCH_OBJECT:
                raise_for(conn.result, "delete the account", self._lifecycle_who)

    @one_server
    def _move(self, found: AccountDetails, target: str, rdns: Iterator[str]) -> Account:
        """Move ``found`` under ``target``, trying each RDN in turn while the name is taken there."""
        self._check_location(target)
        if dn.same(dn.parent(found.dn), target):
            return found.account
        for rdn in rdns:
            with self._lifecycle.service() as conn:
                conn.modify_dn(found.dn, rdn, new_superior=target)
                code = conn.result["result"]
                if code == ENTRY_ALREADY_EXISTS:
                    continue
                raise_for(conn.result, "move the account", self._lifecycle_who)
            moved = self.account_details(found.id)
            if moved is None:
                raise DirectoryUnavailable("the account moved out of sight")
            return moved.account
        raise LoginTaken(f"every name tried for the account is taken in {target}")
