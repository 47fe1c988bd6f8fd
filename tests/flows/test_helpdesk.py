"""The helpdesk, as agents use it, through the app against a real slapd (and Samba for unlock and reset).

Agents are made staff as an operator does (``staff.grant``) and signed in
through a test-only page that opens a staff session the way the staff
sign-in does after the second factor (``start_staff_session``; the sign-in
itself is tested in test_staff_signin.py). Everything else is the real
app: the directory, Redis, the database, the worker sending email to the
lab's mailbox. Each story ends by looking where the truth is: the
directory, the audit trail, the mailbox, Redis.

The lab's organizations: st-mary (jsmith, tnguyen, klee, achen) and
north-clinic (lsmith, mdubois, rpatel, éloïse).
"""

from __future__ import annotations

import re
import signal
import time
from email.message import EmailMessage

import pytest
from flask import Blueprint, Flask, request
from rq import SimpleWorker
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors.directory import Account, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.samba import SambaDC
from lab.seed import NORTH_CLINIC, ST_MARY
from sspm.account import attempts, sends, staff
from sspm.email.jobs import QUEUE
from sspm.helpdesk import service
from sspm.infra.store import AccountPreference, AuditEvent, Enrollment
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason
from sspm.web.auth import start_staff_session
from sspm.web.context import services
from tests.flows.test_realms import rewrite, staff_handle, staff_key
from tests.support import Backing, services_of
from tests.support.flows import (
    AppFactory,
    Visitor,
    account_id,
    app_redis,
    asked,
    csrf_token,
    reason_in,
    recover,
    says,
    seed_enrolled,
    text_in,
    verdict,
)

OPERATOR = Actor.operator("test-operator")
_CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)
_TEMPORARY = re.compile(r'<code id="temporary">([^<]+)</code>')
_ACTION_TOKEN = r'[^>]*>\s*<input[^>]*csrf_token[^>]*>\s*<input[^>]*name="action" value="([^"]+)"'
#: What the account page says after each action.
UNLOCKED = (
    "The directory lifted the lock. The password was not changed: the caller can sign in with it now. "
    "They were told by email."
)
LINK_SENT = (
    "A link to choose a new password was emailed to the account’s address. The directory changed nothing yet: "
    "the password stays as it is until the caller uses the link."
)
NO_HELPDESK = "Your roles do not include the helpdesk. If you need it, ask whoever granted you your role."

# -- a staff session without the sign-in pages -----------------------------------------------------

probe = Blueprint("helpdesk_test_probe", __name__, url_prefix="/staff/test-helpdesk")


@probe.get("/start")
def start() -> str:
    """What the staff sign-in does once both factors are given (the helpdesk decides on the store's grants)."""
    args = request.args
    start_staff_session(services().state, args["staff"], args["role"], args.getlist("org"), mfa_passed=True)
    return "started"


def with_probe(app: Flask) -> Flask:
    app.register_blueprint(probe)
    return app


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probe(build_app(slapd))


def make_staff(app: Flask, person: SeedAccount, role: str, organization: str | None = ST_MARY) -> Account:
    the = services_of(app)
    account = the.directory.find_account(person.uid)
    assert account is not None
    assert staff.grant(the.store, OPERATOR, account=account, role=role, organization=organization).value == "granted"
    return account


def agent(app: Flask, person: SeedAccount, role: str = "helpdesk", organization: str | None = ST_MARY) -> Visitor:
    """``person`` made staff in ``role`` and signed in to the console in a browser of their own."""
    account = make_staff(app, person, role, organization)
    browser = Visitor(app)
    query = f"staff={account.id}&role={role}" + (f"&org={organization}" if organization else "")
    assert browser.get(f"/staff/test-helpdesk/start?{query}").status_code == 200
    return browser


# -- reading pages, the mailbox and the worker's turn ------------------------------------------------


def account_page(visitor: Visitor, person_id: str) -> TestResponse:
    return visitor.get(f"/staff/helpdesk/account/{person_id}")


def post(visitor: Visitor, path: str, fields: dict[str, str] | None = None) -> TestResponse:
    """Send one of the account page's forms, with the page's CSRF token."""
    page = visitor.get("/staff/helpdesk")
    return visitor.post(path, {"csrf_token": csrf_token(page.get_data(as_text=True)), **(fields or {})})


