"""The contract every directory kind fulfils, in plain Python.

The application speaks only this vocabulary: it never sees an LDAP result
code, a control or an ldap3 object. Each connector module translates its
directory's answers into these outcomes at one edge, so adding a directory
kind means adding a module, not touching the app.

The contract comes in roles, one Protocol each, so a part of the app asks
for no more than it uses: :class:`SelfService` (what the user-facing pages
need), :class:`AccountAdministration` (a helpdesk console),
:class:`Provisioning` (creating and removing accounts) and
:class:`SyncReader` (copying the directory elsewhere). :class:`Directory`
is all four, which every connector is. No method belongs to two roles.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


class Outcome(enum.Enum):
    """What the directory decided, in words the app can translate.

    One member per thing a user can be told to do differently; anything
    the user cannot act on (protocol errors, timeouts) is an exception.
    """

    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    DISABLED = "disabled"
    EXPIRED = "expired"
    MUST_CHANGE = "must_change"
    TOO_SHORT = "too_short"
    TOO_WEAK = "too_weak"
    IN_HISTORY = "in_history"
    TOO_YOUNG = "too_young"
    #: The new password holds a character the directory must not be given
    #: (a control character such as NUL or tab): it could not be used to sign
    #: in anywhere else, or (Samba, with a NUL) not at all.
    UNUSABLE_CHARACTERS = "unusable_characters"


#: Outcomes of a password check that prove the password was right.
PASSWORD_PROVEN = frozenset({Outcome.OK, Outcome.EXPIRED, Outcome.MUST_CHANGE})


class DirectoryError(Exception):
    """Base of every error a connector raises; never carries a password."""


class DirectoryUnavailable(DirectoryError):
    """The directory could not be reached or did not answer in time.

    Nothing was changed (or the change cannot be confirmed): the user is
    told to try again, never that it worked.
    """


class DirectoryMisconfigured(DirectoryError):
    """The directory answered, but SSPM's own set-up is wrong.

    Raised for a bad service password, a missing right or an unreadable
    policy: an operator has to act, so it is logged loudly and shown to
    users only as "try again later".
    """


class LoginTaken(DirectoryError):
    """A login or an email is already someone else's: nothing was written.

    An email counts because a user may sign in with it: two accounts with
    one address would make it find neither.
    """


class NoSuchLocation(DirectoryError):
    """The place an account was to be created in or moved to does not exist: nothing changed."""


@dataclass(frozen=True)
class Account:
    """A directory account as SSPM knows it.

    ``id`` is the directory's immutable identifier (entryUUID, objectGUID):
    everything SSPM stores about an account is keyed by it, so a rename
    keeps enrollments and history attached.
    """

    id: str
    dn: str
    username: str
    display_name: str
    given_name: str = ""
    email: str | None = None
    #: Turned off by an administrator (not a lockout): nothing SSPM does may
    #: turn it back on, so recovery refuses it.
    disabled: bool = False


@dataclass(frozen=True)
class Verdict:
    """The answer to "is this the account's password?"."""

    outcome: Outcome
    #: Seconds until the password expires, when the directory warned.
    expires_in: int | None = None

    @property
    def password_proven(self) -> bool:
        return self.outcome in PASSWORD_PROVEN


@dataclass(frozen=True)
class AccountStatus:
    """The account's standing, read by the service account.

    Reported as the directory has it at the moment of reading; SSPM never
    caches it.
    """

    locked: bool
    locked_since: datetime | None
    failures: int
    disabled: bool
    must_change: bool
    password_changed_at: datetime | None
    expires_at: datetime | None
    #: When the wrong passwords the directory still counts were typed, oldest
    #: first, so a helpdesk can tell a typo this morning from a night of
    #: guesses: every one on OpenLDAP (``pwdFailureTime``), only the last on
    #: Active Directory (``badPasswordTime``), which keeps no more.
    failure_times: tuple[datetime, ...] = ()

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class PasswordPolicy:
    """The parts of the directory's password policy users are told about.

    Read from the directory itself so the rules shown on a page are the
    rules the directory will enforce.
    """

    min_length: int
    history: int
    max_age_days: int | None
    min_age_hours: int
    lockout_threshold: int | None
    lockout_minutes: int | None


@runtime_checkable
class SelfService(Protocol):
    """What the user-facing pages ask of a directory: sign-in, change, recovery.

    Methods that can be refused for a reason the user can act on return an
    :class:`Outcome`; failures of the directory itself raise
    :class:`DirectoryError`. Passwords are never empty here: callers refuse
    empty ones before any call, and connectors check again.
    """

    def check(self) -> None:
        """Prove the directory is reachable and the service account works.

        Called at start so a misconfiguration stops the app with one clear
        line instead of failing at the first request.
        """

    def find_account(self, login: str) -> Account | None:
        """Look an account up by the name a user types."""

    def get_account(self, account_id: str) -> Account | None:
        """Look an account up by its immutable id."""

    def verify_password(self, login: str, password: str) -> tuple[Account | None, Verdict]:
        """Check a user's password, as the user, and say what it proves.

        Takes the typed login rather than an Account so that an unknown
        user costs the same directory work as a known one: the answer for
        a missing account is ``(None, BAD_CREDENTIALS)``, indistinguishable
        in time and shape from a wrong password.
        """

    def change_password(self, account: Account, old: str, new: str) -> Outcome:
        """Change the password as the user would, under the user's policy.

        Works for a current, an expired-but-known and a temporary password;
        the directory enforces length, history and age. Any character a
        user can type is accepted where the directory can store it: a
        current password is sent as the directory compares it, whatever
        SASLprep thinks of it, and a new one the directory could not store
        is ``UNUSABLE_CHARACTERS``, never an error. A disabled account is
        ``DISABLED`` and nothing changes (on OpenLDAP the change would
        otherwise clear the lock that disables it).
        """

    def reset_password(self, account: Account, new: str, *, must_change: bool) -> Outcome:
        """Set a password without the old one (helpdesk, recovery).

        With ``must_change`` the password is temporary: it can be used for
        nothing but choosing a new one. A reset clears a lockout; a disabled
        account is refused (``DISABLED``), since on some directories a
        password change would quietly enable it again.
        """

    def status(self, account: Account) -> AccountStatus:
        """Read the account's lock, expiry and must-change state."""

    def unlock(self, account: Account) -> Outcome:
        """Clear a lockout without touching the password.

        ``OK`` also when there was no lock; ``DISABLED`` (and nothing done)
        for an account an administrator turned off.
        """

    def policy(self) -> PasswordPolicy:
        """Read the password policy that applies to users."""

    def close(self) -> None:
        """Drop pooled connections (before a fork, at exit)."""


