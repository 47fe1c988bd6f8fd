"""OpenLDAP with the ppolicy overlay, behind the Directory contract.

What slapd decides is only visible through result codes and the password
policy response control; this module is the one place that reads them and
turns them into :class:`~connectors.directory.Outcome` values.

Requirements on the server side (see docs/architecture.md): the ppolicy
overlay with ``ppolicy_use_lockout`` (so a locked account is told apart
from a wrong password), a service account with ``manage`` on userPassword
and the pwd* attributes, and ``authzTo`` on the service account so it can
change a password *as the user* (proxied authorization). That last one is
how an expired password, which can no longer bind, is still changed under
the user's own policy (history, length).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE
from ldap3.utils.conv import escape_filter_chars

from connectors import ldapconn, ppolicy
from connectors.directory import (
    Account,
    AccountStatus,
    DirectoryMisconfigured,
    DirectoryUnavailable,
    Outcome,
    PasswordPolicy,
    Verdict,
)
from connectors.ldapbase import (
    CONSTRAINT_VIOLATION,
    INVALID_CREDENTIALS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    SUCCESS,
    UNWILLING_TO_PERFORM,
    LdapDirectory,
    raise_for,
)
from connectors.ldapconn import require_password
from connectors.settings import DirectorySettings

log = logging.getLogger(__name__)

PROXY_AUTHZ_OID = "2.16.840.1.113730.3.4.18"
#: slapd's value for a lock that never expires: an administrator's "disable".
PERMANENT_LOCK = "000001010000Z"

_ACCOUNT_ATTRIBUTES = [
    "entryUUID",
    "uid",
    "cn",
    "displayName",
    "givenName",
    "mail",
    "pwdAccountLockedTime",
    "pwdStartTime",
    "pwdEndTime",
]
_STATUS_ATTRIBUTES = [
    "pwdAccountLockedTime",
    "pwdFailureTime",
    "pwdReset",
    "pwdChangedTime",
    "pwdStartTime",
    "pwdEndTime",
]

_CHANGE_REFUSALS = {
    ppolicy.PolicyError.PASSWORD_TOO_SHORT: Outcome.TOO_SHORT,
    ppolicy.PolicyError.INSUFFICIENT_PASSWORD_QUALITY: Outcome.TOO_WEAK,
    ppolicy.PolicyError.PASSWORD_IN_HISTORY: Outcome.IN_HISTORY,
    ppolicy.PolicyError.PASSWORD_TOO_YOUNG: Outcome.TOO_YOUNG,
}


def parse_generalized_time(value: str) -> datetime:
    """Read an LDAP GeneralizedTime such as ``20261127120000.123456Z``."""
    text = value.rstrip("Z")
    whole, _, fraction = text.partition(".")
    parsed = datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    if fraction:
        parsed += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return parsed


def _disabled(attributes: dict[str, object], now: datetime) -> bool:
    """An administrator's lock: the permanent lock value, or outside pwdStartTime..pwdEndTime."""
    if _first(attributes, "pwdAccountLockedTime") == PERMANENT_LOCK:
        return True
    start, end = _first(attributes, "pwdStartTime"), _first(attributes, "pwdEndTime")
    return bool((end and parse_generalized_time(end) <= now) or (start and parse_generalized_time(start) > now))


