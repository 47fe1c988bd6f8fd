"""Signed-in users: server-side sessions with idle and absolute timeouts.

The browser's cookie holds only a random handle (signed by Flask); the
record it points at lives in Redis under a digest of that handle. Signing
in clears the cookie session and issues a new handle (no fixation); signing
out deletes the record, so a copied cookie is worthless afterwards.

Each record is also listed under its account's immutable id, so that when
the password is set, or the account unlocked, by whatever path,
``end_all`` ends every session of that account at once: whoever was signed
in with the old password is signed out at their next request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import current_app, g, redirect, request, session

from connectors.directory import Account
from sspm.infra.state import State
from sspm.web.routing import link

_HANDLE = "sid"
_KIND = "session"


@dataclass(frozen=True)
class SignedIn:
    account_id: str
    username: str
    display_name: str
    started: float


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def _limits() -> tuple[int, int]:
    settings = current_app.config["SSPM_SETTINGS"]
    return settings.session_idle_minutes * 60, settings.session_max_hours * 3600


def sign_in(state: State, account: Account) -> None:
    idle, absolute = _limits()
    # A session this browser already had ends here, not at its timeout.
    sign_out(state)
    handle = secrets.token_urlsafe(32)
    record = {"account_id": account.id, "username": account.username, "display_name": account.display_name}
    # No session outlives the absolute limit, so neither need the account's list of them.
    state.put_listed(
        _KIND, _digest(handle), {**record, "started": time.time()}, ttl=idle, owner=account.id, list_ttl=absolute
    )
    session[_HANDLE] = handle
    g.pop("signed_in", None)


def current_user(state: State) -> SignedIn | None:
    """The signed-in user, or None; each call while valid pushes the idle timeout back."""
    if "signed_in" in g:
        return g.signed_in  # type: ignore[no-any-return]
    handle = session.get(_HANDLE)
    user = None
    if isinstance(handle, str):
        idle, absolute = _limits()
        record = state.get(_KIND, _digest(handle))
        if record and time.time() - float(record["started"]) < absolute:
            state.touch(_KIND, _digest(handle), idle)
            user = SignedIn(record["account_id"], record["username"], record["display_name"], float(record["started"]))
        elif record:
            state.delete_one_listed(_KIND, _digest(handle), owner=str(record["account_id"]))
    g.signed_in = user
    return user


def sign_out(state: State) -> None:
    handle = session.get(_HANDLE)
    if isinstance(handle, str):
        record = state.get(_KIND, _digest(handle))
        if record is not None:
            state.delete_one_listed(_KIND, _digest(handle), owner=str(record["account_id"]))
    session.clear()
    g.signed_in = None


def end_all(state: State, account_id: str) -> int:
    """End every session of an account, wherever it was opened; how many there were.

    Plain Python (no request needed): the use cases that set a password call it.
    """
    return state.delete_listed(_KIND, account_id)


def signed_in_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send anyone not signed in to the sign-in page, to come back here after."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        from sspm.web.context import services

        if current_user(services().state) is None:
            return redirect(link("signin.form", next=request.endpoint))
        return view(*args, **kwargs)

    return guarded
