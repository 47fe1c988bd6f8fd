"""Sign a user in with the directory's verdict on their password."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm.account import audit
from sspm.infra.store import Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason
from sspm.policy.timing import pad_refusal


@dataclass(frozen=True)
class SignInResult:
    """``reason`` None: signed in. Reason.EXPIRED/Reason.MUST_CHANGE: proven, but change it first."""

    reason: Reason | None
    account: Account | None = None
    #: Whole days (rounded up) until the password expires, when the directory
    #: warned at this bind (ppolicy's timeBeforeExpiration, AD's expiry time).
    expires_in_days: int | None = None


def sign_in(directory: Directory, store: Store, login: str, password: str, *, actor: Actor) -> SignInResult:
    """The directory's verdict on a login and password; ``actor`` is who is at the door (usually anonymous)."""
    if not login.strip() or not password.strip():
        return SignInResult(Reason.BAD_CREDENTIALS)
    started = time.perf_counter()
    try:
        account, verdict = directory.verify_password(logins.spelling(login), password)
    except DirectoryError as exc:
        return SignInResult(reasons.directory_failed(exc, "sign in"))
    outcome = verdict.outcome
    audit.record(store, audit.Action.SIGN_IN, outcome.value, actor=actor, account=account, typed=login)
    if account is None or not verdict.password_proven:
        pad_refusal(started)
        # Locked and disabled read like a wrong password: see sspm.web.messages.
        return SignInResult(Reason.BAD_CREDENTIALS)
    if outcome is not Outcome.OK:
        return SignInResult(reasons.of(outcome), account)
    return SignInResult(None, account, _days(verdict.expires_in))


def _days(seconds: int | None) -> int | None:
    """Rounded up, so 4 days and 23 hours reads "5 days", and the last hours "1 day"."""
    return None if seconds is None else max(1, math.ceil(seconds / 86400))
