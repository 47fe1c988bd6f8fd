"""Staff sign-in use cases: the directory password, then a second factor (no Flask).

Staff sign in with their own domain account, checked by the directory
exactly as self-service sign-in checks it (the same spelling of the login,
the same bind, the same padded refusal). Only then does SSPM ask its store
whether the account is staff, and someone who is not gets the refusal a
wrong password gets, after the same padding: the page never tells who is
staff, not even to someone holding a valid password.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from markupsafe import Markup, escape

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm.account import audit, staff
from sspm.account.audit import Action
from sspm.account.staff import SecondFactor, Staff
from sspm.infra.store import Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason
from sspm.policy.timing import pad_refusal

#: How long an enrollment page's secret may be posted back for redisplay (the stored secret is what counts).
ENROLLMENT_SECONDS = 30 * 60


@dataclass(frozen=True)
class PasswordCheck:
    """``reason`` None: the password is right and the account is staff (``member``) — half signed in."""

    reason: Reason | None
    member: Staff | None = None
    account: Account | None = None


def check_password(directory: Directory, store: Store, login: str, password: str, *, actor: Actor) -> PasswordCheck:
    """The first step: the directory's verdict on the password, then whether the account holds a grant.

    Expired and temporary passwords of staff are refused with their own
    reason (change it first, at the self-service Change Password page);
    everything else that is not "right password, staff member" reads as a
    wrong password and takes at least the same padded time.
    """
    if not login.strip() or not password.strip():
        return PasswordCheck(Reason.BAD_CREDENTIALS)
    started = time.perf_counter()
    try:
        account, verdict = directory.verify_password(logins.spelling(login), password)
    except DirectoryError as exc:
        return PasswordCheck(reasons.directory_failed(exc, "staff sign in"))
    proven = account is not None and verdict.password_proven
    member = staff.staff_of(store, account.id) if account is not None and proven else None
    outcome = "not-staff" if proven and member is None else verdict.outcome.value
    audit.record(store, Action.STAFF_SIGN_IN, outcome, actor=actor, account=account, typed=login)
    if member is None:
        pad_refusal(started)
        return PasswordCheck(Reason.BAD_CREDENTIALS)
    if verdict.outcome is not Outcome.OK:
        return PasswordCheck(reasons.of(verdict.outcome), None, account)
    return PasswordCheck(None, member, account)


def check_second_factor(store: Store, member: Staff, code: str, *, key: str, actor: Actor) -> SecondFactor | None:
    """A TOTP code or an unused recovery code for ``member``, spent if it counts; None (after padding) if not."""
    started = time.perf_counter()
    proved = staff.verify_second_factor(store, member, code.strip(), key=key, actor=actor)
    if proved is None:
        pad_refusal(started)
    return proved


def reauthenticate(
    directory: Directory, store: Store, member: Staff, password: str, code: str, *, key: str, actor: Actor
) -> Reason | None:
    """Whether the signed-in staff member just proved both factors again; None if so.

    The password is checked against the member's own directory account
    (found by its immutable id, so a renamed login still works). One
    refusal for either factor, so the answer does not tell which was wrong;
    a code is not spent unless the password was right.
    """
    started = time.perf_counter()
    try:
        account = directory.get_account(member.account_id)
        proven_as, verdict = directory.verify_password(account.username, password) if account else (None, None)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "staff reauthenticate")
    password_ok = (
        proven_as is not None
        and proven_as.id == member.account_id
        and verdict is not None
        and verdict.outcome is Outcome.OK
    )
    proved = staff.verify_second_factor(store, member, code.strip(), key=key, actor=actor) if password_ok else None
    ok = proved is not None
    outcome = "reauthenticated" if ok else ("wrong-code" if password_ok else "wrong-password")
    audit.record(store, Action.STAFF_REAUTH, outcome, actor=actor, account=account)
    if not ok:
        pad_refusal(started)
        return Reason.STAFF_REAUTH_REFUSED
    return None


# -- enrolling an authenticator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    """What the enrollment page shows: the secret as text, as a QR code, and the sealed copy it posts back."""

    secret: str
    uri: str
    #: The secret encrypted for this page only, so a wrong first code shows the same QR code again.
    sealed: str

    def qr_svg(self, label: str) -> Markup:
        """The otpauth:// URI as an inline SVG QR code (no request leaves the page), named for screen readers."""
        svg = segno.make(self.uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff", omitsize=False)
        named = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" focusable="false" ', 1)
        # segno draws the data as path geometry, never as text: nothing typed by anyone reaches this markup.
        return Markup(named)  # noqa: S704


def begin_enrollment(store: Store, member: Staff, *, key: str) -> Enrollment:
    """A new authenticator secret for ``member``; any unconfirmed one before it is void."""
    secret, uri = staff.begin_totp(store, member, key=key)
    return Enrollment(secret, uri, Fernet(key.encode()).encrypt(secret.encode()).decode())


def enrollment_again(member: Staff, sealed: str, *, key: str) -> Enrollment | None:
    """The enrollment a page showed, from its sealed copy, to show again; None if forged or too old."""
    try:
        secret = Fernet(key.encode()).decrypt(sealed.encode(), ttl=ENROLLMENT_SECONDS).decode()
    except (InvalidToken, ValueError):
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(name=member.login, issuer_name=staff.ISSUER)
    return Enrollment(secret, uri, sealed)


def confirm_enrollment(store: Store, member: Staff, code: str, *, key: str, actor: Actor) -> list[str] | None:
    """Confirm the authenticator with a current code; the recovery codes to show once, or None for a wrong code."""
    if not staff.confirm_totp(store, member, code.strip(), key=key, actor=actor):
        return None
    return staff.new_recovery_codes(store, member, actor=actor)


def record_sign_out(store: Store, member_id: str | None, *, actor: Actor) -> None:
    """The trail says when a staff session was ended by its holder, not only when it started."""
    audit.record(store, Action.STAFF_SIGN_OUT, "signed-out", actor=actor, account_id=member_id)
