"""Change a password the user knows: current, expired, or temporary.

A plain function over the Directory contract, so the whole use case can be
exercised without HTTP. It answers with a reason code the pages translate
(see sspm.web.messages); it never says "done" unless the directory did.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm.account import audit
from sspm.account.aftermath import after_password_set
from sspm.infra.outbox import Outbox
from sspm.infra.state import State
from sspm.infra.store import Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.passwords import Rules, first_problem
from sspm.policy.reasons import Reason
from sspm.policy.timing import pad_refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeResult:
    """``reason`` is None on success, else why it was refused."""

    reason: Reason | None
    account: Account | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def change_password(
    directory: Directory,
    store: Store,
    rules: Rules,
    *,
    state: State,
    username: str,
    old: str,
    new: str,
    confirm: str,
    actor: Actor,
    outbox: Outbox,
) -> ChangeResult:
    """Prove the old password, check the new one, then let the directory change it.

    The order matters for privacy: nothing that depends on the account
    (its names, its policy verdict, whether it is locked or disabled) is
    said before the old password is proven, so an unknown user name, a
    wrong password and a locked or disabled account all read the same.
    ``actor`` is who typed it (the owner, signed in or not); the account
    is whoever's password was proven.
    """
    if not username.strip() or not old.strip():
        return ChangeResult(Reason.BAD_CREDENTIALS)
    if not new.strip():
        return ChangeResult(Reason.TOO_SHORT)
    early = first_problem(new, confirm, old, rules, None)
    if early is not None:
        return ChangeResult(early)
    try:
        started = time.perf_counter()
        account, verdict = directory.verify_password(logins.spelling(username), old)
        if account is None or not verdict.password_proven:
            pad_refusal(started)
            audit.record(
                store, audit.Action.CHANGE, verdict.outcome.value, actor=actor, account=account, typed=username
            )
            return ChangeResult(Reason.BAD_CREDENTIALS)
        late = first_problem(new, confirm, old, rules, account)
        if late is not None:
            return ChangeResult(late, account)
    except DirectoryError as exc:
        return ChangeResult(reasons.directory_failed(exc, "change password"))
    try:
        outcome = directory.change_password(account, old, new)
    except DirectoryError as exc:
        reason = reasons.directory_failed(exc, "change password", setting_password=True)
        audit.record(store, audit.Action.CHANGE, reason.value, actor=actor, account=account)
        return ChangeResult(reason, account)
    if outcome is not Outcome.OK:
        audit.record(store, audit.Action.CHANGE, outcome.value, actor=actor, account=account)
        return ChangeResult(reasons.of(outcome), account)
    log.info("password changed for account %s (was %s)", account.id, verdict.outcome.value)
    after_password_set(store, state, outbox, account, done=audit.Action.CHANGE, event="password_changed", actor=actor)
    return ChangeResult(None, account)
