"""The contract every directory kind fulfils, in plain Python.

The application speaks only this vocabulary: it never sees an LDAP result
code, a control or an ldap3 object. Each connector module translates its
directory's answers into these outcomes at one edge, so adding Active
Directory later means adding a module, not touching the app.
"""

from __future__ import annotations

import enum
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
class Directory(Protocol):
    """Everything SSPM asks of a directory.

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
        is ``UNUSABLE_CHARACTERS``, never an error.
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
