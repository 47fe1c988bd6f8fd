"""Staff: directory accounts granted console roles, and their second factor (no Flask).

A staff member is a directory account with at least one grant (a role in
an organization, see sspm.policy.roles), kept by the account's immutable
id. Grants are made by an operator at the command line (the first Super
Admin) or by staff whose own grants allow it, checked here against the
grants in the store at that moment, never against what a session
remembers. Every grant and revoke is audited, refusals and no-ops included.

The second factor is TOTP (pyotp): the secret is stored encrypted with
``Settings.staff_totp_key`` (Fernet), a code is accepted once (the last
time step used is kept, so a code read over a shoulder is already spent),
and ten one-time recovery codes stand in for a lost authenticator, stored
as SHA-256 (they are random, 80 bits: a slow hash buys nothing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from connectors.directory import Account
from sspm.account import audit
from sspm.account.audit import Action
from sspm.infra.store import StaffGrant, StaffMember, StaffRecoveryCode, Store, utcnow
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.roles import Grant, Grants, Role, highest_role, may_grant_to

#: Recovery codes issued at a time.
RECOVERY_CODES = 10
#: What authenticator apps show the account under, before the login.
ISSUER = "SSPM"


@dataclass(frozen=True)
class Staff:
    """A staff member as the console needs them: who, what they were granted, whether TOTP is set up."""

    id: int
    account_id: str
    login: str
    grants: Grants
    #: Whether an authenticator proved it holds the secret: until then there is no second factor to ask.
    totp_confirmed: bool
    created_at: datetime

    @property
    def highest_role(self) -> Role | None:
        return highest_role(self.grants)


class Change(StrEnum):
    """How a grant or revoke ended; also the audit row's outcome."""

    GRANTED = "granted"
    REVOKED = "revoked"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


class SecondFactor(StrEnum):
    """What proved a staff member's second factor (truthy either way; failure is None)."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery-code"


class TotpAlreadyConfirmed(Exception):
    """Enrollment was asked to start again over a confirmed authenticator: that needs an operator."""


class TotpKeyMismatch(RuntimeError):
    """A stored TOTP secret does not decrypt with the key configured: an operator's problem, not a wrong code."""


# -- who is staff ------------------------------------------------------------------------------------------


def _value(row: StaffMember) -> Staff:
    return Staff(
        id=row.id,
        account_id=row.account_id,
        login=row.login,
        grants=Grants.of(Grant.of(g.role, g.organization) for g in row.grants),
        totp_confirmed=row.totp_confirmed_at is not None,
        created_at=row.created_at,
    )


def _row(session: Session, account_id: str) -> StaffMember | None:
    return session.scalars(
        select(StaffMember).where(StaffMember.account_id == account_id).options(selectinload(StaffMember.grants))
    ).first()


def staff_of(store: Store, account_id: str) -> Staff | None:
    """The staff member this directory account is, with their grants; None unless they hold a grant."""
    with store.session() as session:
        row = _row(session, account_id)
        found = _value(row) if row is not None else None
    return found if found is not None and found.grants else None


def all_staff(store: Store) -> list[Staff]:
    """Everyone holding a grant, by login."""
    with store.session() as session:
        everyone = select(StaffMember).options(selectinload(StaffMember.grants)).order_by(StaffMember.login)
        rows = session.scalars(everyone)
        return [s for s in map(_value, rows) if s.grants]


# -- granting ----------------------------------------------------------------------------------------------


def grant(store: Store, actor: Actor, *, account: Account, role: Role | str, organization: str | None = None) -> Change:
    """Give ``account`` ``role`` in ``organization`` (ignored for a Super Admin: every one).

    An operator may grant anything; staff what ``roles.may_grant_to``
    allows them by their grants in the store now; anyone else nothing.
    Granting what is already held changes nothing and says so. Raises
    ``roles.BadGrant`` (a ValueError) for a role with no organization.
    """
    return _change(store, actor, account, Grant.of(role, organization), give=True)


def revoke(
    store: Store, actor: Actor, *, account: Account, role: Role | str, organization: str | None = None
) -> Change:
    """Take ``role`` in ``organization`` from ``account``: the same rules as :func:`grant`.

    The staff member's record (and second factor) stays: with no grant
    left they are simply not staff, and a later grant finds them enrolled.
    """
    return _change(store, actor, account, Grant.of(role, organization), give=False)


