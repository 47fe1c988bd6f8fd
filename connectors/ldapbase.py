"""What every LDAP-speaking directory shares, whatever its kind.

The connection handling, the start-up check, the cached policy, the decoy
DN for unknown users and the translation of a refused service operation
into an error are the same for OpenLDAP and Active Directory; each kind's
module says only what differs.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from abc import ABC, abstractmethod

from ldap3 import BASE

from connectors import ldapconn
from connectors.directory import DirectoryMisconfigured, DirectoryUnavailable, Outcome, PasswordPolicy
from connectors.guard import Guard
from connectors.settings import DirectorySettings

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


def raise_for(result: dict[str, object], doing: str) -> None:
    """Nothing on success; otherwise the error an operator (or a retry) can act on."""
    code = result.get("result")
    if code == SUCCESS:
        return
    description = result.get("description")
    if code in (INSUFFICIENT_ACCESS, AUTHORIZATION_DENIED, NO_SUCH_OBJECT):
        raise DirectoryMisconfigured(f"the service account may not {doing} ({description})")
    raise DirectoryUnavailable(f"the directory could not {doing} ({description})")


class LdapDirectory(ABC):
    """The shared half of an LDAP directory connector."""

    def __init__(self, settings: DirectorySettings) -> None:
        self._settings = settings
        self._connections = ldapconn.Connections(settings, self._wire)
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
