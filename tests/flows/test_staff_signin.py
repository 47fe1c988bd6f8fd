"""Who staff are: the console's sign-in, through its real pages, against the real slapd, Redis and store.

Staff are ordinary directory accounts granted a role (here by an operator,
as ``python -m sspm staff grant`` does). A person at the keyboard reads
the authenticator's secret off the enrollment page and computes codes
with pyotp, as their phone would. Every story ends by looking where the
truth is: the session records in Redis, the store, and what pages let in.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from connectors.directory import Account
from lab import SeedAccount, Slapd
from sspm.account import staff
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason
from sspm.web.auth import STAFF_COOKIE
from sspm.web.staff import safe_next
from tests.flows.test_realms import rewrite, staff_handle, staff_key
from tests.flows.test_signin_enroll import is_signed_in
from tests.support import services_of
from tests.support.flows import (
    COOKIE_DOMAIN,
    AppFactory,
    Visitor,
    app_redis,
    csrf_token,
    reason_in,
    says,
    sign_in,
)

OPERATOR = Actor.operator("test-operator")
ST_MARY = "st-mary"
_SECRET = re.compile(r'<code id="secret">([A-Z2-7 ]+)</code>')
_RECOVERY = re.compile(r"<code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code>")


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"the page should carry a hidden {name}"
    return found.group(1)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd)


def make_staff(app: Flask, person: SeedAccount, role: str = "helpdesk", organization: str | None = ST_MARY) -> Account:
    """Grant ``person`` a role, as an operator at the command line does."""
    the = services_of(app)
    account = the.directory.find_account(person.uid)
    assert account is not None
    assert staff.grant(the.store, OPERATOR, account=account, role=role, organization=organization).value == "granted"
    return account


def give_password(visitor: Visitor, login: str, password: str, path: str = "/staff/signin") -> TestResponse:
    return visitor.submit(path, {"username": login, "password": password})


def live(app: Flask, handle: str | None) -> bool:
    return handle is not None and bool(app_redis(app).exists(staff_key(handle)))


def enroll(visitor: Visitor) -> tuple[str, list[str], TestResponse]:
    """Read the secret off the enrollment page, confirm it with a current code: (secret, recovery codes, page)."""
    page = visitor.get("/staff/totp")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    found = _SECRET.search(html)
    assert found, "the secret is written out for whoever cannot scan"
    secret = found.group(1).replace(" ", "")
    shown = visitor.post(
        "/staff/totp",
        {"csrf_token": csrf_token(html), "pending": _hidden(html, "pending"), "code": pyotp.TOTP(secret).now()},
    )
    return secret, _RECOVERY.findall(shown.get_data(as_text=True)), shown


def fresh_code(secret: str) -> str:
    """A code the server has not seen: the next time step (accepted, and after any step already spent)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def wrong_code(secret: str) -> str:
    """Six digits that are none of the codes the server accepts now."""
    totp, now = pyotp.TOTP(secret), time.time()
    accepted = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in accepted)


def give_code(visitor: Visitor, code: str) -> TestResponse:
    return visitor.submit("/staff/signin/code", {"code": code})


def sign_out(visitor: Visitor) -> TestResponse:
    page = visitor.get("/staff/")
    return visitor.post("/staff/signout", {"csrf_token": csrf_token(page.get_data(as_text=True))})


def enrolled(app: Flask, person: SeedAccount, role: str = "helpdesk") -> tuple[Visitor, str, list[str]]:
    """A staff member signed in for the first time (password, then enrollment): their browser, secret and codes."""
    make_staff(app, person, role)
    agent = Visitor(app)
    assert give_password(agent, person.uid, person.password).status_code == 303
    secret, codes, shown = enroll(agent)
    assert shown.status_code == 200 and len(codes) == 10
    return agent, secret, codes


# -- the way in ----------------------------------------------------------------------------------------------