@dataclass(frozen=True)
class AccountDetails:
    """Everything a helpdesk sees of one account, read in one go.

    The standing (locked, disabled, expired, must change) is as the
    directory had it at the moment of reading, like :class:`AccountStatus`.
    """

    id: str
    dn: str
    login: str
    display_name: str
    given_name: str
    surname: str
    email: str | None
    phone: str | None
    #: The DN of the container the account is in (its OU).
    location: str
    locked: bool
    disabled: bool
    expired: bool
    must_change: bool
    #: When the password was last set; None where the directory does not say
    #: (never set, or a temporary password on Active Directory).
    password_set_at: datetime | None
    expires_at: datetime | None
    #: The value of the attribute ``DirectorySettings.organization_attribute``
    #: names, as the directory has it; None when none is configured or the
    #: account has none. (Where SSPM reads organizations from OUs, ``location`` says.)
    organization: str | None = None
    #: What an administrator wrote of the person beside the names (see :class:`Person`).
    title: str | None = None
    department: str | None = None
    mobile: str | None = None
    #: The lockout insight a helpdesk gives a caller, as :class:`AccountStatus` has it:
    #: since when the lock lasts (None when not locked), the wrong passwords still
    #: counted, and when they were typed.
    locked_since: datetime | None = None
    failures: int = 0
    failure_times: tuple[datetime, ...] = ()

    @property
    def account(self) -> Account:
        """The same account as the self-service methods take it (unlock, reset...)."""
        return Account(
            id=self.id,
            dn=self.dn,
            username=self.login,
            display_name=self.display_name,
            given_name=self.given_name,
            email=self.email,
            disabled=self.disabled,
        )


@dataclass(frozen=True)
class AccountPage:
    """One page of a search, in login order."""

    accounts: tuple[AccountDetails, ...]
    #: Give it back to get the next page; None on the last one. Opaque.
    next_page: str | None


@dataclass(frozen=True)
class Person:
    """The names and contact details of an account, as an administrator writes them.

    A whole replacement: ``None`` (or an empty string) for ``email``,
    ``phone``, ``title``, ``department`` and ``mobile`` clears them, so an
    update starts from what :meth:`AccountAdministration.account_details`
    read. ``display_name`` defaults to given name and surname. ``phone`` is
    the office number (telephoneNumber); ``mobile`` the directory's mobile
    attribute, which a clinician's mobile application signs in with.
    """

    given_name: str
    surname: str
    email: str | None = None
    phone: str | None = None
    display_name: str = ""
    title: str | None = None
    department: str | None = None
    mobile: str | None = None
    #: Written to the attribute ``DirectorySettings.organization_attribute`` names, when one is
    #: configured (where organizations are OUs, the location says it). ``None`` writes nothing
    #: and, unlike the fields above, leaves an account's organization as it is on an update.
    organization: str | None = None

    @property
    def shown_as(self) -> str:
        return self.display_name or " ".join(name for name in (self.given_name, self.surname) if name)


#: A place under the provisioning base, as the names of the OUs leading to
#: it, outermost first: ``("Staff", "Paris")`` is ``OU=Paris,OU=Staff,<base>``.
#: Names, never DN syntax: each is escaped by the connector. ``()`` is the base.
Location = tuple[str, ...]


