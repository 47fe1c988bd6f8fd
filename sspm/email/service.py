"""Forgot Password by email: ask for a link, then set a new password with it.

Asking says the same thing whoever is named. Opening the link (a GET, as a
mail scanner does) spends nothing; only the POST that sets the password
spends the token.

Opening the link trades its token for a random handle, which is all the
browser keeps (its session cookie is signed, not encrypted: anyone who sees
it can read it). Redis maps the handle to the token's digest for no longer
than the link lives, and forgets it once the link is used or gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm.account import audit, tokens
from sspm.account.aftermath import after_password_set
from sspm.account.opened_links import OpenedLinks
from sspm.email.jobs import RESET_PURPOSE
from sspm.infra.outbox import EmailUnavailable, Outbox
from sspm.infra.state import State
from sspm.infra.store import Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.passwords import Rules, first_problem
from sspm.policy.reasons import Reason
from sspm.policy.timing import pad_refusal

#: Redis kind of an opened link: a handle's digest -> the token's digest.
_LINKS = OpenedLinks("reset-link", RESET_PURPOSE)

log = logging.getLogger(__name__)


#: Counts one reset email for an account id (or, None, for the typed login) and says
#: whether it is still under the limit; the web layer's counters (sspm.web.limits.email_allowed).
MayEmail = Callable[[str | None, str], bool]


def request_link(
    directory: Directory, store: Store, outbox: Outbox, *, typed: str, actor: Actor, may_email: MayEmail
) -> Reason | None:
    """Queue a reset email if the name or address matches an account; None when "queued".

    Whoever is named, the request does the same work: one lookup, one count
    against the per-account email limit, one job on the queue (a job that
    sends nothing for an unknown name, a disabled or address-less account,
    or an account over its limit), one audit row; and the answer leaves at
    the same floor (sspm.policy.timing). Whatever else an account costs (its
    language remembered for later emails) is the worker's, off the request.
    The email is in ``actor.language``.
    """
    started = time.perf_counter()
    try:
        return _request_link(directory, store, outbox, typed=typed, actor=actor, may_email=may_email)
    finally:
        pad_refusal(started)


def _request_link(
    directory: Directory, store: Store, outbox: Outbox, *, typed: str, actor: Actor, may_email: MayEmail
) -> Reason | None:
    try:
        account = directory.find_account(logins.spelling(typed))
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "request a reset email")
    # Counted for unknown names too (by canonical login), so both cost the same.
    allowed = may_email(account.id if account else None, typed)
    try:
        outbox.reset_link(account if allowed else None, actor.language)
    except EmailUnavailable as exc:
        log.warning("reset email not queued: %s", exc)
        audit.record(store, audit.Action.RESET_EMAIL_REQUEST, "not_queued", actor=actor, account=account, typed=typed)
        return Reason.EMAIL_UNAVAILABLE
    if not allowed:
        outcome: str = Reason.RATE_LIMITED
    else:
        outcome = "queued" if account and account.email and not account.disabled else "no_match"
    audit.record(store, audit.Action.RESET_EMAIL_REQUEST, outcome, actor=actor, account=account, typed=typed)
    return None


@dataclass(frozen=True)
class LinkResult:
    reason: Reason | None
    account: Account | None = None


def open_link(store: Store, state: State, token: str) -> str | None:
    """The handle a browser keeps for an opened link; None if the link is not live."""
    return _LINKS.open(store, state, tokens.digest(token))


def _account_of(directory: Directory, store: Store, link: tokens.Digest, clock_skew: timedelta) -> Account | None:
    account = _LINKS.live_account(directory, store, link, clock_skew)
    return None if account is None or account.disabled else account


def account_for(
    directory: Directory, store: Store, handle: str, *, state: State, clock_skew: timedelta
) -> Account | None:
    """The account an opened link belongs to, or None; spends nothing.

    A link issued before the password last changed (through SSPM or not) is
    void, and so is one issued too close to that change to tell which came
    first (see tokens.outdated). A dead link's handle is forgotten.
    """
    link = _LINKS.link_of(state, handle)
    account = _account_of(directory, store, link, clock_skew) if link else None
    if account is None:
        _LINKS.forget(state, handle)
    return account


def reset_with_link(
    directory: Directory,
    store: Store,
    outbox: Outbox,
    rules: Rules,
    *,
    state: State,
    handle: str,
    new: str,
    confirm: str,
    actor: Actor,
    clock_skew: timedelta,
) -> LinkResult:
    """Set a new password with an opened link, spending it; the link proves who may, ``actor`` is who did."""
    link = _LINKS.link_of(state, handle)
    try:
        account = _account_of(directory, store, link, clock_skew) if link else None
        if link is None or account is None:
            _LINKS.forget(state, handle)
            return LinkResult(Reason.LINK_GONE)
        problem = first_problem(new, confirm, "", rules, account)
        if problem is not None:
            return LinkResult(problem, account)
        # Spend first: of two requests racing with one link, one wins.
        if not tokens.spend(store, link):
            _LINKS.forget(state, handle)
            return LinkResult(Reason.LINK_GONE)
    except DirectoryError as exc:
        return LinkResult(reasons.directory_failed(exc, "reset a password with an emailed link"))
    try:
        outcome = directory.reset_password(account, new, must_change=False)
    except DirectoryError as exc:
        # Given back: if the password was not set, the link still works for the
        # retry the page asks for; if it was, the directory's change time voids it.
        tokens.restore(store, link)
        reason = reasons.directory_failed(exc, "reset a password with an emailed link", setting_password=True)
        audit.record(store, audit.Action.RESET_BY_EMAIL, reason.value, actor=actor, account=account)
        return LinkResult(reason, account)
    if outcome is not Outcome.OK:
        audit.record(store, audit.Action.RESET_BY_EMAIL, outcome.value, actor=actor, account=account)
        tokens.restore(store, link)  # refused by policy: the user may try another password
        return LinkResult(reasons.of(outcome), account)
    _LINKS.forget(state, handle)  # used: the handle opens nothing any more
    after_password_set(
        store, state, outbox, account, done=audit.Action.RESET_BY_EMAIL, event="password_reset", actor=actor
    )
    return LinkResult(None, account)
