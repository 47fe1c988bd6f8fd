"""The staff member of a console request, as the store has them now: the one helper every staff page uses.

A staff session (sspm.web.auth) only says who signed in and that they
gave the second factor; what they may do is never taken from it. Grants
can be revoked while a session is open, so every request re-reads them
from the store (``staff_of``) and decides on those. Features import
:func:`staff_member` from here rather than from each other.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, url_for
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from sspm.account.staff import Staff, staff_of
from sspm.web.auth import STAFF_PATH, STAFF_SIGNIN, current_staff, end_staff_session
from sspm.web.context import services

_MEMO = "sspm_staff_member"
_NOBODY = object()


def staff_member() -> Staff:
    """The fully signed-in staff member of this request, with their grants as the store holds them now.

    Guarantees, when it returns:

    - the request is under ``/staff`` and carries a live staff session
      (its record in Redis, not only a cookie) whose second factor was
      given: a half signed-in session does not count;
    - that session's account (its immutable directory id) is staff *now*:
      ``staff_of`` read on this request finds it with at least one grant,
      and ``Staff.grants`` is exactly what the store said — decide on
      those (``roles.may``, ``roles.may_act_on``), never on the session's
      role.

    Otherwise the request ends here: a redirect (303) to the staff sign-in,
    with ``next`` set to come back; and when the session outlived its
    grants (revoked, or the member removed) that session is ended server
    side first. Read once per request (memoised on ``flask.g``), so a page
    and its helpers agree on one answer.

    It does not check recent authentication (``requires_recent_auth``) nor
    scope over a target account: callers do that with the grants returned.
    """
    found = signed_in_staff()
    if found is None:
        principal = current_staff()
        if principal is not None and principal.mfa:
            # Signed in, but no longer staff (revoked, or removed): the session is worth nothing now.
            end_staff_session(services().state)
        abort(_to_signin())
    return found


def signed_in_staff() -> Staff | None:
    """:func:`staff_member`'s answer, or None instead of ending the request (navigation, page furniture).

    Only reads: it never ends a session, so an error page or a context
    processor has no side effect; :func:`staff_member` does that.
    """
    memo = g.get(_MEMO, None)
    if memo is not None:
        return None if memo is _NOBODY else cast(Staff, memo)
    found = _read()
    setattr(g, _MEMO, _NOBODY if found is None else found)
    return found


def _read() -> Staff | None:
    principal = current_staff()
    if principal is None or not principal.mfa:
        return None
    return staff_of(services().store, principal.staff_id)


def _to_signin() -> Response:
    if STAFF_SIGNIN not in current_app.view_functions:
        abort(401)
    came_for = request.endpoint if request.method == "GET" else None
    return redirect(url_for(STAFF_SIGNIN, next=came_for), code=303)


def safe_next(value: str | None, default: str = STAFF_PATH + "/") -> str:
    """Where to send a staff member after sign-in or reauthentication: a console page of this app, never elsewhere.

    ``value`` is an endpoint name (what sspm.web.auth's guards pass) or a
    path under ``/staff/`` that this app routes for GET; anything else
    (another site, ``//host``, a scheme, a backslash, a page outside the
    console, a POST-only action) gives ``default``.
    """
    if not value:
        return default
    if "/" not in value:
        return _endpoint_path(value) or default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value or not parts.path.startswith(STAFF_PATH + "/"):
        return default
    if any(ord(c) < 0x21 for c in value):
        return default
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(parts.path, method="GET")
    except (NotFound, MethodNotAllowed, RequestRedirect):
        return default
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _endpoint_path(endpoint: str) -> str | None:
    """The console page ``endpoint`` names, if it takes no arguments and answers GET."""
    if endpoint not in current_app.view_functions:
        return None
    for rule in current_app.url_map.iter_rules(endpoint):
        if rule.methods and "GET" in rule.methods and not rule.arguments - set(rule.defaults or {}):
            path = url_for(endpoint)
            if path.startswith(STAFF_PATH + "/"):
                return path
    return None
