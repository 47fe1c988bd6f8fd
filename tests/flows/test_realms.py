"""Two kinds of sign-in: a domain user's and a staff member's never stand in for each other.

The staff pages come later; here a tiny blueprint, registered on a real
app for these tests only, stands in for them: it opens staff sessions the
way the staff sign-in will (``start_staff_session``) and has pages behind
each guard. Users sign in through the real sign-in page. Every story ends
by looking where the truth is: the records in Redis, and what each page
lets through.
"""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import urlsplit

import pytest
from flask import Blueprint, Flask, jsonify, request, url_for
from werkzeug.test import TestResponse
from werkzeug.wrappers import Response

from lab import SeedAccount, Slapd
from sspm.account import sessions
from sspm.policy.realm import Realm
from sspm.web.auth import (
    STAFF_COOKIE,
    actor_for,
    current_principal,
    end_staff_session,
    requires,
    requires_recent_auth,
    requires_role,
    staff_reauthenticated,
    start_staff_session,
)
from sspm.web.context import services
from sspm.web.routing import client_ip
from tests.flows.test_signin_enroll import is_signed_in, session_key
from tests.support import services_of
from tests.support.flows import COOKIE_DOMAIN, AppFactory, Visitor, account_id, app_redis, sign_in

# -- the stand-in staff pages ------------------------------------------------------------------

probe = Blueprint("realm_probe", __name__, url_prefix="/staff/probe")
user_probe = Blueprint("realm_probe_user", __name__, url_prefix="/probe")
#: Where the staff realm sends whoever it turns away, until the real staff pages exist.
stand_in = Blueprint("staff", __name__, url_prefix="/staff")


@probe.get("/start")
def start() -> str:
    """What the staff sign-in will do after the password (mfa=0) and after the second factor (mfa=1)."""
    start_staff_session(
        services().state,
        request.args["staff"],
        request.args["role"],
        request.args.getlist("org"),
        mfa_passed=request.args.get("mfa") == "1",
    )
    return "started"


@probe.get("/reauthenticated")
def reauthenticated() -> str:
    return "renewed" if staff_reauthenticated(services().state) else "no session"


@probe.get("/signout")
def signout() -> str:
    end_staff_session(services().state)
    return "signed out"


@probe.get("/desk")
@requires(Realm.STAFF)
def desk() -> str:
    return "the staff desk"


@probe.get("/admin")
@requires_role("admin")
def admin() -> str:
    return "administration"


@probe.get("/accounts")
@requires_role("helpdesk", "admin")
def accounts_page() -> str:
    return "accounts"


@probe.get("/sensitive")
@requires_recent_auth()
def sensitive() -> str:
    return "a sensitive action"


@probe.get("/actor")
def staff_side_actor() -> Response:
    return _actor()


@user_probe.get("/actor")
def user_side_actor() -> Response:
    return _actor()


def _actor() -> Response:
    actor = actor_for(current_principal(), client_ip(), "en")
    return jsonify(kind=actor.kind, id=actor.id, role=actor.role, organizations=list(actor.organizations))


@stand_in.get("/signin", endpoint="signin")
def staff_signin() -> str:
    return "staff sign-in"


@stand_in.get("/reauthenticate", endpoint="reauthenticate")
def staff_reauthenticate() -> str:
    return "give your password again"


def with_probes(app: Flask) -> Flask:
    app.register_blueprint(probe)
    app.register_blueprint(user_probe)
    if "staff" not in app.blueprints:
        app.register_blueprint(stand_in)
    return app


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probes(build_app(slapd))


# -- helpers -----------------------------------------------------------------------------------


def open_staff(visitor: Visitor, staff: str, role: str = "helpdesk", *, mfa: bool = True, orgs: str = "") -> str:
    """Sign ``visitor`` in as staff; the handle its cookie now holds."""
    query = f"staff={staff}&role={role}&mfa={int(mfa)}" + "".join(f"&org={org}" for org in orgs.split())
    assert visitor.get(f"/staff/probe/start?{query}").status_code == 200
    handle = staff_handle(visitor)
    assert handle is not None
    return handle


def staff_handle(visitor: Visitor) -> str | None:
    cookie = visitor.client.get_cookie(STAFF_COOKIE, domain=COOKIE_DOMAIN, path="/staff")
    return cookie.value if cookie else None


def staff_key(handle: str) -> str:
    return "sspm:staff-session:" + hashlib.sha256(handle.encode()).hexdigest()


def rewrite(app: Flask, key: str, **fields: float) -> None:
    """Change a record's timestamps in Redis, as if time had passed."""
    store = app_redis(app)
    raw = store.get(key)
    assert raw is not None
    store.set(key, json.dumps({**json.loads(raw), **fields}), keepttl=True)


def turned_to(app: Flask, response: TestResponse, endpoint: str, came_for: str) -> bool:
    """Whether ``response`` sends the browser to ``endpoint``, to come back to ``came_for`` after."""
    if response.status_code not in (302, 303):
        return False
    with app.test_request_context():
        expected = url_for(endpoint, next=came_for)
    location = urlsplit(response.headers["Location"])
    return f"{location.path}?{location.query}" == expected


