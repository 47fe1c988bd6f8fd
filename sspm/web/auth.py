"""Who is signed in on this request, and the guards of the pages that need someone.

Two realms (sspm.policy.realm), each with its own cookie and its own
records (sspm.account.sessions):

- a domain user's handle rides in Flask's signed session cookie
  (``sspm_session``, everywhere), as it always has;
- a staff member's handle rides in a cookie of its own (``sspm_staff``):
  HttpOnly, SameSite=Strict, Secure under HTTPS, and sent only under
  ``/staff``.

:func:`current_principal` is the one place that decides who the principal
of a request is. Under ``/staff`` only the staff cookie counts; everywhere
else only the user's. The browser draws the same line when it sends the
staff cookie, so a principal is never a mix of the two, and which cookie
counts never depends on what else the browser holds.

A staff member who has given the password but not yet the second factor
is "half signed in": :func:`current_principal` says who they are (the
second-factor page needs it), but no guard lets them through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast

from flask import abort, after_this_request, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from connectors.directory import Account
from sspm.account import sessions
from sspm.account.sessions import Timeouts
from sspm.infra.settings import Settings
from sspm.infra.state import State
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.realm import Realm
from sspm.web.context import services
from sspm.web.routing import link

View = Callable[..., Any]

#: The user's handle, in Flask's session cookie.
USER_HANDLE = "sid"
STAFF_COOKIE = "sspm_staff"
STAFF_PATH = "/staff"
#: Where the staff realm sends whoever it turns away; until the staff pages register them, a plain 401.
STAFF_SIGNIN = "staff.signin"
STAFF_REAUTHENTICATE = "staff.reauthenticate"

_PRINCIPAL = "sspm_principal"
_STAFF_COOKIE_OUT = "sspm_staff_cookie_out"


@dataclass(frozen=True)
class SignedIn:
    """A domain user, signed in with their directory password."""

    account_id: str
    username: str
    display_name: str
    started: float


@dataclass(frozen=True)
class StaffSignedIn:
    """A staff member; ``mfa`` False while only the password has been given."""

    staff_id: str
    role: str
    organizations: tuple[str, ...]
    mfa: bool
    started: float
    #: When the password was last given (signing in counts), for :func:`requires_recent_auth`.
    reauthenticated_at: float


Principal = SignedIn | StaffSignedIn


def _settings() -> Settings:
    return current_app.config["SSPM_SETTINGS"]  # type: ignore[no-any-return]


def _timeouts(realm: Realm) -> Timeouts:
    return Timeouts.of(_settings(), realm)


def realm_of_request() -> Realm:
    """The realm whose cookie counts on this request: by path, as the browser sends the staff cookie."""
    path = request.path
    return Realm.STAFF if path == STAFF_PATH or path.startswith(STAFF_PATH + "/") else Realm.USER


# -- who is signed in ------------------------------------------------------------------------


def current_principal(state: State | None = None) -> Principal | None:
    """The signed-in user or staff member of this request, or None; read once per request.

    Reading pushes the session's idle timeout back.
    """
    if _PRINCIPAL in g:
        return cast("Principal | None", g.get(_PRINCIPAL))
    state = state or services().state
    principal: Principal | None = _staff(state) if realm_of_request() is Realm.STAFF else _user(state)
    setattr(g, _PRINCIPAL, principal)
    return principal


def _user(state: State) -> SignedIn | None:
    handle = session.get(USER_HANDLE)
    if not isinstance(handle, str):
        return None
    record = sessions.read(state, Realm.USER, _timeouts(Realm.USER), handle)
    if record is None:
        return None
    values = record.values
    return SignedIn(record.owner, str(values["username"]), str(values["display_name"]), record.started)


def _staff_handle() -> str | None:
    handle = request.cookies.get(STAFF_COOKIE)
    # token_urlsafe(32) is 43 characters; anything much longer is not ours.
    return handle if handle and len(handle) <= 64 else None


def _staff(state: State) -> StaffSignedIn | None:
    handle = _staff_handle()
    if handle is None:
        return None
    record = sessions.read(state, Realm.STAFF, _timeouts(Realm.STAFF), handle)
    if record is None:
        return None
    values = record.values
    return StaffSignedIn(
        staff_id=record.owner,
        role=str(values["role"]),
        organizations=tuple(str(org) for org in values["organizations"]),
        mfa=bool(values["mfa"]),
        started=record.started,
        reauthenticated_at=float(values["reauthenticated_at"]),
    )


def current_user(state: State | None = None) -> SignedIn | None:
    """The signed-in domain user, or None (a staff member is not one)."""
    principal = current_principal(state)
    return principal if isinstance(principal, SignedIn) else None


def current_staff(state: State | None = None) -> StaffSignedIn | None:
    """The staff member of this request, fully or half signed in, or None."""
    principal = current_principal(state)
    return principal if isinstance(principal, StaffSignedIn) else None


def actor_for(principal: Principal | None, client_address: str, language: str = "") -> Actor:
    """Who acts, for the use cases and the audit trail.

    A half signed-in staff member acts as nobody yet: an Actor of kind
    staff carries a role, which permissions are decided on.
    """
    if isinstance(principal, SignedIn):
        return Actor.user(principal.account_id, client_address, language)
    if isinstance(principal, StaffSignedIn) and principal.mfa:
        return Actor(
            ActorKind.STAFF,
            id=principal.staff_id,
            role=principal.role,
            organizations=principal.organizations,
            client_address=client_address,
            language=language,
        )
    return Actor.anonymous(client_address, language)


# -- the user realm: Flask's session cookie ----------------------------------------------------


def sign_in(state: State, account: Account) -> None:
    """Sign a domain user in, under a new handle (no fixation)."""
    # A session this browser already had ends here, not at its timeout.
    sign_out(state)
    values = {"username": account.username, "display_name": account.display_name}
    session[USER_HANDLE] = sessions.start(state, Realm.USER, _timeouts(Realm.USER), account.id, values)
    g.pop(_PRINCIPAL, None)


def sign_out(state: State) -> None:
    """End this browser's user session for real: the record goes, and the cookie session is cleared."""
    handle = session.get(USER_HANDLE)
    if isinstance(handle, str):
        sessions.end(state, Realm.USER, handle)
    session.clear()
    g.pop(_PRINCIPAL, None)