def token_for(page: TestResponse, action: str) -> str:
    """The single-use token of one action's form on an account page."""
    html = page.get_data(as_text=True)
    found = re.search(rf'action="[^"]*/{action}"' + _ACTION_TOKEN, html)
    assert found, f"the page should offer {action}"
    return found.group(1)


def act(visitor: Visitor, person_id: str, action: str, token: str | None = None) -> TestResponse:
    """Press an action's button on the account page (or replay it with ``token``)."""
    if token is None:
        token = token_for(account_page(visitor, person_id), action)
    return post(visitor, f"/staff/helpdesk/account/{person_id}/{action}", {"action": token})


def run_jobs(app: Flask) -> None:
    """What ``python worker.py`` does, in this process, until the email queue is empty."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with app.app_context():
            SimpleWorker([QUEUE], connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def mails_to(backing: Backing, address: str | None) -> list[EmailMessage]:
    return [m for m in backing.mailbox.messages if m["To"] == address]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def emailed_code(app: Flask, backing: Backing, person: SeedAccount) -> str:
    """The worker sends the code; the caller reads it from their mailbox."""
    run_jobs(app)
    sent = [m for m in mails_to(backing, person.mail) if _CODE.search(text_of(m))]
    assert sent, "the caller should have been emailed a code"
    found = _CODE.search(text_of(sent[-1]))
    assert found
    return found.group(1)


def verify_by_email(app: Flask, backing: Backing, visitor: Visitor, person: SeedAccount) -> None:
    person_id = account_id(app, person.uid)
    assert post(visitor, f"/staff/helpdesk/account/{person_id}/code/send").status_code == 303
    waiting = account_page(visitor, person_id)
    assert waiting.status_code == 200 and 'name="code"' in waiting.get_data(as_text=True), "a box for the code"
    code = emailed_code(app, backing, person)
    checked = post(visitor, f"/staff/helpdesk/account/{person_id}/code", {"code": code})
    assert checked.status_code == 303, checked.get_data(as_text=True)


def verify_by_questions(
    app: Flask, visitor: Visitor, person: SeedAccount, answers: dict[str, str] = DEMO_ANSWERS
) -> TestResponse:
    person_id = account_id(app, person.uid)
    assert post(visitor, f"/staff/helpdesk/account/{person_id}/questions/ask").status_code == 303
    page = account_page(visitor, person_id)
    fields = {f"answer_{i}": answers.get(q, "Not-The-Answer") for i, q in enumerate(asked(app, page))}
    assert len(fields) == 2, "two of the caller's questions are asked"
    return post(visitor, f"/staff/helpdesk/account/{person_id}/questions", fields)


def rows(app: Flask, action: str) -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def shows_insight(page: TestResponse, app: Flask) -> bool:
    return says(page, text_in(app, "Lockout and password"))


# -- the stories --------------------------------------------------------------------------------------------


def test_a_helpdesk_agent_finds_a_locked_user_verifies_by_an_emailed_code_and_unlocks(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    kevin, alice = accounts["locked"], accounts["expiring"]
    desk = agent(app, alice)
    found = desk.get("/staff/helpdesk?q=kev")
    assert found.status_code == 200
    kevin_id = account_id(app, kevin.uid)
    assert f"/staff/helpdesk/account/{kevin_id}" in found.get_data(as_text=True)

    before = account_page(desk, kevin_id)
    assert before.status_code == 200
    assert says(before, kevin.display_name) and says(before, kevin.uid) and says(before, ST_MARY)
    assert not shows_insight(before, app), "nothing about the lockout before the caller is verified"
    assert "/unlock" not in before.get_data(as_text=True)

    verify_by_email(app, backing, desk, kevin)
    verified = account_page(desk, kevin_id)
    assert shows_insight(verified, app)
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.LOCKED

    done = act(desk, kevin_id, "unlock")
    assert done.status_code == 200
    assert says(done, text_in(app, UNLOCKED))
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.OK, "the password was untouched"

    run_jobs(app)
    subjects = [m["Subject"] for m in mails_to(backing, kevin.mail)]
    assert subjects == ["Your code for the helpdesk", "Your account was unlocked"]
    (unlocked,) = [r for r in rows(app, "helpdesk_unlock") if r.outcome == "ok"]
    assert unlocked.actor_kind == "staff" and unlocked.actor_id == account_id(app, alice.uid)
    assert unlocked.account_id == kevin_id and unlocked.details == {"method": "email-code"}
    verify_rows = [(r.outcome, r.details["method"]) for r in rows(app, "helpdesk_verify")]
    assert verify_rows == [("code_sent", "email-code"), ("verified", "email-code")]
    views = [r.details["insight"] for r in rows(app, "helpdesk_view") if r.account_id == kevin_id]
    assert views[0] is False and True in views, "viewing is audited, and what it showed"


def test_an_admin_verifies_by_security_questions_and_reads_a_temporary_password_once(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    thanh, john = accounts["temporary"], accounts["normal"]
    seed_enrolled(app, thanh)
    desk = agent(app, john, "admin")
    thanh_id = account_id(app, thanh.uid)

    asking = post(desk, f"/staff/helpdesk/account/{thanh_id}/questions/ask")
    assert asking.status_code == 303
    page = account_page(desk, thanh_id)
    html = page.get_data(as_text=True)
    assert len(asked(app, page)) == 2
    assert not any(answer in html for answer in DEMO_ANSWERS.values()), "the agent never sees a stored answer"
    assert "$argon2" not in html
    assert verify_by_questions(app, desk, thanh).status_code == 303

    done = act(desk, thanh_id, "reset")
    assert done.status_code == 200
    found = _TEMPORARY.search(done.get_data(as_text=True))
    assert found, "the temporary password is shown to the agent"
    temporary = found.group(1)
    directory = services_of(app).directory
    assert verdict(directory, thanh.uid, temporary) is Outcome.MUST_CHANGE, "usable only to choose a new one"
    assert verdict(directory, thanh.uid, thanh.password) is Outcome.BAD_CREDENTIALS
    again = account_page(desk, thanh_id)
    assert temporary not in again.get_data(as_text=True), "shown once, never again"
    assert temporary not in str(rows(app, "helpdesk_reset")[0].details)

    (reset_row,) = rows(app, "helpdesk_reset")
    assert (reset_row.outcome, reset_row.actor_role, reset_row.details) == (
        "ok",
        "admin",
        {"method": "questions", "mode": "temporary"},
    )
    run_jobs(app)
    assert [m["Subject"] for m in mails_to(backing, thanh.mail)] == ["Your password was reset"]


def test_a_super_admin_clears_the_security_questions_of_an_account_in_any_organization(
    build_app: AppFactory, slapd: Slapd, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probe(build_app(slapd))
    laura, john = accounts["other"], accounts["normal"]
    seed_enrolled(app, laura)
    desk = agent(app, john, "super-admin", None)
    laura_id = account_id(app, laura.uid)
    with services_of(app).store.session() as session:
        session.add(AccountPreference(account_id=laura_id, language="fr"))  # her last email was in French
    assert verify_by_questions(app, desk, laura).status_code == 303

    done = act(desk, laura_id, "clear-enrollment")
    assert done.status_code == 200
    with services_of(app).store.session() as session:
        assert session.get(Enrollment, laura_id) is None
    run_jobs(app)
    (told,) = mails_to(backing, laura.mail)
    subject = "Your security questions were cleared"
    assert told["Subject"] == text_in(app, subject, "fr") != subject, "in the owner's language, not the agent's"
    (cleared,) = rows(app, "helpdesk_clear_enrollment")
    assert (cleared.outcome, cleared.details) == ("cleared", {"method": "questions", "questions": 3})


def test_an_assigning_manager_has_no_helpdesk(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    desk = agent(app, accounts["normal"], "assigning-manager")
    kevin_id = account_id(app, accounts["locked"].uid)
    for path in ("/staff/helpdesk", "/staff/helpdesk?q=k", f"/staff/helpdesk/account/{kevin_id}"):
        refused = desk.get(path)
        assert refused.status_code == 403
        assert says(refused, text_in(app, NO_HELPDESK))
    assert post(desk, f"/staff/helpdesk/account/{kevin_id}/code/send").status_code == 403


# -- the edges of the permission table -----------------------------------------------------------------


def _body(page: TestResponse) -> str:
    """A page without what changes from one request to the next (the CSRF token)."""
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", page.get_data(as_text=True))


def test_what_an_agent_may_not_help_with_looks_exactly_like_what_does_not_exist(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    alice = accounts["expiring"]
    make_staff(app, accounts["normal"], "admin")  # jsmith: an Admin of the agent's own organization
    desk = agent(app, alice)
    nobody = desk.get("/staff/helpdesk/account/00000000-0000-0000-0000-000000000000")
    assert nobody.status_code == 404
    assert says(nobody, reason_in(app, Reason.NO_SUCH_ACCOUNT))
    targets = {
        "an Admin's account": accounts["normal"].uid,
        "another organization's account": accounts["other"].uid,
        "their own account": alice.uid,
    }
    ids = {what: account_id(app, login) for what, login in targets.items()}
    ids |= {"filter syntax": "*)(objectClass=*", "an overlong id": "a" * 300}
    for what, target in ids.items():
        for page in (
            desk.get(f"/staff/helpdesk/account/{target}"),
            post(desk, f"/staff/helpdesk/account/{target}/code/send"),
            post(desk, f"/staff/helpdesk/account/{target}/questions/ask"),
            post(desk, f"/staff/helpdesk/account/{target}/code", {"code": "123456"}),
            post(desk, f"/staff/helpdesk/account/{target}/unlock", {"action": "x"}),
        ):
            assert (page.status_code, _body(page)) == (404, _body(nobody)), what
    run_jobs(app)
    assert backing.mailbox.messages == [], "no code went to anyone"
    refused = [r for r in rows(app, "helpdesk_view") + rows(app, "helpdesk_verify") if r.outcome == "refused"]
    assert refused and all(r.account_id is None and r.subject.startswith("unknown:") for r in refused), (
        "the trail (which the agent's audit view shows) names no account they may not see"
    )

    # An Admin outranks a Helpdesk agent, not another Admin.
    boss = agent(app, accounts["nonascii"], "admin", NORTH_CLINIC)
    make_staff(app, accounts["other"], "admin", NORTH_CLINIC)
    assert account_page(boss, account_id(app, accounts["other"].uid)).status_code == 404
    assert account_page(boss, account_id(app, accounts["expired"].uid)).status_code == 200


def test_a_search_never_shows_counts_or_pages_accounts_outside_reach(
    app: Flask, accounts: dict[str, SeedAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PAGE_SIZE", 1)
    st_mary = agent(app, accounts["expiring"])
    north = agent(app, accounts["nonascii"], "helpdesk", NORTH_CLINIC)
    everyone = agent(app, accounts["expired"], "super-admin", None)
    john, laura = account_id(app, accounts["normal"].uid), account_id(app, accounts["other"].uid)

    def listed(visitor: Visitor, query: str) -> tuple[list[str], str | None]:
        html = visitor.get(f"/staff/helpdesk?{query}").get_data(as_text=True)
        shown = re.findall(r'href="/staff/helpdesk/account/([^"]+)"', html)
        more = re.search(r'href="/staff/helpdesk\?page=([^"]+)"', html)
        return shown, more.group(1) if more else None

    # "smi" matches jsmith (st-mary) and lsmith (north-clinic), one page each at most.
    assert listed(st_mary, "q=smi") == ([john], None), "no next page for what the agent may not see"
    assert listed(north, "q=smi") == ([laura], None)
    first, more = listed(everyone, "q=smi")
    assert first == [john] and more is not None
    assert listed(everyone, f"page={more}") == ([laura], None)
    assert listed(st_mary, f"page={more}") == ([], None), "another agent's next page shows them nothing"

    assert _results(st_mary.get("/staff/helpdesk?q=lsmith")) == _results(st_mary.get("/staff/helpdesk?q=zz-nobody"))
    for hostile in ("*", "*)(uid=*", "l*", "\\2a"):
        assert listed(st_mary, f"q={hostile}") == ([], None), hostile
    searched = rows(app, "helpdesk_search")
    assert searched and all(r.account_id is None for r in searched)


def _results(page: TestResponse) -> str:
    html = page.get_data(as_text=True)
    return html[html.index('id="results-title"') :]


# -- verification: one agent, one account, a few minutes, checked on every action --------------------------


def test_a_verification_is_one_agents_for_one_account_and_ends(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    kevin, thanh = accounts["locked"], accounts["temporary"]
    kevin_id, thanh_id = account_id(app, kevin.uid), account_id(app, thanh.uid)
    first = agent(app, accounts["expiring"])
    second = agent(app, accounts["normal"])
    verify_by_email(app, backing, first, kevin)
    kevin_unlock = token_for(account_page(first, kevin_id), "unlock")

    # Another agent: not verified, whatever the first one did; nor with the first one's button.
    assert not shows_insight(account_page(second, kevin_id), app)
    replayed = act(second, kevin_id, "unlock", kevin_unlock)
    assert replayed.status_code == 422 and says(replayed, reason_in(app, Reason.NOT_VERIFIED))
    # Another account, by its id in the URL: the first agent's verification of Kevin does not carry over.
    assert not shows_insight(account_page(first, thanh_id), app)
    crossed = act(first, thanh_id, "unlock", kevin_unlock)
    assert crossed.status_code == 422 and says(crossed, reason_in(app, Reason.NOT_VERIFIED))
    # A code sent for one agent (or one account) verifies nothing for another.
    assert post(first, f"/staff/helpdesk/account/{thanh_id}/code/send").status_code == 303
    code = emailed_code(app, backing, thanh)
    assert post(second, f"/staff/helpdesk/account/{thanh_id}/code", {"code": code}).status_code == 422
    assert post(first, f"/staff/helpdesk/account/{kevin_id}/code", {"code": code}).status_code == 422
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.LOCKED

    # Minutes later, the same agent's verification is gone: re-checked on the server at the action.
    key = f"sspm:helpdesk-verified:{account_id(app, accounts['expiring'].uid)}:{kevin_id}"
    rewrite(app, key, until=time.time() - 1)
    late = act(first, kevin_id, "unlock", kevin_unlock)
    assert late.status_code == 422 and says(late, reason_in(app, Reason.NOT_VERIFIED))
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.LOCKED
    assert app_redis(app).ttl(key) <= app.config["SSPM_SETTINGS"].helpdesk_verify_minutes * 60
    outcomes = [r.outcome for r in rows(app, "helpdesk_unlock")]
    assert outcomes == ["not_verified", "not_verified", "not_verified"]


def test_wrong_codes_and_answers_count_toward_the_accounts_recovery_limit(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    kevin = accounts["locked"]
    seed_enrolled(app, kevin)
    kevin_id = account_id(app, kevin.uid)
    desk = agent(app, accounts["expiring"])
    limit = app.config["SSPM_SETTINGS"].recovery_max_failures
    assert limit == 3
    for _ in range(2):
        assert post(desk, f"/staff/helpdesk/account/{kevin_id}/code/send").status_code == 303
        right = emailed_code(app, backing, kevin)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        refused = post(desk, f"/staff/helpdesk/account/{kevin_id}/code", {"code": wrong})
        assert refused.status_code == 422 and says(refused, reason_in(app, Reason.CODE_REFUSED))
        # The code is spent by the wrong try: the right one no longer works either.
        assert post(desk, f"/staff/helpdesk/account/{kevin_id}/code", {"code": right}).status_code == 422
    assert verify_by_questions(app, desk, kevin, {}).status_code == 422
    state = services_of(app).state
    assert attempts.paused(state, attempts.account_key(kevin_id), limit)

    # The same counter as the questions page: the owner's right answers are refused there now...
    online = recover(Visitor(app), "unlock", kevin.uid, DEMO_ANSWERS)
    assert says(online, reason_in(app, Reason.ANSWERS_REFUSED))
    # ...and the helpdesk says why it will not verify, by either way.
    for path in ("questions/ask", "code/send"):
        paused = post(desk, f"/staff/helpdesk/account/{kevin_id}/{path}")
        assert paused.status_code == 422 and says(paused, reason_in(app, Reason.VERIFICATION_PAUSED)), path
    assert not shows_insight(account_page(desk, kevin_id), app)


def test_agents_together_cannot_flood_a_callers_mailbox_with_codes(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    kevin = accounts["locked"]
    kevin_id = account_id(app, kevin.uid)
    first, second = agent(app, accounts["expiring"]), agent(app, accounts["normal"])
    for desk in (first, second, first, second, first):
        assert post(desk, f"/staff/helpdesk/account/{kevin_id}/code/send").status_code == 303
        run_jobs(app)  # each code emailed before the next is asked for (a newer one voids an unsent older one)
    # The sixth code of the hour, whichever agent asks, is refused and said to that agent only.
    refused = post(second, f"/staff/helpdesk/account/{kevin_id}/code/send")
    assert refused.status_code == 422 and says(refused, reason_in(app, Reason.RATE_LIMITED))
    run_jobs(app)
    assert len(mails_to(backing, kevin.mail)) == sends.SENDS_PER_HOUR == 5
    outcomes = [r.outcome for r in rows(app, "helpdesk_verify")]
    assert outcomes == ["code_sent"] * 5 + ["rate_limited"]


# -- acting once, with a fresh password and a recent second factor -------------------------------------------


def test_a_double_click_or_a_replayed_post_does_nothing_twice(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    thanh = accounts["temporary"]
    seed_enrolled(app, thanh)
    thanh_id = account_id(app, thanh.uid)
    desk = agent(app, accounts["expiring"])
    assert verify_by_questions(app, desk, thanh).status_code == 303
    page = account_page(desk, thanh_id)
    tokens = {name: token_for(page, name) for name in ("unlock", "reset", "clear-enrollment")}

    first = act(desk, thanh_id, "reset", tokens["reset"])
    found = _TEMPORARY.search(first.get_data(as_text=True))
    assert found
    second = act(desk, thanh_id, "reset", tokens["reset"])
    assert second.status_code == 422 and says(second, reason_in(app, Reason.ALREADY_DONE))
    assert _TEMPORARY.search(second.get_data(as_text=True)) is None
    assert verdict(services_of(app).directory, thanh.uid, found.group(1)) is Outcome.MUST_CHANGE, "reset once"

    assert act(desk, thanh_id, "clear-enrollment", tokens["clear-enrollment"]).status_code == 200
    assert act(desk, thanh_id, "clear-enrollment", tokens["clear-enrollment"]).status_code == 422
    assert act(desk, thanh_id, "unlock", tokens["unlock"]).status_code == 200
    assert act(desk, thanh_id, "unlock", tokens["unlock"]).status_code == 422
    assert [r.outcome for r in rows(app, "helpdesk_reset")] == ["ok", "already_done"]
    assert [r.outcome for r in rows(app, "helpdesk_clear_enrollment")] == ["cleared", "already_done"]
    assert [r.outcome for r in rows(app, "helpdesk_unlock")] == ["not_locked", "already_done"]
    run_jobs(app)
    subjects = sorted(m["Subject"] for m in mails_to(backing, thanh.mail))
    assert subjects == ["Your password was reset", "Your security questions were cleared"], "told once each"


def test_every_form_needs_its_csrf_token(app: Flask, backing: Backing, accounts: dict[str, SeedAccount]) -> None:
    kevin = accounts["locked"]
    seed_enrolled(app, kevin)
    kevin_id = account_id(app, kevin.uid)
    desk = agent(app, accounts["expiring"])
    assert verify_by_questions(app, desk, kevin).status_code == 303
    page = account_page(desk, kevin_id)
    base = f"/staff/helpdesk/account/{kevin_id}"
    forms = {
        "code/send": {},
        "code": {"code": "123456"},
        "questions/ask": {},
        "questions": {"answer_0": "a", "answer_1": "b"},
        **{name: {"action": token_for(page, name)} for name in ("unlock", "reset", "clear-enrollment")},
    }
    for path, fields in forms.items():
        assert desk.post(f"{base}/{path}", fields).status_code == 400, path
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.LOCKED
    run_jobs(app)
    assert backing.mailbox.messages == []
    assert rows(app, "helpdesk_unlock") == rows(app, "helpdesk_reset") == []


def test_reset_and_clearing_questions_ask_for_the_agents_password_again_after_a_while(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    thanh = accounts["temporary"]
    seed_enrolled(app, thanh)
    thanh_id = account_id(app, thanh.uid)
    desk = agent(app, accounts["expiring"])
    assert verify_by_questions(app, desk, thanh).status_code == 303
    page = account_page(desk, thanh_id)
    handle = staff_handle(desk)
    assert handle is not None
    window = app.config["SSPM_SETTINGS"].staff_reauth_minutes * 60
    rewrite(app, staff_key(handle), reauthenticated_at=time.time() - window - 1)
    for name in ("reset", "clear-enrollment"):
        sent = act(desk, thanh_id, name, token_for(page, name))
        assert sent.status_code == 302 and "/staff/reauth" in sent.headers["Location"], name
    assert verdict(services_of(app).directory, thanh.uid, thanh.password) is Outcome.MUST_CHANGE, "untouched"
    assert act(desk, thanh_id, "unlock", token_for(page, "unlock")).status_code == 200, "unlocking needs no more"


def test_a_revoked_agent_is_stopped_at_the_next_request(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    kevin, alice = accounts["locked"], accounts["expiring"]
    kevin_id = account_id(app, kevin.uid)
    desk = agent(app, alice)
    verify_by_email(app, backing, desk, kevin)
    page = account_page(desk, kevin_id)
    token, form_token = token_for(page, "unlock"), csrf_token(page.get_data(as_text=True))
    the = services_of(app)
    alice_account = the.directory.find_account(alice.uid)
    assert alice_account is not None
    staff.revoke(the.store, OPERATOR, account=alice_account, role="helpdesk", organization=ST_MARY)
    stopped = desk.post(f"/staff/helpdesk/account/{kevin_id}/unlock", {"csrf_token": form_token, "action": token})
    assert stopped.status_code == 303 and "/staff/signin" in stopped.headers["Location"]
    assert verdict(the.directory, kevin.uid, kevin.password) is Outcome.LOCKED


# -- as configured ---------------------------------------------------------------------------------------------


def test_without_verification_the_agent_sees_and_acts_at_once_and_the_trail_says_so(
    build_app: AppFactory, slapd: Slapd, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probe(build_app(slapd, SSPM_HELPDESK_VERIFICATION="off", SSPM_HELPDESK_RESET="link"))
    kevin = accounts["locked"]
    kevin_id = account_id(app, kevin.uid)
    desk = agent(app, accounts["expiring"])
    page = account_page(desk, kevin_id)
    assert shows_insight(page, app)
    assert not says(page, text_in(app, "Verify the caller"))
    done = act(desk, kevin_id, "reset")
    assert says(done, text_in(app, LINK_SENT))
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.LOCKED, "nothing changed yet"
    run_jobs(app)
    assert [m["Subject"] for m in mails_to(backing, kevin.mail)] == ["Your password reset link"]
    (row,) = rows(app, "helpdesk_reset")
    assert (row.outcome, row.details) == ("link_sent", {"method": "off", "mode": "link"})


def test_optional_verification_lets_the_agent_act_and_records_that_nobody_was_verified(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probe(build_app(slapd, SSPM_HELPDESK_VERIFICATION="optional"))
    kevin = accounts["locked"]
    kevin_id = account_id(app, kevin.uid)
    desk = agent(app, accounts["expiring"])
    page = account_page(desk, kevin_id)
    assert shows_insight(page, app) and says(page, text_in(app, "Verify the caller"))
    assert act(desk, kevin_id, "unlock").status_code == 200
    assert verdict(services_of(app).directory, kevin.uid, kevin.password) is Outcome.OK
    (row,) = [r for r in rows(app, "helpdesk_unlock") if r.outcome == "ok"]
    assert row.details == {"method": "none"}


# -- Active Directory -------------------------------------------------------------------------------------------


def test_on_active_directory_an_agent_unlocks_and_resets(
    build_app: AppFactory, samba_dc: SambaDC, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probe(build_app(samba_dc))
    kevin = accounts["locked"]
    seed_enrolled(app, kevin)
    kevin_id = account_id(app, kevin.uid)
    desk = agent(app, accounts["expiring"])
    assert verify_by_questions(app, desk, kevin).status_code == 303
    page = account_page(desk, kevin_id)
    assert shows_insight(page, app)
    assert says(page, text_in(app, "Yes, since %(time)s").split("%")[0])
    directory = services_of(app).directory
    assert verdict(directory, kevin.uid, kevin.password) is Outcome.LOCKED

    assert act(desk, kevin_id, "unlock").status_code == 200
    assert verdict(directory, kevin.uid, kevin.password) is Outcome.OK
    done = act(desk, kevin_id, "reset")
    found = _TEMPORARY.search(done.get_data(as_text=True))
    assert found
    assert verdict(directory, kevin.uid, found.group(1)) is Outcome.MUST_CHANGE
    assert [r.outcome for r in rows(app, "helpdesk_unlock") + rows(app, "helpdesk_reset")] == ["ok", "ok"]
