"""A new user sets up their account: open the emailed link, choose a first password.

The link is a one-time token of purpose "setup" (sspm.account.setup_links);
a reset link does not open this page and a set-up link does not open the
reset page. As with reset links, opening it (a GET, as a mail scanner
does) spends nothing: the token is traded for a random handle the browser
keeps, which Redis maps to the token's digest for no longer than the link
lives. Only the POST that sets the password spends it.

Opening a live link proves the address it went to, and is recorded as such
(setup_links.email_verified), once per opening.

The account waits for its owner with no usable password; the directory's
``activate_account`` gives it the one chosen here, under the users' policy,
and makes it usable. An account that no longer awaits set-up (it got a
password some other way since) answers DISABLED and nothing changes: that
spends the link, which can do nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm.account import audit, setup_links, tokens
from sspm.account.aftermath import after_password_set
from sspm.account.opened_links import OpenedLinks
from sspm.account.setup_links import SETUP_PURPOSE
from sspm.infra.outbox import Outbox
from sspm.infra.state import State
from sspm.infra.store import Store
from sspm.policy import reasons
from sspm.policy.actor import Actor
from sspm.policy.passwords import Rules, first_problem
from sspm.policy.reasons import Reason

#: Opened set-up links (sspm.account.opened_links).
_LINKS = OpenedLinks("setup-link", SETUP_PURPOSE)


@dataclass(frozen=True)
class SetupResult:
    reason: Reason | None
    account: Account | None = None


def open_link(
    directory: Directory, store: Store, state: State, token: str, *, actor: Actor, clock_skew: timedelta
) -> str | None:
    """The handle a browser keeps for an opened set-up link; None if the link is not live.

    A live link proves its address: recorded here, on opening, even if the
    password is chosen another day (or never).
    """
    link = tokens.digest(token)
    account = _account_of(directory, store, link, clock_skew)
    if account is None:
        return None
    handle = _LINKS.open(store, state, link)
    if handle is not None:
        setup_links.email_verified(store, account, actor=actor)
    return handle


def _account_of(directory: Directory, store: Store, link: tokens.Digest, clock_skew: timedelta) -> Account | None:
    """The account of a live link, or None.

    Not refused for reading as disabled: an account awaiting set-up does;
    whether the person may still be set up is their record's to say
    (setup_links.still_to_set_up), asked at every use. A password set outside SSPM after the link
    was made voids it, as it voids a reset link (tokens.outdated): then the
    account is in someone's hands already, and the email's reader must not
    take it over (the address may have been a typo).
    """
    account_id = tokens.find(store, link, SETUP_PURPOSE)
    if account_id is None or not setup_links.still_to_set_up(store, account_id):
        return None
    return _LINKS.live_account(directory, store, link, clock_skew)


def account_for(
    directory: Directory, store: Store, handle: str, *, state: State, clock_skew: timedelta
) -> Account | None:
    """The account an opened link belongs to, or None; spends nothing. A dead link's handle is forgotten."""
    link = _LINKS.link_of(state, handle)
    account = _account_of(directory, store, link, clock_skew) if link else None
    if account is None:
        _LINKS.forget(state, handle)
    return account


def set_up(
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
) -> SetupResult:
    """Give the account of an opened link its first password, spending the link.

    A password the rules or the directory refuse spends nothing: the user
    tries another with the same link. ``actor`` is who typed it (anonymous
    until now: the link proves who may).
    """
    link = _LINKS.link_of(state, handle)
    spent = False
    try:
        account = _account_of(directory, store, link, clock_skew) if link else None
        if link is None or account is None:
            _LINKS.forget(state, handle)
            return SetupResult(Reason.LINK_GONE)
        problem = first_problem(new, confirm, "", rules, account)
        if problem is not None:
            return SetupResult(problem, account)
        # Spend first: of two requests racing with one link, one wins.
        spent = tokens.spend(store, link)
        if not spent:
            _LINKS.forget(state, handle)
            return SetupResult(Reason.LINK_GONE)
        outcome = directory.activate_account(account, new)
    except DirectoryError as exc:
        if spent and link is not None:
            # A new link takes staff: let this one try again once the directory is back (if the
            # password was set after all, the account no longer awaits set-up and the retry says so).
            tokens.restore(store, link)
        return SetupResult(reasons.directory_failed(exc, "set up a new account"))
    if outcome is Outcome.DISABLED:
        # Not awaiting set-up any more: this link can do nothing, now or later.
        audit.record(store, audit.Action.SETUP, "not_awaiting_setup", actor=actor, account=account)
        _LINKS.forget(state, handle)
        return SetupResult(Reason.LINK_GONE)
    if outcome is not Outcome.OK:
        audit.record(store, audit.Action.SETUP, outcome.value, actor=actor, account=account)
        tokens.restore(store, link)  # refused by policy: the user may try another password
        return SetupResult(reasons.of(outcome), account)
    _LINKS.forget(state, handle)  # used: the handle opens nothing any more
    after_password_set(store, state, outbox, account, done=audit.Action.SETUP, event="account_ready", actor=actor)
    return SetupResult(None, account)