# -- the staff realm: its own cookie ---------------------------------------------------------


def start_staff_session(state: State, staff_id: str, role: str, organizations: Sequence[str], mfa_passed: bool) -> None:
    """Sign a staff member in (half, until ``mfa_passed``), under a new handle.

    The staff sign-in calls it after the password, then again after the
    second factor: each step gets a handle of its own.
    """
    end_staff_session(state)
    values = {
        "role": role,
        "organizations": list(organizations),
        "mfa": mfa_passed,
        "reauthenticated_at": time.time(),
    }
    _send_staff_cookie(sessions.start(state, Realm.STAFF, _timeouts(Realm.STAFF), staff_id, values))


def staff_reauthenticated(state: State) -> bool:
    """Mark that the staff member of this browser just gave the password again; False if their session ended.

    The session moves to a new handle (it gained trust), keeping its start time.
    """
    handle = _staff_handle()
    if handle is None:
        return False
    renewed = sessions.renew(state, Realm.STAFF, _timeouts(Realm.STAFF), handle, {"reauthenticated_at": time.time()})
    if renewed is None:
        return False
    _send_staff_cookie(renewed)
    return True


def end_staff_session(state: State) -> None:
    """Staff sign-out: the record goes, and the browser is told to forget the cookie."""
    handle = _staff_handle()
    if handle is not None:
        sessions.end(state, Realm.STAFF, handle)
        _send_staff_cookie(None)


def _send_staff_cookie(handle: str | None) -> None:
    """Set (or, with None, delete) the staff cookie on this request's response; the last word wins."""
    if _STAFF_COOKIE_OUT not in g:

        @after_this_request
        def _write(response: Response) -> Response:
            out = g.get(_STAFF_COOKIE_OUT)
            options: dict[str, Any] = {
                "path": STAFF_PATH,
                "secure": _settings().https,
                "httponly": True,
                "samesite": "Strict",
            }
            if out is None:
                response.delete_cookie(STAFF_COOKIE, **options)
            else:
                response.set_cookie(STAFF_COOKIE, out, **options)
            return response

    setattr(g, _STAFF_COOKIE_OUT, handle)
    g.pop(_PRINCIPAL, None)


# -- guards ------------------------------------------------------------------------------------


def _satisfies(principal: Principal | None, realm: Realm) -> bool:
    if realm is Realm.STAFF:
        return isinstance(principal, StaffSignedIn) and principal.mfa
    return isinstance(principal, SignedIn)


def _turn_away(realm: Realm, staff_endpoint: str = STAFF_SIGNIN) -> Response:
    if realm is Realm.USER:
        return redirect(link("signin.form", next=request.endpoint))
    if staff_endpoint in current_app.view_functions:
        return redirect(url_for(staff_endpoint, next=request.endpoint))
    abort(401)


def requires(realm: Realm) -> Callable[[View], View]:
    """Let only someone fully signed in to ``realm`` reach the view; send anyone else to sign in."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not _satisfies(current_principal(), realm):
                return _turn_away(realm)
            return view(*args, **kwargs)

        return guarded

    return decorate


def requires_role(*roles: str) -> Callable[[View], View]:
    """Staff only, and only in one of ``roles``: anyone else on staff is refused (403)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            if staff is None or staff.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return requires(Realm.STAFF)(guarded)

    return decorate


def requires_recent_auth(minutes: int | None = None) -> Callable[[View], View]:
    """Staff only, having given the password within ``minutes`` (SSPM_STAFF_REAUTH_MINUTES if None).

    Otherwise the staff member is sent to give it again, and back here after.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            window = (_settings().staff_reauth_minutes if minutes is None else minutes) * 60
            if staff is None or time.time() - staff.reauthenticated_at >= window:
                return _turn_away(Realm.STAFF, STAFF_REAUTHENTICATE)
            return view(*args, **kwargs)

        return requires(Realm.STAFF)(guarded)

    return decorate
