"""Active Directory's codes and what each one means to SSPM: the one table.

AD says why it refused something only in text. A refused simple bind is
result 49 with ``... AcceptSecurityContext error, data 775, ...`` (a Windows
error number in hex); a refused password change starts its message with a
Windows error number in eight hex digits (``0000052D: ...``), and Samba adds
its reason in words where Windows does not. Every such number SSPM knows is
here, next to the :class:`~connectors.directory.Outcome` it becomes; the
connector reads nothing else.
"""

from __future__ import annotations

import re

from connectors.directory import Outcome

#: A failed bind (result 49), by its ``data`` code.
BIND_CODES: dict[str, Outcome] = {
    # ERROR_LOGON_FAILURE: wrong password, or (Samba) no such user.
    "52e": Outcome.BAD_CREDENTIALS,
    # ERROR_NO_SUCH_USER (Windows, for some unknown names): told exactly as a
    # wrong password, so an answer never says whether an account exists.
    "525": Outcome.BAD_CREDENTIALS,
    # ERROR_INVALID_LOGON_HOURS, ERROR_INVALID_WORKSTATION: the password was
    # right but an administrator's restriction keeps the account out now or
    # from here. DISABLED, not BAD_CREDENTIALS: retrying cannot help (and
    # must not be invited), only an administrator can; and it proves nothing,
    # so no change is offered.
    "530": Outcome.DISABLED,
    "531": Outcome.DISABLED,
    # ERROR_PASSWORD_EXPIRED: the right password, expired; it can still be
    # used to choose a new one.
    "532": Outcome.EXPIRED,
    # ERROR_ACCOUNT_DISABLED: userAccountControl has ACCOUNTDISABLE.
    "533": Outcome.DISABLED,
    # ERROR_ACCOUNT_EXPIRED: accountExpires has passed; as final as a disable.
    "701": Outcome.DISABLED,
    # ERROR_PASSWORD_MUST_CHANGE: pwdLastSet is 0, a temporary password.
    "773": Outcome.MUST_CHANGE,
    # ERROR_ACCOUNT_LOCKED_OUT: said whether the password was right or not.
    "775": Outcome.LOCKED,
}

#: A refused password change or reset (result 19 or 53), by the number its message starts with.
RESTRICTION = "0000052D"  # ERROR_PASSWORD_RESTRICTION
CHANGE_CODES: dict[str, Outcome] = {
    # ERROR_INVALID_PASSWORD: the old password is wrong (it counts as a bad attempt).
    "00000056": Outcome.BAD_CREDENTIALS,
    # ERROR_ACCOUNT_LOCKED_OUT: no change while locked, even with the right old password.
    "00000775": Outcome.LOCKED,
    # The new password breaks the policy. Samba says which rule (below);
    # Windows does not, and then it is TOO_WEAK: "does not meet the rules".
    RESTRICTION: Outcome.TOO_WEAK,
}

#: Samba's reason after 0000052D (``check_password_restrictions: ...``), in order.
RESTRICTION_REASONS: tuple[tuple[str, Outcome], ...] = (
    ("too short", Outcome.TOO_SHORT),
    ("complexity", Outcome.TOO_WEAK),
    ("already used", Outcome.IN_HISTORY),  # "the password was already used (in history)"
    ("too young", Outcome.TOO_YOUNG),
)

# -- userAccountControl and msDS-User-Account-Control-Computed bits -------------------
UF_ACCOUNTDISABLE = 0x0002
UF_NORMAL_ACCOUNT = 0x0200  # a user's own account, as opposed to a computer's or a trust's
UF_LOCKOUT = 0x0010  # only in the computed attribute, and only while the lock lasts

#: accountExpires / msDS-UserPasswordExpiryTimeComputed: never.
NEVER = 0x7FFFFFFFFFFFFFFF

_DATA = re.compile(r"AcceptSecurityContext error, data ([0-9a-fA-F]+)")
_NUMBER = re.compile(r"^\s*([0-9a-fA-F]{8})\b")


def bind_outcome(message: str) -> Outcome:
    """The outcome of a bind refused with result 49.

    A code SSPM does not know proves nothing, so it is a bad password.
    """
    found = _DATA.search(message or "")
    code = found.group(1).lower() if found else ""
    return BIND_CODES.get(code, Outcome.BAD_CREDENTIALS)


def change_refusal(message: str) -> Outcome | None:
    """The outcome of a refused password change or reset, or None if it is not one.

    A restriction without a reason (Windows says none) is TOO_WEAK: the new
    password does not meet the domain's rules. The caller may know better
    (it can compare the length with the policy).
    """
    found = _NUMBER.match(message or "")
    number = found.group(1).upper() if found else ""
    if number == RESTRICTION:
        return restriction_reason(message) or CHANGE_CODES[RESTRICTION]
    return CHANGE_CODES.get(number)


def restriction_reason(message: str) -> Outcome | None:
    """Samba's stated reason for a 0000052D refusal, if it gave one."""
    lowered = (message or "").lower()
    for words, outcome in RESTRICTION_REASONS:
        if words in lowered:
            return outcome
    return None