def _first(attributes: dict[str, object], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else None
    if value is None or value == "":
        return None
    return str(value)


def _proxy_control(dn: str) -> tuple[str, bool, bytes]:
    # slapd wants the raw authzId, not a BER-wrapped one.
    return (PROXY_AUTHZ_OID, True, b"dn:" + dn.encode("utf-8"))


class OpenLdapDirectory(LdapDirectory):
    """The Directory contract for OpenLDAP + ppolicy."""

    def __init__(self, settings: DirectorySettings) -> None:
        super().__init__(settings)

    @staticmethod
    def _wire(password: str) -> bytes:
        return ldapconn.prepared(password)

    # -- looking accounts up -------------------------------------------------

    def find_account(self, login: str) -> Account | None:
        login = login.strip()
        if not login:
            return None
        query = self._settings.user_filter.format(login=escape_filter_chars(login))
        return self._search_one(self._settings.base_dn, query, SUBTREE)

    def get_account(self, account_id: str) -> Account | None:
        try:
            canonical = str(uuid.UUID(account_id))
        except ValueError:
            return None
        return self._search_one(self._settings.base_dn, f"(entryUUID={canonical})", SUBTREE)

    def _search_one(self, base: str, query: str, scope: str) -> Account | None:
        with self._connections.service() as conn:
            conn.search(base, query, scope, attributes=_ACCOUNT_ATTRIBUTES, size_limit=2)
            code = conn.result["result"]
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if code == 4 or len(entries) > 1:  # sizeLimitExceeded: ambiguous, so nobody
            log.warning("directory lookup matched more than one account; treating it as none")
            return None
        if code not in (SUCCESS, NO_SUCH_OBJECT):
            raise DirectoryUnavailable(f"directory search failed ({conn.result['description']})")
        if not entries:
            return None
        return self._account(entries[0]["dn"], entries[0]["attributes"])

    @staticmethod
    def _account(dn: str, attributes: dict[str, object]) -> Account:
        uid = _first(attributes, "uid") or ""
        display = _first(attributes, "displayName") or _first(attributes, "cn") or uid
        return Account(
            id=_first(attributes, "entryUUID") or "",
            dn=dn,
            username=uid,
            display_name=display,
            given_name=_first(attributes, "givenName") or "",
            email=_first(attributes, "mail"),
            disabled=_disabled(attributes, datetime.now(UTC)),
        )

    # -- passwords -----------------------------------------------------------

    def verify_password(self, login: str, password: str) -> tuple[Account | None, Verdict]:
        require_password(password)
        account = self.find_account(login)
        dn = account.dn if account else self.decoy_dn(login, "uid")
        with self._connections.user(dn, password) as conn:
            conn.bind(controls=[ppolicy.REQUEST])
            result = conn.result
        code = result["result"]
        response = ppolicy.from_result(result)
        error = response.error if response else None
        if code == SUCCESS:
            if account is None:  # cannot happen with a decoy DN; refuse rather than trust it
                return None, Verdict(Outcome.BAD_CREDENTIALS)
            if error is ppolicy.PolicyError.CHANGE_AFTER_RESET:
                return account, Verdict(Outcome.MUST_CHANGE)
            return account, Verdict(Outcome.OK, response.time_before_expiration if response else None)
        if code == INVALID_CREDENTIALS:
            if account is not None and error is ppolicy.PolicyError.PASSWORD_EXPIRED:
                return account, Verdict(Outcome.EXPIRED)
            if account is not None and error is ppolicy.PolicyError.ACCOUNT_LOCKED:
                # ppolicy_use_lockout says "locked" for disabled accounts too.
                disabled = self.status(account).disabled
                return account, Verdict(Outcome.DISABLED if disabled else Outcome.LOCKED)
            return account, Verdict(Outcome.BAD_CREDENTIALS)
        raise DirectoryUnavailable(f"directory refused the bind ({result['description']})")

    def change_password(self, account: Account, old: str, new: str) -> Outcome:
        require_password(old)
        require_password(new)
        refused = self.refuse_new(new)
        if refused is not None:
            return refused
        return self._modify_password_as(account, old, new)

    def reset_password(self, account: Account, new: str, *, must_change: bool) -> Outcome:
        require_password(new)
        refused = self.refuse_new(new)
        if refused is not None:
            return refused
        # Any successful change clears pwdAccountLockedTime, the permanent
        # lock included: that would enable a disabled account.
        if self.status(account).disabled:
            return Outcome.DISABLED
        if not must_change:
            # As the user, without the old password: the user's policy
            # (length, history) applies, and the lock and must-change go.
            return self._modify_password_as(account, None, new)
        with self._connections.service() as conn:
            conn.extend.standard.modify_password(
                user=account.dn, new_password=self._wire(new), controls=[ppolicy.REQUEST]
            )
            raise_for(conn.result, "reset the password")
            # pwdMustChange sets it too, but only if the policy says so.
            conn.modify(account.dn, {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]})
            raise_for(conn.result, "mark the password as temporary")
        return Outcome.OK

    def _modify_password_as(self, account: Account, old: str | None, new: str) -> Outcome:
        require_password(new)
        with self._connections.service() as conn:
            conn.extend.standard.modify_password(
                old_password=None if old is None else self._wire(old),
                new_password=self._wire(new),
                controls=[ppolicy.REQUEST, _proxy_control(account.dn)],
            )
            result = conn.result
        code = result["result"]
        if code == SUCCESS:
            return Outcome.OK
        if code == UNWILLING_TO_PERFORM and old is not None:
            return Outcome.BAD_CREDENTIALS
        if code == CONSTRAINT_VIOLATION:
            response = ppolicy.from_result(result)
            if response and response.error in _CHANGE_REFUSALS:
                return _CHANGE_REFUSALS[response.error]
            return Outcome.TOO_WEAK
        raise_for(result, "change the password")
        raise DirectoryUnavailable("unexpected answer to a password change")

    # -- account standing ----------------------------------------------------

    def status(self, account: Account) -> AccountStatus:
        with self._connections.service() as conn:
            conn.search(account.dn, "(objectClass=*)", BASE, attributes=_STATUS_ATTRIBUTES)
            raise_for(conn.result, "read the account's status")
            attributes = conn.response[0]["attributes"] if conn.response else {}
        policy = self.policy()
        now = datetime.now(UTC)

        def when(name: str) -> datetime | None:
            raw = _first(attributes, name)
            return parse_generalized_time(raw) if raw and raw != PERMANENT_LOCK else None

        locked_since = when("pwdAccountLockedTime")
        disabled = _disabled(attributes, now)
        locked = locked_since is not None and (
            not policy.lockout_minutes or now < locked_since + timedelta(minutes=policy.lockout_minutes)
        )
        changed = when("pwdChangedTime")
        expires = changed + timedelta(days=policy.max_age_days) if changed and policy.max_age_days else None
        failures = attributes.get("pwdFailureTime") or []
        return AccountStatus(
            locked=locked and not disabled,
            locked_since=locked_since if locked else None,
            failures=len(failures) if isinstance(failures, list) else 1,
            disabled=disabled,
            must_change=(_first(attributes, "pwdReset") or "").upper() == "TRUE",
            password_changed_at=changed,
            expires_at=expires,
        )

    def unlock(self, account: Account) -> Outcome:
        if self.status(account).disabled:
            return Outcome.DISABLED  # the permanent lock is the disable: keep it
        with self._connections.service() as conn:
            # slapd drops pwdFailureTime along with the lock.
            conn.modify(account.dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]})
            if conn.result["result"] != NO_SUCH_ATTRIBUTE:  # absent: not locked, nothing to do
                raise_for(conn.result, "unlock the account")
        return Outcome.OK

    def _read_policy(self) -> PasswordPolicy:
        names = ["pwdMinLength", "pwdInHistory", "pwdMaxAge", "pwdMinAge", "pwdMaxFailure", "pwdLockout"]
        names.append("pwdLockoutDuration")
        with self._connections.service() as conn:
            conn.search(self._settings.policy_dn, "(objectClass=pwdPolicy)", BASE, attributes=names)
            if conn.result["result"] != SUCCESS or not conn.response:
                raise DirectoryMisconfigured(
                    f"cannot read the password policy LDAP_POLICY_DN {self._settings.policy_dn!r}: "
                    f"{conn.result['description']}"
                )
            attributes = conn.response[0]["attributes"]

        def number(name: str, default: int = 0) -> int:
            raw = _first(attributes, name)
            return int(raw) if raw is not None else default

        lockout = (_first(attributes, "pwdLockout") or "").upper() == "TRUE"
        max_age = number("pwdMaxAge")
        duration = number("pwdLockoutDuration")
        return PasswordPolicy(
            min_length=number("pwdMinLength"),
            history=number("pwdInHistory"),
            max_age_days=max_age // 86400 if max_age else None,
            min_age_hours=number("pwdMinAge") // 3600,
            lockout_threshold=number("pwdMaxFailure") if lockout else None,
            lockout_minutes=duration // 60 if lockout and duration else None,
        )
