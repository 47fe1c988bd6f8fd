"""Forgot Password by email: ask for a link, then set a new password with it.

Asking says the same thing whoever is named. Opening the link (a GET, as a
mail scanner does) spends nothing; only the POST that sets the password
spends the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm import audit, tokens
from sspm.email.jobs import RESET_PURPOSE
from sspm.email.outbox import EmailUnavailable, Outbox
from sspm.passwords import Rules, first_problem
from sspm.store import Store

log = logging.getLogger(__name__)


def request_link(
    directory: Directory, store: Store, outbox: Outbox, *, typed: str, language: str, source_ip: str
) -> str | None:
    """Queue a reset email if the name or address matches an account; None when queued."""
    try:
        account = directory.find_account(typed)
    except DirectoryError as exc:
        log.warning("directory unavailable at a reset-email request: %s", exc)
        return "unavailable"
    try:
        outbox.reset_link(account, language)
    except EmailUnavailable as exc:
        log.warning("reset email not queued: %s", exc)
        audit.record(store, "reset_email_request", "not_queued", source_ip=source_ip, account=account, typed=typed)
        return "email_unavailable"
    if account is not None:
        outbox.remember_language(account.id, language)
    outcome = "queued" if account and account.email and not account.disabled else "no_match"
    audit.record(store, "reset_email_request", outcome, source_ip=source_ip, account=account, typed=typed)
    return None


@dataclass(frozen=True)
class LinkResult:
    reason: str | None
    account: Account | None = None


def account_for(directory: Directory, store: Store, token: str) -> Account | None:
    """The account a live link belongs to, or None; spends nothing.

    A link issued before the password last changed (through SSPM or not) is void.
    """
    account_id = tokens.find(store, token, RESET_PURPOSE)
    if account_id is None:
        return None
    account = directory.get_account(account_id)
    if account is None or account.disabled:
        return None
    changed = directory.status(account).password_changed_at
    return account if tokens.find(store, token, RESET_PURPOSE, changed_since=changed) else None


def reset_with_link(
    directory: Directory,
    store: Store,
    outbox: Outbox,
    rules: Rules,
    *,
    token: str,
    new: str,
    confirm: str,
    language: str,
    source_ip: str,
) -> LinkResult:
    try:
        account = account_for(directory, store, token)
        if account is None:
            return LinkResult("link_gone")
        problem = first_problem(new, confirm, "", rules, account)
        if problem is not None:
            return LinkResult(problem.value, account)
        # Spend first: of two requests racing with one link, one wins.
        if not tokens.spend(store, token):
            return LinkResult("link_gone")
        outcome = directory.reset_password(account, new, must_change=False)
    except DirectoryError as exc:
        log.warning("directory unavailable at a link reset: %s", exc)
        return LinkResult("unavailable")
    audit.record(store, "reset_by_email", outcome.value, source_ip=source_ip, account=account)
    if outcome is not Outcome.OK:
        tokens.restore(store, token)  # refused by policy: the user may try another password
        return LinkResult(str(outcome.value), account)
    tokens.void_all(store, account.id)
    outbox.notify(account, "password_reset", language, source_ip)
    return LinkResult(None, account)