def _change(store: Store, actor: Actor, account: Account, wanted: Grant, *, give: bool) -> Change:
    action = Action.STAFF_GRANT if give else Action.STAFF_REVOKE
    details = {"role": wanted.role.value, "organization": wanted.organization}
    with store.session(immediate=True) as session:
        target = _row(session, account.id)
        held = {Grant.of(g.role, g.organization): g for g in target.grants} if target else {}
        if not _allowed(session, actor, account, wanted, Grants.of(held)):
            outcome = Change.REFUSED
        elif give and wanted not in held:
            outcome = _add(session, target, account, wanted)
        elif not give and wanted in held:
            session.delete(held[wanted])
            outcome = Change.REVOKED
        else:
            outcome = Change.UNCHANGED
        audit.record(store, action, outcome.value, actor=actor, account=account, details=details, session=session)
    return outcome


def _allowed(session: Session, actor: Actor, account: Account, wanted: Grant, target: Grants) -> bool:
    if actor.kind is ActorKind.OPERATOR:
        return True
    if actor.kind is not ActorKind.STAFF or not actor.id:
        return False
    own = _row(session, actor.id)
    return own is not None and may_grant_to(
        _value(own).grants,
        wanted.role,
        wanted.organization,
        target_account_id=account.id,
        own_account_id=actor.id,
        target_highest_role=highest_role(target),
    )


def _add(session: Session, target: StaffMember | None, account: Account, wanted: Grant) -> Change:
    """Insert the grant (and the member), or find that a concurrent request just did: one grant either way."""
    try:
        with session.begin_nested():
            if target is None:
                target = StaffMember(account_id=account.id, login=account.email or account.username)
                session.add(target)
                session.flush()
            session.add(StaffGrant(staff_id=target.id, role=wanted.role.value, organization=wanted.organization))
            session.flush()
    except IntegrityError:
        return Change.UNCHANGED
    return Change.GRANTED


# -- the second factor -------------------------------------------------------------------------------------


def begin_totp(store: Store, staff: Staff, *, key: str, issuer: str = ISSUER) -> tuple[str, str]:
    """A new TOTP secret for ``staff``, stored encrypted and not yet confirmed: (secret, otpauth:// URI).

    Show both once (the URI as a QR code, the secret for typing); the
    authenticator counts only once :func:`confirm_totp` saw a code from it.
    Starting again replaces an unconfirmed secret; a confirmed one raises
    :class:`TotpAlreadyConfirmed`.
    """
    secret = pyotp.random_base32()
    with store.session() as session:
        row = session.get(StaffMember, staff.id)
        if row is None:
            raise LookupError(f"no staff member {staff.id}")
        if row.totp_confirmed_at is not None:
            raise TotpAlreadyConfirmed(staff.login)
        row.totp_secret = Fernet(key.encode()).encrypt(secret.encode()).decode()
        row.totp_last_step = None
    return secret, pyotp.TOTP(secret).provisioning_uri(name=staff.login, issuer_name=issuer)


def confirm_totp(store: Store, staff: Staff, code: str, *, key: str, actor: Actor) -> bool:
    """Whether ``code`` comes from the authenticator :func:`begin_totp` set up; if so it is now the second factor."""
    with store.session(immediate=True) as session:
        row = session.get(StaffMember, staff.id)
        ok = (
            row is not None
            and row.totp_confirmed_at is None
            and row.totp_secret is not None
            and _spend_totp(session, row, code, key)
        )
        if ok and row is not None:
            row.totp_confirmed_at = utcnow()
        _audit(store, session, actor, staff, Action.STAFF_TOTP_ENROLL, "confirmed" if ok else "wrong-code")
    return ok