def test_first_sign_in_enrolls_the_authenticator_shows_ten_codes_once_and_opens_the_console(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    make_staff(app, john)
    agent = Visitor(app)
    assert staff_handle(agent) is None

    after_password = give_password(agent, john.mail or "", john.password)
    assert after_password.status_code == 303 and after_password.headers["Location"].endswith("/staff/totp")
    half = staff_handle(agent)
    assert live(app, half)
    assert agent.get("/staff/").status_code == 303, "half signed in opens nothing"

    page = agent.get("/staff/totp")
    html = page.get_data(as_text=True)
    assert '<svg role="img" aria-label="QR code to scan with your authenticator app"' in html
    assert "otpauth://" not in html and "http://" not in html.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org/2000/svg", ""
    ), "the QR code is drawn here, from nothing fetched elsewhere"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")

    secret, codes, shown = enroll(agent)

    assert shown.status_code == 200 and len(set(codes)) == 10
    assert says(shown, "Store these codes now: they are shown only this once.")
    assert shown.headers["Cache-Control"] == "no-store"
    full = staff_handle(agent)
    assert full not in (None, half) and live(app, full) and not live(app, half), "a new handle once trusted"
    member = staff.staff_of(services_of(app).store, _id(app, john))
    assert member is not None and member.totp_confirmed
    assert staff.unused_recovery_codes(services_of(app).store, member) == 10

    home = agent.get("/staff/")
    assert home.status_code == 200
    assert 'href="/staff/helpdesk"' in home.get_data(as_text=True)
    assert 'href="/staff/roles"' not in home.get_data(as_text=True), "a helpdesk agent grants nothing"
    assert _RECOVERY.search(home.get_data(as_text=True)) is None, "the codes are never shown again"

    # The next time: the password, then a code from the app.
    assert sign_out(agent).status_code == 303
    again = give_password(agent, john.uid, john.password)
    assert again.headers["Location"].endswith("/staff/signin/code")
    second_half = staff_handle(agent)
    done = give_code(agent, fresh_code(secret))
    assert done.status_code == 303 and done.headers["Location"] == "/staff/"
    assert staff_handle(agent) not in (None, second_half) and not live(app, second_half)
    assert agent.get("/staff/").status_code == 200


def _id(app: Flask, person: SeedAccount) -> str:
    account = services_of(app).directory.find_account(person.uid)
    assert account is not None
    return account.id