def actor_seen(visitor: Visitor, path: str) -> dict[str, object]:
    page = visitor.get(path)
    assert page.status_code == 200
    seen: dict[str, object] = page.get_json()
    return seen


def signed_in_user(app: Flask, person: SeedAccount) -> Visitor:
    visitor = Visitor(app)
    assert sign_in(visitor, person.uid, person.password).status_code == 303
    return visitor


# -- the realms stay apart ---------------------------------------------------------------------


def test_a_signed_in_user_is_nobody_on_staff_pages(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = signed_in_user(app, accounts["normal"])

    assert turned_to(app, john.get("/staff/probe/desk"), "staff.signin", "realm_probe.desk")
    assert turned_to(app, john.get("/staff/probe/admin"), "staff.signin", "realm_probe.admin")
    assert actor_seen(john, "/staff/probe/actor")["kind"] == "anonymous"
    assert is_signed_in(john), "the user's own session is untouched"
    assert actor_seen(john, "/probe/actor") == {
        "kind": "user",
        "id": account_id(app, accounts["normal"].uid),
        "role": None,
        "organizations": [],
    }


def test_a_staff_session_is_nobody_on_user_pages_even_with_its_cookie_sent_there(app: Flask) -> None:
    agent = Visitor(app)
    handle = open_staff(agent, "S-1", "admin")
    assert agent.get("/staff/probe/desk").status_code == 200

    assert not is_signed_in(agent), "/enroll sends a staff member to the user sign-in"
    # The browser sends the staff cookie only under /staff; sent everywhere, it still counts nowhere else.
    agent.client.set_cookie(STAFF_COOKIE, handle, domain=COOKIE_DOMAIN, path="/", secure=True, httponly=True)
    assert not is_signed_in(agent)
    assert actor_seen(agent, "/probe/actor")["kind"] == "anonymous"
    assert app_redis(app).exists(staff_key(handle)), "and the staff session lives on"


def test_one_browser_signed_in_both_ways_is_each_where_it_belongs(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    both = signed_in_user(app, accounts["normal"])
    open_staff(both, "S-7", "manager", orgs="north south")

    assert is_signed_in(both)
    assert both.get("/staff/probe/desk").status_code == 200
    assert actor_seen(both, "/staff/probe/actor") == {
        "kind": "staff",
        "id": "S-7",
        "role": "manager",
        "organizations": ["north", "south"],
    }
    assert actor_seen(both, "/probe/actor")["kind"] == "user"


def test_the_staff_cookie_is_strict_httponly_secure_and_for_staff_pages_only(app: Flask) -> None:
    agent = Visitor(app)
    started = agent.get("/staff/probe/start?staff=S-1&role=helpdesk&mfa=1")
    (cookie,) = [value for value in started.headers.getlist("Set-Cookie") if value.startswith(STAFF_COOKIE + "=")]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert attributes["path"] == "Path=/staff"
    assert attributes["samesite"] == "SameSite=Strict"
    assert {"httponly", "secure"} <= set(attributes)
    assert "expires" not in attributes and "max-age" not in attributes, "the server decides when it ends"


def test_staff_sign_out_ends_the_record_not_only_the_cookie(app: Flask) -> None:
    agent = Visitor(app)
    handle = open_staff(agent, "S-1")

    assert agent.get("/staff/probe/signout").status_code == 200

    assert not app_redis(app).exists(staff_key(handle))
    assert staff_handle(agent) is None, "the browser was told to forget it"
    agent.client.set_cookie(STAFF_COOKIE, handle, domain=COOKIE_DOMAIN, path="/staff", secure=True, httponly=True)
    assert turned_to(app, agent.get("/staff/probe/desk"), "staff.signin", "realm_probe.desk"), "a copy is worthless"


# -- the second factor, roles, recent authentication -------------------------------------------


def test_a_staff_member_without_the_second_factor_is_only_half_signed_in(app: Flask) -> None:
    agent = Visitor(app)
    half = open_staff(agent, "S-1", "admin", mfa=False)

    for page in ("desk", "admin", "sensitive"):
        assert turned_to(app, agent.get(f"/staff/probe/{page}"), "staff.signin", f"realm_probe.{page}"), page
    assert actor_seen(agent, "/staff/probe/actor")["kind"] == "anonymous", "no role to act with yet"

    full = open_staff(agent, "S-1", "admin", mfa=True)

    assert full != half, "passing the second factor moves the session to a new handle"
    assert not app_redis(app).exists(staff_key(half))
    assert agent.get("/staff/probe/desk").status_code == 200
    assert agent.get("/staff/probe/admin").status_code == 200


def test_roles_let_in_only_who_they_name(app: Flask) -> None:
    helpdesk, admin = Visitor(app), Visitor(app)
    open_staff(helpdesk, "S-1", "helpdesk")
    open_staff(admin, "S-2", "admin")

    assert helpdesk.get("/staff/probe/admin").status_code == 403
    assert helpdesk.get("/staff/probe/accounts").status_code == 200
    assert admin.get("/staff/probe/admin").status_code == 200
    assert admin.get("/staff/probe/accounts").status_code == 200


def test_a_sensitive_action_asks_for_the_password_again_once_it_is_not_recent(app: Flask) -> None:
    agent = Visitor(app)
    handle = open_staff(agent, "S-1", "admin")
    assert agent.get("/staff/probe/sensitive").status_code == 200, "signing in counts as giving it"
    window = app.config["SSPM_SETTINGS"].staff_reauth_minutes * 60
    started = json.loads(app_redis(app).get(staff_key(handle)) or "{}")["started"]

    rewrite(app, staff_key(handle), reauthenticated_at=time.time() - window - 1)

    assert turned_to(app, agent.get("/staff/probe/sensitive"), "staff.reauthenticate", "realm_probe.sensitive")
    assert agent.get("/staff/probe/desk").status_code == 200, "the rest of the session goes on"

    assert agent.get("/staff/probe/reauthenticated").get_data(as_text=True) == "renewed"

    renewed = staff_handle(agent)
    assert renewed is not None and renewed != handle, "re-authenticating moves the session to a new handle"
    assert not app_redis(app).exists(staff_key(handle))
    assert json.loads(app_redis(app).get(staff_key(renewed)) or "{}")["started"] == started, "same absolute end"
    assert agent.get("/staff/probe/sensitive").status_code == 200


def test_re_authenticating_needs_a_live_session(app: Flask) -> None:
    agent = Visitor(app)
    assert agent.get("/staff/probe/reauthenticated").get_data(as_text=True) == "no session"
    handle = open_staff(agent, "S-1")
    app_redis(app).delete(staff_key(handle))
    assert agent.get("/staff/probe/reauthenticated").get_data(as_text=True) == "no session"
    assert not app_redis(app).exists(staff_key(handle)), "nothing was brought back"


# -- ending staff sessions -----------------------------------------------------------------


def test_end_all_ends_every_session_of_a_staff_member_and_no_one_elses(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    desk_pc, laptop, colleague = Visitor(app), Visitor(app), Visitor(app)
    open_staff(desk_pc, "S-1")
    open_staff(laptop, "S-1")
    open_staff(colleague, "S-2")
    john = signed_in_user(app, accounts["normal"])
    state = services_of(app).state

    assert sessions.end_all(state, "S-1") == 0, "the user realm's lists are not the staff realm's"
    assert sessions.end_all(state, "S-1", Realm.STAFF) == 2

    assert turned_to(app, desk_pc.get("/staff/probe/desk"), "staff.signin", "realm_probe.desk")
    assert turned_to(app, laptop.get("/staff/probe/desk"), "staff.signin", "realm_probe.desk")
    assert colleague.get("/staff/probe/desk").status_code == 200
    assert is_signed_in(john)
    assert not list(app_redis(app).scan_iter("sspm:staff-session-of:S-1"))


def test_staff_sessions_have_their_own_idle_timeout(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probes(build_app(slapd, SSPM_STAFF_SESSION_IDLE_MINUTES="3", SSPM_SESSION_IDLE_MINUTES="20"))
    both = signed_in_user(app, accounts["normal"])
    handle = open_staff(both, "S-1")
    store = app_redis(app)
    store.expire(staff_key(handle), 5)

    assert both.get("/staff/probe/desk").status_code == 200

    assert 170 < store.ttl(staff_key(handle)) <= 180, "each staff request gives back the staff idle time"
    assert is_signed_in(both)
    assert 20 * 60 - 10 < store.ttl(session_key(both)) <= 20 * 60, "and the user's its own"


def test_a_staff_session_left_idle_ends_while_the_users_goes_on(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probes(build_app(slapd))
    both = signed_in_user(app, accounts["normal"])
    handle = open_staff(both, "S-1")
    # The idle time is the record's TTL: cut to a second, as if the agent had been away that long.
    app_redis(app).expire(staff_key(handle), 1)

    time.sleep(1.1)

    assert turned_to(app, both.get("/staff/probe/desk"), "staff.signin", "realm_probe.desk")
    assert not app_redis(app).exists(staff_key(handle))
    assert is_signed_in(both)


def test_a_staff_session_ends_after_its_absolute_time_however_busy(app: Flask) -> None:
    agent = Visitor(app)
    handle = open_staff(agent, "S-1")
    hours = app.config["SSPM_SETTINGS"].staff_session_max_hours
    rewrite(app, staff_key(handle), started=time.time() - hours * 3600 - 1)

    assert turned_to(app, agent.get("/staff/probe/desk"), "staff.signin", "realm_probe.desk")
    assert not app_redis(app).exists(staff_key(handle))
    assert not app_redis(app).exists("sspm:staff-session-of:S-1"), "nor is it left on the staff member's list"
