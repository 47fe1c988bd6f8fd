"""Active Directory (Windows or Samba AD DC), behind the Directory contract.

AD answers in its own words: a refused bind carries a Windows error code in
its message, a refused password change another, and an account's standing
is spread over userAccountControl, lockoutTime, badPwdCount, pwdLastSet and
constructed attributes. :mod:`connectors.ad_codes` holds what each code
means; this module reads the attributes and applies that table.

Requirements on the server side: LDAPS (or
StartTLS) with a certificate SSPM can verify, and a service account that is
*not* a domain administrator, delegated on the users' OU (inherited by user
objects) the Reset Password right and write access to pwdLastSet and
lockoutTime. Nothing else: in particular not userAccountControl, so the
account every page uses can never enable an account an administrator
disabled. Enabling, disabling and provisioning are the provisioning
account's (``provisioning_bind_dn``), delegated on the provisioning base:
create and delete user objects, and on them Reset Password and write
access to userAccountControl, pwdLastSet, the names, mail and phone.

A user's own change is the LDAP "change" operation (delete the old
``unicodePwd``, add the new) sent by the service account: AD checks the old
password and applies the user's policy (history, length, complexity, minimum
age) exactly as for a change at a Windows prompt, and it works for expired
and temporary passwords, which can no longer bind.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ldap3 import BASE, MODIFY_REPLACE, SUBTREE
from ldap3.utils.conv import escape_filter_chars

from connectors import ad_codes, dn, ldapconn
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
    MAX_NAME,
    MAX_SUFFIX,
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

#: How long the domain's policy is trusted before it is read again.
POLICY_TTL_SECONDS = 300.0
#: AD never warns at bind time (Windows prompts from a client-side setting),
#: so SSPM says how long is left once a password is within this of expiring.
EXPIRY_WARNING = timedelta(days=14)

_ACCOUNT_ATTRIBUTES = [
    "objectGUID",
    "sAMAccountName",
    "cn",
    "displayName",
    "givenName",
    "mail",
    "userAccountControl",
    "accountExpires",
    "msDS-UserPasswordExpiryTimeComputed",
]
_STATUS_ATTRIBUTES = [
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "accountExpires",
    "lockoutTime",
    "badPwdCount",
    "badPasswordTime",
    "pwdLastSet",
    "msDS-UserPasswordExpiryTimeComputed",
]
_POLICY_ATTRIBUTES = [
    "minPwdLength",
    "pwdHistoryLength",
    "maxPwdAge",
    "minPwdAge",
    "lockoutThreshold",
    "lockoutDuration",
]

_DETAIL_ATTRIBUTES = tuple(
    sorted({*_ACCOUNT_ATTRIBUTES, *_STATUS_ATTRIBUTES, "sn", "telephoneNumber", "title", "department", "mobile"})
)
#: sAMAccountName's bound (the pre-Windows 2000 name).
_MAX_LOGIN = 20
#: usn:<invocationId>:<highestCommittedUSN>[:<the DC's time, FILETIME>] (checkpoints made before the time had none).
_CHECKPOINT = re.compile(r"usn:([0-9a-f-]{36}):([0-9]{1,20})(?::([0-9]{1,20}))?")
#: Taken off the start of each time window: a DC's currentTime is whole seconds; re-reading a few more is harmless.
_WINDOW_SLACK = 60 * 10_000_000

# An LDAP result code only this module reacts to.
_SIZE_LIMIT_EXCEEDED = 4

_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_INTERVALS_PER_MINUTE = 600_000_000  # of 100 ns


def from_filetime(value: int) -> datetime:
    """A Windows FILETIME (100 ns since 1601) as an aware datetime."""
    return _EPOCH + timedelta(microseconds=value // 10)


def _filetime_of(generalized: str | None) -> int:
    """A root DSE's currentTime (GeneralizedTime, UTC) as a FILETIME; this host's clock if the DC gives none."""
    moment = datetime.now(UTC)
    if generalized:
        try:
            moment = datetime.strptime(generalized[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            log.warning("the domain controller's currentTime %r is not a time; using this host's clock", generalized)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 10


def _first(attributes: dict[str, object], name: str) -> object | None:
    value = attributes.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return None if value in (None, "", b"") else value


def _text(attributes: dict[str, object], name: str) -> str | None:
    value = _first(attributes, name)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def _number(attributes: dict[str, object], name: str, default: int = 0) -> int:
    raw = _text(attributes, name)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _moment(attributes: dict[str, object], name: str) -> datetime | None:
    """A FILETIME attribute; None for 0 (not set) and for "never"."""
    value = _number(attributes, name)
    return from_filetime(value) if 0 < value < ad_codes.NEVER else None


def _disabled(attributes: dict[str, object], now: datetime) -> bool:
    """Turned off by an administrator: ACCOUNTDISABLE, or accountExpires passed."""
    if _number(attributes, "userAccountControl") & ad_codes.UF_ACCOUNTDISABLE:
        return True
    ends = _moment(attributes, "accountExpires")
    return ends is not None and ends <= now


def _standing(attributes: dict[str, object]) -> AccountStatus:
    now = datetime.now(UTC)
    disabled = _disabled(attributes, now)
    # The computed attribute knows whether the lock still lasts (lockoutDuration).
    locked = bool(_number(attributes, "msDS-User-Account-Control-Computed") & ad_codes.UF_LOCKOUT)
    last_set = _number(attributes, "pwdLastSet")
    failures = _number(attributes, "badPwdCount")
    # badPasswordTime outlives the count (a good sign-in zeroes badPwdCount only): said while it counts.
    last_failure = _moment(attributes, "badPasswordTime") if failures else None
    return AccountStatus(
        locked=locked and not disabled,
        locked_since=_moment(attributes, "lockoutTime") if locked and not disabled else None,
        failures=failures,
        disabled=disabled,
        must_change=last_set == 0,
        password_changed_at=_moment(attributes, "pwdLastSet"),
        # 0 when must_change (no expiry of its own), "never" for DONT_EXPIRE_PASSWD.
        expires_at=_moment(attributes, "msDS-UserPasswordExpiryTimeComputed"),
        failure_times=(last_failure,) if last_failure else (),
    )


def _unicode_pwd(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


def _guid_filter(account_id: str) -> str | None:
    try:
        guid = uuid.UUID(account_id)
    except ValueError:
        return None
    # objectGUID is stored little-endian in its first three fields; every
    # byte is escaped, so nothing typed can reach the filter as syntax.
    escaped = "".join(f"\\{byte:02x}" for byte in guid.bytes_le)
    return f"(&(objectClass=user)(objectGUID={escaped}))"


@dataclass(frozen=True)
class _Found:
    account: Account
    attributes: dict[str, object]


class ActiveDirectory(LdapDirectory):
    """The Directory contract for Active Directory."""

    _DETAIL_ATTRIBUTES = _DETAIL_ATTRIBUTES
    _DEPARTMENT = "department"
    _SEARCHED_ATTRIBUTES = ("sAMAccountName", "userPrincipalName", "cn", "displayName", "givenName", "sn", "mail")
    _OU = "OU"

    def __init__(self, settings: DirectorySettings) -> None:
        super().__init__(settings)
        # The domain object holds the policy; by default, the DC= part of the base.
        self._domain_dn = settings.policy_dn or ",".join(
            part for part in settings.base_dn.split(",") if part.strip().upper().startswith("DC=")
        )
        # Binds for unknown users go to a DN that cannot exist, so they cost
        # the directory a bind round trip like a real wrong password (Samba
        # answers it ~10 ms sooner, as it records no failure: the app's
        # refusal floor, sspm/timing.py, covers that).
        self._decoy_parent = f"CN=sspm-no-such-account,{settings.base_dn}"

    @staticmethod
    def _wire(password: str) -> bytes:
        # unicodePwd is written as typed (UTF-16), and Windows compares it so.
        return ldapconn.as_typed(password)

    # -- looking accounts up -------------------------------------------------

    def find_account(self, login: str) -> Account | None:
        found = self._find(login)
        return found.account if found else None

    def _id_filter(self, account_id: str) -> str | None:
        return _guid_filter(account_id)

    def get_account(self, account_id: str) -> Account | None:
        query = _guid_filter(account_id)
        if query is None:
            return None
        found = self._search_one(query)
        return found.account if found else None

    def _find(self, login: str) -> _Found | None:
        login = login.strip()
        # No name, UPN or address holds a control character, and Samba ends a
        # filter value at an (escaped) NUL: "jsmith" + NUL would match jsmith.
        if not login or any(ord(char) < 0x20 or ord(char) == 0x7F for char in login):
            return None
        return self._search_one(self._settings.user_filter.format(login=escape_filter_chars(login)))

    def _search_one(self, query: str) -> _Found | None:
        with self._connections.service() as conn:
            conn.search(self._settings.base_dn, query, SUBTREE, attributes=_ACCOUNT_ATTRIBUTES, size_limit=2)
            code = conn.result["result"]
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if code == _SIZE_LIMIT_EXCEEDED or len(entries) > 1:
            log.warning("directory lookup matched more than one account; treating it as none")
            return None
        if code not in (SUCCESS, NO_SUCH_OBJECT):
            raise DirectoryUnavailable(f"directory search failed ({conn.result['description']})")
        if not entries:
            return None
        entry = entries[0]
        return _Found(self._account(entry["dn"], entry["attributes"], entry["raw_attributes"]), entry["attributes"])

    @staticmethod
    def _account(dn: str, attributes: dict[str, object], raw: dict[str, list[bytes]]) -> Account:
        guid = raw.get("objectGUID") or []
        username = _text(attributes, "sAMAccountName") or ""
        return Account(
            id=str(uuid.UUID(bytes_le=bytes(guid[0]))) if guid else "",
            dn=dn,
            username=username,
            display_name=_text(attributes, "displayName") or _text(attributes, "cn") or username,
            given_name=_text(attributes, "givenName") or "",
            email=_text(attributes, "mail"),
            disabled=_disabled(attributes, datetime.now(UTC)),
        )

    # -- passwords -----------------------------------------------------------

    def verify_password(self, login: str, password: str) -> tuple[Account | None, Verdict]:
        require_password(password)
        found = self._find(login)
        dn = found.account.dn if found else self.decoy_dn(login, "CN")
        with self._connections.user(dn, password) as conn:
            conn.bind()
            result = conn.result
        code = result["result"]
        if found is None:  # whatever the decoy's bind said
            if code not in (SUCCESS, INVALID_CREDENTIALS):
                raise DirectoryUnavailable(f"directory refused the bind ({result['description']})")
            return None, Verdict(Outcome.BAD_CREDENTIALS)
        if code == SUCCESS:
            return found.account, Verdict(Outcome.OK, self._expires_in(found.attributes))
        if code == INVALID_CREDENTIALS:
            return found.account, Verdict(ad_codes.bind_outcome(str(result.get("message") or "")))
        raise DirectoryUnavailable(f"directory refused the bind ({result['description']})")

    @staticmethod
    def _expires_in(attributes: dict[str, object]) -> int | None:
        expires = _moment(attributes, "msDS-UserPasswordExpiryTimeComputed")
        if expires is None:
            return None
        left = expires - datetime.now(UTC)
        return int(left.total_seconds()) if timedelta(0) < left <= EXPIRY_WARNING else None

    @one_server
    def change_password(self, account: Account, old: str, new: str) -> Outcome:
        require_password(old)
        require_password(new)
        refused = self.refuse_new(new)
        if refused is not None:
            return refused
        # AD would take it and leave the account off; refused, as on every kind.
        if _disabled(self._read(account), datetime.now(UTC)):
            return Outcome.DISABLED
        with self._connections.service() as conn:
            # Delete the old value, add the new: a change, checked against the
            # old password and the user's policy, not an administrator's reset.
            conn.extend.microsoft.modify_password(account.dn, new, old)
            result = conn.result
        if result["result"] == SUCCESS:
            return Outcome.OK
        return self._refusal(result, new, "change the password")

    @one_server
    def reset_password(self, account: Account, new: str, *, must_change: bool) -> Outcome:
        require_password(new)
        refused = self.refuse_new(new)
        if refused is not None:
            return refused
        if self.status(account).disabled:
            return Outcome.DISABLED  # and nothing written
        changes = {
            "unicodePwd": [(MODIFY_REPLACE, [_unicode_pwd(new)])],
            # A reset ends a lockout (and AD's own would not); 0 also clears badPwdCount.
            "lockoutTime": [(MODIFY_REPLACE, ["0"])],
        }
        if must_change:
            changes["pwdLastSet"] = [(MODIFY_REPLACE, ["0"])]
        with self._connections.service() as conn:
            conn.modify(account.dn, changes)
            result = conn.result
        if result["result"] == SUCCESS:
            return Outcome.OK
        return self._refusal(result, new, "reset the password")

    def _refusal(self, result: dict[str, object], new: str, doing: str, who: str = "the service account") -> Outcome:
        """The outcome of a refused change or reset, or the error it is."""
        if result.get("result") in (CONSTRAINT_VIOLATION, UNWILLING_TO_PERFORM):
            message = str(result.get("message") or "")
            outcome = ad_codes.change_refusal(message)
            if outcome is Outcome.TOO_WEAK and ad_codes.restriction_reason(message) is None:
                # Windows gives no reason: length at least can be told apart.
                return Outcome.TOO_SHORT if len(new) < self.policy().min_length else outcome
            if outcome is not None:
                return outcome
        raise_for(result, doing, who)
        raise DirectoryUnavailable(f"unexpected answer when trying to {doing}")

    # -- account standing ----------------------------------------------------

    def _read(self, account: Account) -> dict[str, object]:
        with self._connections.service() as conn:
            conn.search(account.dn, "(objectClass=*)", BASE, attributes=_STATUS_ATTRIBUTES)
            raise_for(conn.result, "read the account's status")
            return dict(conn.response[0]["attributes"]) if conn.response else {}

    def status(self, account: Account) -> AccountStatus:
        return _standing(self._read(account))

    @one_server
    def unlock(self, account: Account) -> Outcome:
        attributes = self._read(account)
        if _disabled(attributes, datetime.now(UTC)):
            return Outcome.DISABLED
        if _number(attributes, "lockoutTime") == 0:
            return Outcome.OK  # never locked, or already unlocked: nothing to write
        with self._connections.service() as conn:
            # 0 lifts the lock and clears badPwdCount.
            conn.modify(account.dn, {"lockoutTime": [(MODIFY_REPLACE, ["0"])]})
            raise_for(conn.result, "unlock the account")
        return Outcome.OK

    def _read_policy(self) -> PasswordPolicy:
        with self._connections.service() as conn:
            conn.search(self._domain_dn, "(objectClass=domain)", BASE, attributes=_POLICY_ATTRIBUTES)
            if conn.result["result"] != SUCCESS or not conn.response:
                raise DirectoryMisconfigured(
                    f"cannot read the domain's password policy from {self._domain_dn!r} (LDAP_POLICY_DN): "
                    f"{conn.result['description']}"
                )
            attributes = conn.response[0]["attributes"]

        def span(name: str) -> int | None:
            """A duration stored as negative 100 ns intervals; None for 0 and "never"."""
            value = -_number(attributes, name)
            return value if 0 < value < ad_codes.NEVER else None

        max_age, min_age, duration = span("maxPwdAge"), span("minPwdAge"), span("lockoutDuration")
        threshold = _number(attributes, "lockoutThreshold")
        return PasswordPolicy(
            min_length=_number(attributes, "minPwdLength"),
            history=_number(attributes, "pwdHistoryLength"),
            max_age_days=max_age // (_INTERVALS_PER_MINUTE * 60 * 24) if max_age else None,
            min_age_hours=min_age // (_INTERVALS_PER_MINUTE * 60) if min_age else 0,
            lockout_threshold=threshold or None,
            lockout_minutes=duration // _INTERVALS_PER_MINUTE if threshold and duration else None,
        )

    # -- administration ------------------------------------------------------------

    def _details(self, entry: dict[str, Any]) -> AccountDetails:
        attributes = entry["attributes"]
        return self._details_from(
            self._account(entry["dn"], attributes, entry["raw_attributes"]), _standing(attributes), attributes, _text
        )

    def _set_disabled(self, account: Account, disabled: bool) -> None:
        control = _number(self._read(account), "userAccountControl")
        wanted = control | ad_codes.UF_ACCOUNTDISABLE if disabled else control & ~ad_codes.UF_ACCOUNTDISABLE
        if wanted == control:
            return
        with self._lifecycle.service() as conn:
            conn.modify(account.dn, {"userAccountControl": [(MODIFY_REPLACE, [str(wanted)])]})
            raise_for(conn.result, f"{'disable' if disabled else 'enable'} the account", self._lifecycle_who)

    def disable_account(self, account: Account) -> None:
        self._set_disabled(account, True)

    @one_server
    def enable_account(self, account: Account) -> Outcome:
        self._set_disabled(account, False)
        return Outcome.DISABLED if self.status(account).disabled else Outcome.OK

    # -- sync ------------------------------------------------------------------------

    def _sync_position(self, checkpoint: str | None) -> tuple[str, str | None]:
        """What changed after ``checkpoint``: a higher uSNChanged, or a standing that time alone changed.

        A lock ends when lockoutDuration has passed, and accountExpires
        disables an account when its day comes, without writing to the
        account: no uSNChanged moves, and the copy would call the account
        locked (or enabled) until the next full sync, a day later. So the
        checkpoint carries the DC's time too, and the accounts whose lock
        ran out, or whose account expired, between it and now come as well.
        (A lock whose duration a fine-grained password policy sets
        otherwise, or that ended early because the domain's duration was
        shortened, may wait for the full sync.)
        """
        with self._connections.service() as conn:
            conn.search("", "(objectClass=*)", BASE, attributes=["highestCommittedUSN", "dsServiceName", "currentTime"])
            raise_for(conn.result, "read the root DSE")
            root = conn.response[0]["raw_attributes"] if conn.response else {}
            server = _text(root, "dsServiceName") or ""
            conn.search(server, "(objectClass=*)", BASE, attributes=["invocationId"])
            raise_for(conn.result, "read the domain controller's invocationId")
            raw = conn.response[0]["raw_attributes"].get("invocationId") or [] if conn.response else []
            conn.search(self._domain_dn, "(objectClass=domain)", BASE, attributes=["lockoutDuration"])
            raise_for(conn.result, "read the domain's lockout duration")
            domain = conn.response[0]["raw_attributes"] if conn.response else {}
        if not raw:
            raise DirectoryUnavailable("the domain controller has no invocationId")
        # USNs count one DC's database: another DC, or this one restored, counts afresh.
        database = str(uuid.UUID(bytes_le=bytes(raw[0])))
        clock = _filetime_of(_text(root, "currentTime"))
        now = f"usn:{database}:{_number(root, 'highestCommittedUSN')}:{clock}"
        known = _CHECKPOINT.fullmatch(checkpoint or "")
        if known is None or known.group(1) != database:
            return now, None
        changed = f"(uSNChanged>={int(known.group(2)) + 1})"
        if known.group(3) is None:  # a checkpoint from before it held the time
            return now, changed
        since = int(known.group(3)) - _WINDOW_SLACK
        expired = f"(&(accountExpires>={max(since, 1)})(accountExpires<={clock}))"
        lasts = -_number(domain, "lockoutDuration")  # stored negative; 0: until an administrator unlocks
        if not 0 < lasts < ad_codes.NEVER:
            return now, f"(|{changed}{expired})"
        ended = f"(&(lockoutTime>={max(since - lasts, 1)})(lockoutTime<={clock - lasts}))"
        return now, f"(|{changed}{expired}{ended})"

    # -- provisioning ----------------------------------------------------------------

    def _rdns(self, name: str) -> Iterator[str]:
        """CN=name, then CN=name 2, CN=name 3...: AD wants a CN unique in its OU, not in the domain."""
        yield f"CN={dn.escape_value(name)}"
        for number in range(2, MAX_SUFFIX + 1):
            suffix = f" {number}"
            yield f"CN={dn.escape_value(name[: MAX_NAME - len(suffix)].rstrip() + suffix)}"

    def _upn_suffix(self) -> str:
        return ".".join(value for kind, value in dn.values(self._domain_dn) if kind.casefold() == "dc")

    @one_server
    def create_account(
        self, login: str, person: Person, password: str | None, *, location: Location = ()
    ) -> tuple[Outcome, Account | None]:
        check_login(login, _MAX_LOGIN)
        check_person(person)
        check_location(location)
        if password is not None:
            require_password(password)
            refused = self.refuse_new(password)
            if refused is not None:
                return refused, None
        parent = self._location_dn(location)
        upn = f"{login}@{self._upn_suffix()}"
        self._check_free([login, upn, *([person.email] if person.email else [])])
        self._check_location(parent)
        attributes: dict[str, object] = {
            "objectClass": ["user"],
            "sAMAccountName": login,
            "userPrincipalName": upn,
            **_person_attributes(person, creating=True),
            **self._organization_written(person),
            "pwdLastSet": "0",
        }
        if password is None:
            # Awaiting set-up: no password, and disabled, which AD allows only
            # so (an enabled account must have a password the policy accepts).
            attributes["userAccountControl"] = str(ad_codes.UF_NORMAL_ACCOUNT | ad_codes.UF_ACCOUNTDISABLE)
        else:
            # One add, password included: refused by the policy, nothing is created.
            attributes["unicodePwd"] = _unicode_pwd(password)
            attributes["userAccountControl"] = str(ad_codes.UF_NORMAL_ACCOUNT)
        for rdn in self._rdns(person.shown_as):
            entry_dn = f"{rdn},{parent}"
            with self._lifecycle.service() as conn:
                conn.add(entry_dn, attributes=attributes)
                result = conn.result
            if result["result"] == ENTRY_ALREADY_EXISTS:
                continue
            if result["result"] == NO_SUCH_OBJECT:
                raise NoSuchLocation(f"{parent} does not exist")
            if result["result"] != SUCCESS:
                if password is None:
                    raise_for(result, "create the account", self._lifecycle_who)
                    raise DirectoryUnavailable("unexpected answer when trying to create the account")
                return self._refusal(result, password, "create the account", self._lifecycle_who), None
            found = self._search_one(f"(&(objectClass=user)(sAMAccountName={escape_filter_chars(login)}))")
            if found is None:
                raise DirectoryUnavailable("the new account cannot be read back")
            return Outcome.OK, found.account
        raise LoginTaken(f"every name tried for {person.shown_as!r} is taken in {parent}")

    @one_server
    def activate_account(self, account: Account, password: str) -> Outcome:
        require_password(password)
        refused = self.refuse_new(password)
        if refused is not None:
            return refused
        found = self._provisioned(account)
        attributes = self._read(found.account)
        control = _number(attributes, "userAccountControl")
        # Awaiting set-up: disabled and no password ever set (pwdLastSet 0).
        # A password set since, or an account never made so, is not activated.
        if not control & ad_codes.UF_ACCOUNTDISABLE or _number(attributes, "pwdLastSet") != 0:
            return Outcome.DISABLED
        changes = {
            # One modify: a password the policy refuses leaves the account as it was.
            "unicodePwd": [(MODIFY_REPLACE, [_unicode_pwd(password)])],
            "pwdLastSet": [(MODIFY_REPLACE, ["-1"])],  # now: chosen by the owner, not temporary
            "userAccountControl": [(MODIFY_REPLACE, [str(control & ~ad_codes.UF_ACCOUNTDISABLE)])],
        }
        with self._lifecycle.service() as conn:
            conn.modify(found.dn, changes)
            result = conn.result
        if result["result"] == SUCCESS:
            return Outcome.OK
        return self._refusal(result, password, "set the first password", self._lifecycle_who)

    def _person_written(self, person: Person) -> dict[str, list[str]]:
        return _person_attributes(person)

    def move_account(self, account: Account, location: Location) -> Account:
        found = self._provisioned(account)
        return self._move(found, self._location_dn(location), self._rdns(dn.first_value(found.dn)))


def _person_attributes(person: Person, *, creating: bool = False) -> dict[str, list[str]]:
    """A user's names and contact attributes for ``person``: an empty list clears one (never on an add).

    cn is the RDN here: it changes only by a move or a rename, never by a modify.
    """
    values = {
        "sn": [person.surname],
        "givenName": [person.given_name] if person.given_name else [],
        "displayName": [person.shown_as],
        "mail": [person.email] if person.email else [],
        "telephoneNumber": [person.phone] if person.phone else [],
        "title": [person.title] if person.title else [],
        "department": [person.department] if person.department else [],
        "mobile": [person.mobile] if person.mobile else [],
    }
    return {name: value for name, value in values.items() if value or not creating}