def test_someone_who_is_not_staff_is_refused_exactly_like_a_wrong_password(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    make_staff(app, john)
    revoked = accounts["expiring"]
    account = make_staff(app, revoked)
    staff.revoke(services_of(app).store, OPERATOR, account=account, role="helpdesk", organization=ST_MARY)

    answers = {
        "wrong password of staff": give_password(Visitor(app), john.uid, "Not-" + john.password),
        "right password, not staff": give_password(Visitor(app), laura.uid, laura.password),
        "right password, grants revoked": give_password(Visitor(app), revoked.uid, revoked.password),
        "nobody by that name": give_password(Visitor(app), "nobody-here", "Whatever-1"),
    }

    expected = reason_in(app, Reason.BAD_CREDENTIALS)
    for what, answer in answers.items():
        assert answer.status_code == 422, what
        assert says(answer, expected), what
        assert STAFF_COOKIE not in answer.headers.get("Set-Cookie", ""), what
    bodies = {re.sub(r'(name="(?:csrf_token|username)"[^>]*value=")[^"]*', r"\1", a.get_data(as_text=True))
              for a in answers.values()}  # fmt: skip
    assert len(bodies) == 1, "nothing on the page tells who is staff"


def test_a_wrong_code_is_refused_on_its_field_and_too_many_lock_the_step(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="3 per hour")
    agent, secret, _codes = enrolled(app, accounts["normal"])
    sign_out(agent)
    john = accounts["normal"]
    give_password(agent, john.uid, john.password)
    half = staff_handle(agent)

    refused = give_code(agent, wrong_code(secret))
    assert refused.status_code == 422
    assert 'id="code-error"' in refused.get_data(as_text=True), "said where the next code is typed"
    assert says(refused, reason_in(app, Reason.STAFF_CODE_WRONG))
    assert staff_handle(agent) == half and agent.get("/staff/").status_code == 303, "still only half signed in"

    for _ in range(2):
        assert give_code(agent, wrong_code(secret)).status_code == 422
    assert give_code(agent, fresh_code(secret)).status_code == 429, "past the limit even a right code waits"
    assert agent.get("/staff/").status_code == 303


def test_a_code_is_accepted_once_even_from_another_browser(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    _first, secret, _codes = enrolled(app, john)
    desk, thief = Visitor(app), Visitor(app)
    give_password(desk, john.uid, john.password)
    give_password(thief, john.uid, john.password)
    code = fresh_code(secret)

    assert give_code(desk, code).status_code == 303
    assert give_code(thief, code).status_code == 422, "a code read over a shoulder is already spent"
    assert thief.get("/staff/").status_code == 303


def test_a_recovery_code_works_once(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    agent, _secret, codes = enrolled(app, john)
    sign_out(agent)

    give_password(agent, john.uid, john.password)
    assert give_code(agent, codes[0].upper().replace("-", " ")).status_code == 303, "typed any which way"
    assert agent.get("/staff/").status_code == 200
    sign_out(agent)

    give_password(agent, john.uid, john.password)
    assert give_code(agent, codes[0]).status_code == 422
    assert give_code(agent, codes[1]).status_code == 303
    member = staff.staff_of(services_of(app).store, _id(app, john))
    assert member is not None and staff.unused_recovery_codes(services_of(app).store, member) == 8


def test_a_planted_cookie_is_never_the_session(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    make_staff(app, john)
    agent = Visitor(app)
    planted = "planted-by-someone-else-0123456789abcdefghijklm"
    agent.client.set_cookie(STAFF_COOKIE, planted, domain=COOKIE_DOMAIN, path="/staff", secure=True, httponly=True)

    give_password(agent, john.uid, john.password)
    assert staff_handle(agent) not in (None, planted)
    enroll(agent)
    assert staff_handle(agent) != planted and not live(app, planted)


# -- after ---------------------------------------------------------------------------------------------------


def test_a_sensitive_action_asks_for_both_factors_again_then_comes_back(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    agent, secret, old_codes = enrolled(app, john)
    handle = staff_handle(agent)
    assert handle is not None
    window = app.config["SSPM_SETTINGS"].staff_reauth_minutes * 60
    rewrite(app, staff_key(handle), reauthenticated_at=time.time() - window - 1)
    token = csrf_token(agent.get("/staff/").get_data(as_text=True))

    sent = agent.post("/staff/recovery-codes", {"csrf_token": token})
    assert sent.status_code == 302 and "/staff/reauth?next=staff.new_codes" in sent.headers["Location"]

    page = agent.get("/staff/reauth?next=https://evil.example/")
    refused = agent.post(
        "/staff/reauth?next=https://evil.example/",
        {"csrf_token": csrf_token(page.get_data(as_text=True)), "password": "Wrong-" + john.password,
         "code": fresh_code(secret), "next": "https://evil.example/"},
    )  # fmt: skip
    assert refused.status_code == 422 and says(refused, reason_in(app, Reason.STAFF_REAUTH_REFUSED))
    assert staff_handle(agent) == handle

    back = agent.post(
        "/staff/reauth",
        {"csrf_token": csrf_token(page.get_data(as_text=True)), "password": john.password,
         "code": fresh_code(secret), "next": "//evil.example/"},
    )  # fmt: skip
    assert back.status_code == 303 and back.headers["Location"] == "/staff/", "never to another site"
    renewed = staff_handle(agent)
    assert renewed not in (None, handle) and not live(app, handle)

    made = agent.post("/staff/recovery-codes", {"csrf_token": token})
    assert made.status_code == 200 and len(set(_RECOVERY.findall(made.get_data(as_text=True)))) == 10
    sign_out(agent)
    give_password(agent, john.uid, john.password)
    assert give_code(agent, old_codes[2]).status_code == 422, "new codes void the old ones"


def test_where_staff_may_be_sent_back_to_is_a_console_page_of_this_site(app: Flask) -> None:
    with app.test_request_context("/staff/"):
        assert safe_next("staff.home") == "/staff/"
        assert safe_next("/staff/reauth?next=x") == "/staff/reauth?next=x"
        for elsewhere in (
            "https://evil.example/staff/",
            "//evil.example/staff/",
            "/\\evil.example",
            "/staff/\\..\\x",
            "/enroll",
            "/staff/nowhere",
            "staff.signout",  # POST only
            "javascript:alert(1)",
            "/staff/%0d%0aSet-Cookie:x",
            "enroll.index",
        ):
            assert safe_next(elsewhere) == "/staff/", elsewhere


def test_sign_out_ends_the_session_on_the_server_so_a_copied_cookie_is_dead(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    agent, _secret, _codes = enrolled(app, accounts["normal"])
    copied = staff_handle(agent)
    assert copied is not None

    out = sign_out(agent)

    assert out.status_code == 303 and out.headers["Location"].endswith("/staff/signin?out=1")
    assert not live(app, copied) and staff_handle(agent) is None
    assert says(agent.follow(out), "You are signed out of the staff console.")
    agent.client.set_cookie(STAFF_COOKIE, copied, domain=COOKIE_DOMAIN, path="/staff", secure=True, httponly=True)
    assert agent.get("/staff/").status_code == 303


def test_revoking_every_grant_ends_an_open_session_at_its_next_request(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    agent, _secret, _codes = enrolled(app, john, role="admin")
    assert 'href="/staff/roles"' in agent.get("/staff/").get_data(as_text=True)
    handle = staff_handle(agent)
    account = services_of(app).directory.find_account(john.uid)
    assert account is not None

    staff.revoke(services_of(app).store, OPERATOR, account=account, role="admin", organization=ST_MARY)

    turned = agent.get("/staff/")
    assert turned.status_code == 303 and "/staff/signin" in turned.headers["Location"]
    assert not live(app, handle), "ended on the server, not only refused"


def test_every_form_refuses_a_post_without_its_token(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    agent, secret, _codes = enrolled(app, john)
    handle = staff_handle(agent)
    half = Visitor(app)
    give_password(half, john.uid, john.password)

    for who, path, data in (
        (Visitor(app), "/staff/signin", {"username": john.uid, "password": john.password}),
        (half, "/staff/signin/code", {"code": fresh_code(secret)}),
        (half, "/staff/totp", {"code": fresh_code(secret)}),
        (agent, "/staff/reauth", {"password": john.password, "code": fresh_code(secret)}),
        (agent, "/staff/recovery-codes", {}),
        (agent, "/staff/signout", {}),
    ):
        answer = who.post(path, data)
        assert answer.status_code == 400, path
        assert says(answer, "This page has expired"), path
    assert live(app, handle) and agent.get("/staff/").status_code == 200, "nothing happened"
    assert half.get("/staff/").status_code == 303


def test_a_users_session_never_counts_in_the_console(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    make_staff(app, john, role="super-admin", organization=None)
    user = Visitor(app)
    assert sign_in(user, john.uid, john.password).status_code == 303
    assert is_signed_in(user)

    for path in ("/staff/", "/staff/totp", "/staff/signin/code", "/staff/reauth"):
        answer = user.get(path)
        assert answer.status_code == 303 and "/staff/signin" in answer.headers["Location"], path
    assert user.get("/staff/signin").status_code == 200, "the staff sign-in form, not a way round it"
    assert staff_handle(user) is None


def test_the_navigation_shows_what_the_grants_in_the_store_open(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    agent, _secret, _codes = enrolled(app, accounts["normal"], role="helpdesk")
    nav = agent.get("/staff/").get_data(as_text=True).split('<nav class="staff-nav"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/staff/helpdesk"' in nav and 'href="/staff/audit"' in nav, "an agent reads the audit of own work"
    assert 'href="/staff/roles"' not in nav

    account = services_of(app).directory.find_account(accounts["normal"].uid)
    assert account is not None
    staff.grant(services_of(app).store, OPERATOR, account=account, role="admin", organization="north-clinic")
    nav = agent.get("/staff/").get_data(as_text=True).split('<nav class="staff-nav"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/staff/roles"' in nav, "read from the store at this request, not from the session"