def verify_second_factor(store: Store, staff: Staff, code: str, *, key: str, actor: Actor) -> SecondFactor | None:
    """Which second factor ``code`` proves: a fresh TOTP code, or an unused recovery code (then spent); else None.

    Only a confirmed authenticator counts. Audited either way.
    """
    with store.session(immediate=True) as session:
        row = session.get(StaffMember, staff.id)
        proved: SecondFactor | None = None
        if row is not None and row.totp_confirmed_at is not None:
            if _looks_like_totp(code):
                proved = SecondFactor.TOTP if _spend_totp(session, row, code, key) else None
            elif _spend_recovery_code(session, row.id, code):
                proved = SecondFactor.RECOVERY_CODE
        _audit(store, session, actor, staff, Action.STAFF_SECOND_FACTOR, proved.value if proved else "refused")
    return proved


def new_recovery_codes(store: Store, staff: Staff, *, actor: Actor) -> list[str]:
    """Ten new one-time recovery codes (``xxxx-xxxx-xxxx-xxxx``), to be shown once; every older one is void."""
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    with store.session(immediate=True) as session:
        session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == staff.id))
        session.add_all(StaffRecoveryCode(staff_id=staff.id, code_hash=_code_hash(c)) for c in codes)
        _audit(store, session, actor, staff, Action.STAFF_RECOVERY_CODES, "issued")
    return codes


def reset_second_factor(store: Store, staff: Staff, *, actor: Actor) -> None:
    """Forget a staff member's authenticator and recovery codes: their next sign-in enrolls a new one.

    For a lost phone with the recovery codes gone too. Only an operator at
    the server does it (``python -m sspm staff reset-2fa``), and every open
    staff session of the member should end with it (the caller's job: this
    module knows nothing of Redis). Audited.
    """
    with store.session(immediate=True) as session:
        session.execute(
            update(StaffMember)
            .where(StaffMember.id == staff.id)
            .values(totp_secret=None, totp_confirmed_at=None, totp_last_step=None)
        )
        session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == staff.id))
        _audit(store, session, actor, staff, Action.STAFF_TOTP_RESET, "reset")


def unused_recovery_codes(store: Store, staff: Staff) -> int:
    """How many recovery codes are left, so the console can say when to make new ones."""
    with store.session() as session:
        rows = session.scalars(
            select(StaffRecoveryCode.id).where(
                StaffRecoveryCode.staff_id == staff.id, StaffRecoveryCode.used_at.is_(None)
            )
        )
        return len(rows.all())


def _audit(store: Store, session: Session, actor: Actor, staff: Staff, action: Action, outcome: str) -> None:
    audit.record(
        store, action, outcome, actor=actor, account_id=staff.account_id, username=staff.login, session=session
    )


def _looks_like_totp(code: str) -> bool:
    digits = code.replace(" ", "")
    return len(digits) == 6 and digits.isascii() and digits.isdigit()


def _spend_totp(session: Session, row: StaffMember, code: str, key: str) -> bool:
    """Accept ``code`` for the step before, the current one or the one after, once, and never an older step.

    The conditional UPDATE makes two requests with the same code race for
    one row: only one of them moves the last step forward.
    """
    if row.totp_secret is None or not _looks_like_totp(code):
        return False
    try:
        secret = Fernet(key.encode()).decrypt(row.totp_secret.encode()).decode()
    except InvalidToken:
        raise TotpKeyMismatch(
            "a staff TOTP secret does not decrypt: was SSPM_STAFF_TOTP_KEY changed (or SSPM_SECRET_KEY, with it unset)?"
        ) from None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    typed = code.replace(" ", "")
    for step in (now - 1, now, now + 1):
        if not hmac.compare_digest(totp.generate_otp(step), typed):
            continue
        moved = session.execute(
            update(StaffMember)
            .where(StaffMember.id == row.id)
            .where((StaffMember.totp_last_step.is_(None)) | (StaffMember.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        session.refresh(row)
        return bool(moved.rowcount)  # type: ignore[attr-defined]
    return False


def _recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")  # 80 bits, 16 characters
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4)).lower()


def _code_hash(code: str) -> str:
    """SHA-256 of the code as typed any way (case, spaces and hyphens do not count)."""
    plain = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(plain.encode("ascii", "replace")).hexdigest()


def _spend_recovery_code(session: Session, staff_id: int, code: str) -> bool:
    spent = session.execute(
        update(StaffRecoveryCode)
        .where(
            StaffRecoveryCode.staff_id == staff_id,
            StaffRecoveryCode.code_hash == _code_hash(code),
            StaffRecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount)  # type: ignore[attr-defined]
