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
the user's own policy (history, length). For :meth:`changes_since`, the
syncprov overlay on the database, which keeps its ``contextCSN``.

Disabling an account is ppolicy's administrative lock: ``pwdAccountLockedTime``
set to ``000001010000Z``, the value slapo-ppolicy(5) defines as "locked
until an administrator unlocks it". OpenLDAP has no other standard
disable, and this one needs no schema: every bind is refused (with
``accountLocked``, which this module tells apart from a lockout by that
value), and it is what :meth:`status` already reads as disabled, so unlock
and reset refuse it. Enabling removes exactly that value, so it never
clears a lockout, and a validity window (``pwdStartTime``/``pwdEndTime``,
an operator's) is left alone.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE
from ldap3.utils.conv import escape_filter_chars

from connectors import dn, ldapconn, ppolicy
from connectors.directory import (
    Account,
    AccountDetails,
    AccountStatus,
    DirectoryMisconfigured,
    DirectoryUnavailable,
    Location,
    LoginTaken,
    NoSuchLocation,
    Outcome,
    PasswordPolicy,
    Person,
    Verdict,
)
from connectors.ldapbase import (
    CONSTRAINT_VIOLATION,
    ENTRY_ALREADY_EXISTS,
    INVALID_CREDENTIALS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    SUCCESS,
    UNWILLING_TO_PERFORM,
    LdapDirectory,
    check_location,
    check_login,
    check_person,
    one_server,
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

_DETAIL_ATTRIBUTES = tuple(
    sorted({*_ACCOUNT_ATTRIBUTES, *_STATUS_ATTRIBUTES, "sn", "telephoneNumber", "title", "departmentNumber", "mobile"})
)
#: A change sequence number (CSN): time, count, server id, modification count.
_CSN = r"\d{14}(?:\.\d{6})?Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}"
_CHECKPOINT_PREFIX = "csn:"
#: csn:<the oldest contextCSN>[@<this host's time>] (checkpoints made before the time had none).
_CHECKPOINT = re.compile(rf"{_CHECKPOINT_PREFIX}({_CSN})(?:@(\d{{14}}Z))?")
#: GeneralizedTime, whole seconds, UTC.
_TIME = "%Y%m%d%H%M%SZ"
#: Taken off the start of the window of locks that ran out: re-reading a few more is harmless.
_WINDOW_SLACK = timedelta(minutes=1)

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


def _refusal(result: dict[str, object]) -> Outcome:
    """What a constraint violation on a new password says, from the ppolicy control."""
    response = ppolicy.from_result(result)
    if response and response.error in _CHANGE_REFUSALS:
        return _CHANGE_REFUSALS[response.error]
    return Outcome.TOO_WEAK


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

    _DETAIL_ATTRIBUTES = _DETAIL_ATTRIBUTES
    _DEPARTMENT = "departmentNumber"
    _SEARCHED_ATTRIBUTES = ("uid", "cn", "displayName", "givenName", "sn", "mail")

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
        query = self._id_filter(account_id)
        return None if query is None else self._search_one(self._settings.base_dn, query, SUBTREE)

    def _id_filter(self, account_id: str) -> str | None:
        try:
            return f"(entryUUID={uuid.UUID(account_id)})"
        except ValueError:
            return None

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

    @one_server
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

    @one_server
    def change_password(self, account: Account, old: str, new: str) -> Outcome:
        require_password(old)
        require_password(new)
        refused = self.refuse_new(new)
        if refused is not None:
            return refused
        # As the user, the change would clear pwdAccountLockedTime, the
        # permanent lock included: that would enable a disabled account. Read
        # now, not taken from ``account``, which a caller may have read before
        # an administrator disabled it (the contract tests exactly that).
        if self.status(account).disabled:
            return Outcome.DISABLED
        return self._modify_password_as(account, old, new)

    @one_server
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
            return _refusal(result)
        raise_for(result, "change the password")
        raise DirectoryUnavailable("unexpected answer to a password change")

    # -- account standing ----------------------------------------------------

    def status(self, account: Account) -> AccountStatus:
        with self._connections.service() as conn:
            conn.search(account.dn, "(objectClass=*)", BASE, attributes=_STATUS_ATTRIBUTES)
            raise_for(conn.result, "read the account's status")
            attributes = conn.response[0]["attributes"] if conn.response else {}
        return self._standing(attributes)

    def _standing(self, attributes: dict[str, object]) -> AccountStatus:
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
        failed_at = [failures] if isinstance(failures, str) else failures if isinstance(failures, list) else []
        return AccountStatus(
            locked=locked and not disabled,
            locked_since=locked_since if locked else None,
            failures=len(failures) if isinstance(failures, list) else 1,
            disabled=disabled,
            must_change=(_first(attributes, "pwdReset") or "").upper() == "TRUE",
            password_changed_at=changed,
            expires_at=expires,
            failure_times=tuple(sorted(parse_generalized_time(str(t)) for t in failed_at)),
        )

    @one_server
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

    # -- administration ------------------------------------------------------------

    def _details(self, entry: dict[str, Any]) -> AccountDetails:
        attributes = entry["attributes"]
        return self._details_from(
            self._account(entry["dn"], attributes), self._standing(attributes), attributes, _first
        )

    def disable_account(self, account: Account) -> None:
        with self._lifecycle.service() as conn:
            conn.modify(account.dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [PERMANENT_LOCK])]})
            raise_for(conn.result, "disable the account", self._lifecycle_who)

    @one_server
    def enable_account(self, account: Account) -> Outcome:
        with self._lifecycle.service() as conn:
            # Only the permanent lock: a lockout (a time) stays until it ends or is unlocked.
            conn.modify(account.dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [PERMANENT_LOCK])]})
            if conn.result["result"] != NO_SUCH_ATTRIBUTE:  # no such value: it was not disabled so
                raise_for(conn.result, "enable the account", self._lifecycle_who)
        return Outcome.DISABLED if self.status(account).disabled else Outcome.OK

    # -- sync ------------------------------------------------------------------------

    def _sync_position(self, checkpoint: str | None) -> tuple[str, str | None]:
        """What changed after ``checkpoint``: a later entryCSN, or a lockout that time alone ended.

        ppolicy ends a lockout when pwdLockoutDuration has passed without
        writing to the entry (pwdAccountLockedTime stays; no entryCSN
        moves), and the copy would call the account locked until the next
        full sync. So the checkpoint carries this host's time too (the one
        :meth:`_standing` judges a lock by; slapd has no clock to read), and
        the accounts whose lock ran out between it and now come as well.
        """
        with self._connections.service() as conn:
            conn.search("", "(objectClass=*)", BASE, attributes=["namingContexts"])
            raise_for(conn.result, "read the root DSE")
            contexts = conn.response[0]["attributes"].get("namingContexts", []) if conn.response else []
            suffixes = [c for c in contexts if dn.within(self._settings.base_dn, c)]
            if not suffixes:
                raise DirectoryMisconfigured(f"no naming context of the directory holds {self._settings.base_dn!r}")
            suffix = max(suffixes, key=lambda c: len(dn.rdns(c)))
            conn.search(suffix, "(objectClass=*)", BASE, attributes=["contextCSN"])
            raise_for(conn.result, "read the database's contextCSN")
            csns = conn.response[0]["attributes"].get("contextCSN", []) if conn.response else []
        if not csns:
            raise DirectoryMisconfigured(
                f"{suffix} has no contextCSN: reading changes needs the syncprov overlay on its database"
            )
        clock = datetime.now(UTC)
        # With several servers writing, one CSN each: changes after the oldest are all new.
        now = f"{_CHECKPOINT_PREFIX}{min(str(csn) for csn in csns)}@{clock:{_TIME}}"
        known = _CHECKPOINT.fullmatch(checkpoint or "")
        if known is None:
            return now, None
        since, then = known.group(1), known.group(2)
        changed = f"(&(entryCSN>={since})(!(entryCSN={since})))"
        lasts = self.policy().lockout_minutes
        if then is None or not lasts:  # a checkpoint from before it held the time; no lockout, or until unlocked
            return now, changed
        duration = timedelta(minutes=lasts)
        start = parse_generalized_time(then) - duration - _WINDOW_SLACK
        ran_out = f"(&(pwdAccountLockedTime>={start:{_TIME}})(pwdAccountLockedTime<={clock - duration:{_TIME}}))"
        return now, f"(|{changed}{ran_out})"

    # -- provisioning ----------------------------------------------------------------

    def _rdn(self, login: str) -> str:
        return f"uid={dn.escape_value(login)}"

    @one_server
    def create_account(
        self, login: str, person: Person, password: str | None, *, location: Location = ()
    ) -> tuple[Outcome, Account | None]:
        check_login(login)
        check_person(person)
        check_location(location)
        if password is not None:
            require_password(password)
            refused = self.refuse_new(password)
            if refused is not None:
                return refused, None
        parent = self._location_dn(location)
        self._check_free([login, *([person.email] if person.email else [])])
        self._check_location(parent)
        entry_dn = f"{self._rdn(login)},{parent}"
        attributes: dict[str, object] = {
            "objectClass": ["inetOrgPerson"],
            "uid": login,
            **_person_attributes(person, creating=True),
            **self._organization_written(person),
        }
        if password is None:
            # Awaiting set-up: no userPassword (no simple bind can succeed) and
            # the permanent lock from the first instant, so every bind is
            # refused and status() says disabled: no reset or unlock touches it.
            attributes["pwdAccountLockedTime"] = PERMANENT_LOCK
        with self._lifecycle.service() as conn:
            conn.add(entry_dn, attributes=attributes)
            code = conn.result["result"]
            if code == ENTRY_ALREADY_EXISTS:
                raise LoginTaken(f"{login!r} already has an entry in {parent}")
            if code == NO_SUCH_OBJECT:
                raise NoSuchLocation(f"{parent} does not exist")
            raise_for(conn.result, "create the account", self._lifecycle_who)
            result = conn.result
            if password is not None:
                # No password in the add: slapd would store it as sent, in clear.
                # Password Modify has the server hash it; as a non-administrator
                # (write, not manage) the provisioning account is held to the policy.
                conn.extend.standard.modify_password(
                    user=entry_dn, new_password=self._wire(password), controls=[ppolicy.REQUEST]
                )
                result = conn.result
                if result["result"] == SUCCESS:
                    # pwdMustChange acts on a modify, never on an add: said here.
                    conn.modify(entry_dn, {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]})
                    result = conn.result
                if result["result"] != SUCCESS:
                    conn.delete(entry_dn)  # nothing left behind
        if result["result"] == CONSTRAINT_VIOLATION:
            return _refusal(result), None
        raise_for(result, "set the new account's password", self._lifecycle_who)
        created = self._search_one(entry_dn, "(objectClass=*)", BASE)
        if created is None:
            raise DirectoryUnavailable("the new account cannot be read back")
        return Outcome.OK, created

    def activate_account(self, account: Account, password: str) -> Outcome:
        require_password(password)
        refused = self.refuse_new(password)
        if refused is not None:
            return refused
        found = self._provisioned(account)
        with self._lifecycle.service() as conn:
            # Awaiting set-up is having no password at all: read by the
            # provisioning account, which may search userPassword but not read it.
            conn.search(found.dn, "(!(userPassword=*))", BASE, attributes=["1.1"])
            raise_for(conn.result, "read whether the account awaits set-up", self._lifecycle_who)
            if not [e for e in conn.response or [] if e.get("type") == "searchResEntry"]:
                return Outcome.DISABLED
            # As a non-administrator, held to the users' policy; a refusal writes nothing.
            conn.extend.standard.modify_password(
                user=found.dn, new_password=self._wire(password), controls=[ppolicy.REQUEST]
            )
            result = conn.result
            if result["result"] == CONSTRAINT_VIOLATION:
                return _refusal(result)
            raise_for(result, "set the first password", self._lifecycle_who)
            # The owner chose it: not temporary (pwdMustChange marks a password
            # someone else set), and the set-up lock goes, if the change left it.
            for name, values in (("pwdReset", []), ("pwdAccountLockedTime", [PERMANENT_LOCK])):
                conn.modify(found.dn, {name: [(MODIFY_DELETE, values)]})
                if conn.result["result"] != NO_SUCH_ATTRIBUTE:
                    raise_for(conn.result, "make the account usable", self._lifecycle_who)
        return Outcome.OK

    def _person_written(self, person: Person) -> dict[str, list[str]]:
        return _person_attributes(person)

    def move_account(self, account: Account, location: Location) -> Account:
        found = self._provisioned(account)
        return self._move(found, self._location_dn(location), iter([self._rdn(found.login)]))


def _person_attributes(person: Person, *, creating: bool = False) -> dict[str, list[str]]:
    """inetOrgPerson's attributes for ``person``: an empty list clears one (never on an add)."""
    shown = person.shown_as
    values = {
        "cn": [shown],
        "sn": [person.surname],
        "givenName": [person.given_name] if person.given_name else [],
        "displayName": [shown],
        "mail": [person.email] if person.email else [],
        "telephoneNumber": [person.phone] if person.phone else [],
        "title": [person.title] if person.title else [],
        "departmentNumber": [person.department] if person.department else [],
        "mobile": [person.mobile] if person.mobile else [],
    }
    return {name: value for name, value in values.items() if value or not creating}