@dataclass(frozen=True)
class Changes:
    """Accounts changed since a checkpoint, read page by page while iterated.

    Store :attr:`checkpoint` only once every account was handled: the next
    read then starts there. An account changed during the read may come
    again next time (at least once, never missed); a deleted one never
    comes, only a full pass (:meth:`SyncReader.all_accounts`) shows it gone.
    """

    checkpoint: str
    accounts: Iterator[AccountDetails]

    def __iter__(self) -> Iterator[AccountDetails]:
        return self.accounts


@runtime_checkable
class AccountAdministration(Protocol):
    """What a helpdesk console asks of a directory, beside :class:`SelfService`'s
    ``unlock`` and ``reset_password`` (with ``must_change``), which it reuses.
    """

    def search_accounts(self, term: str, *, limit: int = 20, page: str | None = None) -> AccountPage:
        """Accounts whose login, name or email starts with ``term``, ``limit`` at a time.

        ``term`` is text, never filter syntax: ``*`` is a star. A blank term,
        or one holding a control character, finds nobody. ``page`` is a
        previous answer's ``next_page``. Memory stays bounded by ``limit``
        however many accounts match.
        """

    def account_details(self, account_id: str) -> AccountDetails | None:
        """One account in full, by its immutable id."""

    def disable_account(self, account: Account) -> None:
        """Turn the account off: no sign-in, no reset or unlock through SSPM, until enabled."""

    def enable_account(self, account: Account) -> Outcome:
        """Undo :meth:`disable_account`.

        ``OK``, or ``DISABLED`` when the account stays off for a reason this
        does not change (an end date set in the directory itself).
        """


@runtime_checkable
class Provisioning(Protocol):
    """Creating, changing, moving and deleting accounts, under one configured base only.

    Every account is written below ``provision_base_dn`` and every account
    touched must already be there: anything else is a ValueError, and
    nothing is written. With a provisioning account configured, these
    writes (and enabling and disabling) are made as that account.
    """

    def create_account(
        self, login: str, person: Person, password: str | None, *, location: Location = ()
    ) -> tuple[Outcome, Account | None]:
        """Create an account, either with a temporary ``password`` or awaiting set-up.

        With a ``password``: enabled, and that password must be changed at
        first use; a refusal of it by the directory's policy (``TOO_SHORT``,
        ``TOO_WEAK``...) is returned with ``None``, with nothing left behind.

        With ``None``: the account has no usable password and cannot sign in,
        by any means, until :meth:`activate_account` gives it the password its
        owner chose (OpenLDAP: no ``userPassword`` and ppolicy's permanent
        lock; Active Directory: no password and ``ACCOUNTDISABLE`` in
        ``userAccountControl``). Until then it reads as disabled, so no reset,
        unlock or recovery touches it.

        ``(OK, account)`` otherwise. Raises :class:`LoginTaken` and
        :class:`NoSuchLocation`. Its DN is made from escaped names, made
        unique by a number.
        """

    def activate_account(self, account: Account, password: str) -> Outcome:
        """Give an account created awaiting set-up its first password, chosen by its owner, and make it usable.

        This is how a new user's set-up link ends: the password is held to the
        directory's policy for users (a refusal, ``TOO_SHORT``, ``TOO_WEAK``,
        ``UNUSABLE_CHARACTERS``..., changes nothing, so the user can try
        another), it is not temporary (no change is asked at first sign-in),
        and the account is enabled, all written by the provisioning account.
        Activation is not a reset: an account that is not awaiting set-up
        (it has had a password since, or was never created without one) is
        ``DISABLED`` and nothing changes, so a stale link can neither replace a
        password nor enable an account an administrator turned off. Whether
        the person may still be set up at all (a record ended meanwhile) is
        the caller's to check: a disabled account awaiting set-up is not told
        apart from one merely awaiting set-up. Raises ValueError for an
        account outside the provisioning base.
        """

    def update_account(self, account: Account, person: Person) -> Account:
        """Replace the account's names, email, phones, title and department; its DN stays."""

    def move_account(self, account: Account, location: Location) -> Account:
        """Move the account to another place under the provisioning base; raises :class:`NoSuchLocation`."""

    def delete_account(self, account: Account) -> None:
        """Delete the account; nothing happens if it is already gone."""

    def locations(self) -> list[Location]:
        """Every place under the provisioning base an account can be created in or moved to."""


@runtime_checkable
class SyncReader(Protocol):
    """Reading every account, or what changed, for a copy kept elsewhere.

    Both read page by page on one connection of their own and hold one page
    in memory at a time, however big the directory.
    """

    def all_accounts(self, *, page_size: int = 500) -> Iterator[AccountDetails]:
        """Every account SSPM serves (what ``user_filter`` can find), in no set order."""

    def changes_since(self, checkpoint: str | None, *, page_size: int = 500) -> Changes:
        """Accounts changed after ``checkpoint`` (every account for ``None``).

        A checkpoint from another server, or one not understood, gives every
        account too: a full pass is never wrong, only slower.
        """


@runtime_checkable
class Directory(SelfService, AccountAdministration, Provisioning, SyncReader, Protocol):
    """Every role at once: what each connector is, and what the app is handed."""
