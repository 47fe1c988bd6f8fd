"""What follows a password being set, whichever page set it: the one place.

A new password is set three ways (Change Password, Forgot Password by the
questions, Forgot Password by an emailed link), and an account is unlocked
by the questions; each is a moment the account's owner takes it back from
whoever else may have had it. So each must close every way in that was
open before: links emailed earlier, and sessions signed in with the old
password on any machine, in both realms (a staff member's console session
was opened with that same directory password). Kept in one function so
that no path (nor the next one written) can forget a step: the steps were
once repeated in each service, and the sessions step was missing from all
of them.

An unlock counts as well, though the password stays: the owner just proved
who they are without it, after someone (perhaps not them) used up the
wrong-password attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from connectors.directory import Account
from sspm.account import audit, sessions, tokens
from sspm.infra.outbox import Outbox
from sspm.infra.state import State, StateUnavailable
from sspm.infra.store import Store
from sspm.policy.actor import Actor
from sspm.policy.realm import Realm

log = logging.getLogger(__name__)

#: The notification the owner gets, which also says what happened.
Event = Literal["password_changed", "password_reset", "account_unlocked", "account_ready"]


def after_password_set(
    store: Store,
    state: State,
    outbox: Outbox,
    account: Account,
    *,
    done: audit.Action,
    event: Event,
    actor: Actor,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Audit what was ``done``, void older links, end every session of the account, tell its owner.

    Called only once the directory confirmed. Nothing here undoes that: if
    Redis is away the sessions cannot be ended (nor used) now, which is
    logged and audited, and the user is still told the truth: it is done.
    If the database cannot take it (locked, read-only) the user is told the
    truth all the same, and the missing rows are logged as an error.
    The database sees one transaction: the row for what was done, the
    voided links and the row for the ended sessions commit together (one
    write lock, one commit, on the hot path of every change).
    The owner's email names the actor's address; it is in the visitor's
    language for self-service, else ("") in the owner's own remembered one.
    ``details`` go on the row for what was done (staff: how the caller was verified).
    """
    try:
        ended = str(sum(sessions.end_all(state, account.id, realm) for realm in Realm))
    except StateUnavailable as exc:
        log.warning("sessions of account %s not ended (%s): %s", account.id, event, exc)
        ended = "not_ended"
    try:
        with store.session(immediate=True) as session:
            audit.record(store, done, "ok", actor=actor, account=account, details=details, session=session)
            tokens.void_all(store, account.id, session=session)
            audit.record(store, audit.Action.SESSIONS_ENDED, ended, actor=actor, account=account, session=session)
    except SQLAlchemyError as exc:
        # A database locked or read-only must not turn "done" into "nothing
        # was changed": the user would go back to a password that no longer
        # works. The trail misses this row, so a person must act.
        log.error(
            "%s for account %s done in the directory but not recorded (audit row, older links, sessions row): %s",
            done.value,
            account.id,
            exc,
        )
    language = actor.language if actor.is_the_owner else ""
    if not outbox.notify(account, event, language, actor.client_address):
        try:
            audit.record(store, audit.Action.email(event), "not_queued", actor=actor, account=account)
        except SQLAlchemyError as exc:
            log.error("%s for account %s: its email not queued, nor recorded: %s", done.value, account.id, exc)
