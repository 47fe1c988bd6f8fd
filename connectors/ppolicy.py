"""The LDAP password policy response control (draft-behera-ldap-password-policy).

slapd says why a bind or a password change failed only through this
control, and ldap3 hands it over undecoded, so it is decoded here with
pyasn1 against the draft's ASN.1 definition.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ

OID = "1.3.6.1.4.1.42.2.27.8.5.1"

#: Ask for the control: without it slapd says nothing about the policy.
REQUEST = (OID, False, None)


class PolicyError(enum.IntEnum):
    PASSWORD_EXPIRED = 0
    ACCOUNT_LOCKED = 1
    CHANGE_AFTER_RESET = 2
    PASSWORD_MOD_NOT_ALLOWED = 3
    MUST_SUPPLY_OLD_PASSWORD = 4
    INSUFFICIENT_PASSWORD_QUALITY = 5
    PASSWORD_TOO_SHORT = 6
    PASSWORD_TOO_YOUNG = 7
    PASSWORD_IN_HISTORY = 8


class _Warning(univ.Choice):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType(
            "timeBeforeExpiration",
            univ.Integer().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0)),
        ),
        namedtype.NamedType(
            "graceAuthNsRemaining",
            univ.Integer().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 1)),
        ),
    )


class _Response(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType(
            "warning",
            _Warning().subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0)),
        ),
        namedtype.OptionalNamedType(
            "error",
            univ.Enumerated().subtype(implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 1)),
        ),
    )


@dataclass(frozen=True)
class PolicyResponse:
    error: PolicyError | None = None
    time_before_expiration: int | None = None
    grace_remaining: int | None = None


def decode(value: bytes | None) -> PolicyResponse | None:
    """Decode the control's value; None when it is absent or unreadable.

    An unreadable control is treated as absent rather than as an error: the
    result code alone still gives a safe (if less helpful) answer.
    """
    if value is None:
        return None
    try:
        decoded, _ = decoder.decode(value, asn1Spec=_Response())
    except PyAsn1Error:
        return None
    error: PolicyError | None = None
    if decoded["error"].isValue:
        try:
            error = PolicyError(int(decoded["error"]))
        except ValueError:
            error = None
    before = grace = None
    warning = decoded["warning"]
    if warning.isValue:
        chosen = warning.getName()
        if chosen == "timeBeforeExpiration":
            before = int(warning[chosen])
        elif chosen == "graceAuthNsRemaining":
            grace = int(warning[chosen])
    return PolicyResponse(error=error, time_before_expiration=before, grace_remaining=grace)


def from_result(result: dict[str, object]) -> PolicyResponse | None:
    """Pick the control out of an ldap3 result dictionary."""
    controls = result.get("controls")
    if not isinstance(controls, dict):
        return None
    control = controls.get(OID)
    if not isinstance(control, dict):
        return None
    value = control.get("value")
    return decode(value if isinstance(value, bytes) else None)
