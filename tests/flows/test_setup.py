"""A new user's set-up link, through the app on a real slapd: the email, the link, the first password.

Staff have created the person's record: the directory account waits with no
usable password (``create_account(..., None)``) and ``issue_setup_link``
queued the email. The worker (SimpleWorker in this process, as ``python
worker.py`` runs it) sends it to aiosmtpd; the test reads it as the user
would and opens its link. What the directory, the store and the mailbox say
afterwards is checked, never only the page.
"""

from __future__ import annotations

import re
import signal
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors.directory import Account, Outcome, Person
from lab import SeedAccount, Slapd
from sspm.account import audit, tokens
from sspm.account.setup_links import SETUP_PURPOSE, issue_setup_link
from sspm.email.jobs import QUEUE, RESET_PURPOSE
from sspm.infra.store import AuditEvent, ResetToken
from tests.support import Backing, services_of
from tests.support.flows import (
    MIN_LENGTH,
    AppFactory,
    Visitor,
    csrf_token,
    reason_in,
    says,
    sign_in,
    text_in,
)

HELP_DESK = "the Service Desk (ext. 4357)"
SETUP_ENV = {"SSPM_LRA_CONTACT": HELP_DESK, "SSPM_EMAIL_RETRY_SECONDS": "0,0,0"}
LOGIN = "fnightingale"
NURSE = Person("Florence", "Nightingale", email="fnightingale@partners.example")
PASSWORD = "Lamp-Scutari-Ledger-1854"
WEAK = "password1"
LIFETIME = timedelta(days=3)
GONE = "This set-up link no longer works"
READY = "Your account is ready"
_LINK = re.compile(r"https://sspm\.partners\.example/setup\?token=[A-Za-z0-9_-]+")


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **SETUP_ENV)


# -- what the staff side did, and the worker ------------------------------------------------


def run_jobs(app: Flask) -> None:
    """What ``python worker.py`` does, in this process, until the email queue is empty."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with app.app_context():
            SimpleWorker([QUEUE], connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def new_user(app: Flask, login: str = LOGIN, person: Person = NURSE) -> Account:
    """The account a record's creation made: awaiting set-up, no usable password."""
    outcome, account = services_of(app).directory.create_account(login, person, None)
    assert outcome is Outcome.OK and account is not None
    return account


def send_link(app: Flask, account: Account, language: str = "en", *, run: bool = True) -> None:
    """Staff (re)send the set-up email; the worker sends it."""
    the = services_of(app)
    issue_setup_link(the.store, the.outbox, account, language, LIFETIME)
    if run:
        run_jobs(app)


def setup_links_in(message: EmailMessage) -> list[str]:
    text = message.get_body(("plain",))
    assert text is not None
    return sorted(set(_LINK.findall(str(text.get_content()))))


def last_link(backing: Backing) -> str:
    (link,) = setup_links_in(backing.mailbox.messages[-1])
    return link


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def open_link(visitor: Visitor, link: str) -> TestResponse:
    """Open the emailed link, follow where it sends the browser (without the token)."""
    opened = visitor.get(path_of(link))
    assert opened.status_code == 303, opened.status
    assert "token" not in opened.headers["Location"]
    return visitor.follow(opened)


def choose(visitor: Visitor, page: TestResponse, new: str, confirm: str | None = None, entry: str = "") -> TestResponse:
    token = csrf_token(page.get_data(as_text=True))
    return visitor.post(
        f"{entry}/setup", {"new": new, "confirm": new if confirm is None else confirm, "csrf_token": token}
    )


def rows(app: Flask, action: audit.Action) -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def token_rows(app: Flask, purpose: str = SETUP_PURPOSE) -> list[ResetToken]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(ResetToken).where(ResetToken.purpose == purpose).order_by(ResetToken.id)))


def usable(app: Flask, password: str = PASSWORD, login: str = LOGIN) -> bool:
    return services_of(app).directory.verify_password(login, password)[1].outcome is Outcome.OK


def age_links(app: Flask, by: timedelta) -> None:
    """The email sat unread for ``by``."""
    with services_of(app).store.session() as session:
        for row in session.scalars(select(ResetToken)):
            row.created_at -= by
            row.expires_at -= by


# -- the stories ---------------------------------------------------------------------------


@pytest.mark.both_databases
def test_a_new_user_opens_the_emailed_link_chooses_a_password_and_is_ready(app: Flask, backing: Backing) -> None:
    account = new_user(app)
    # Before set-up the account cannot sign in, whatever is typed.
    assert not usable(app)
    assert sign_in(Visitor(app), LOGIN, PASSWORD).status_code == 422

    send_link(app, account)
    (message,) = backing.mailbox.messages
    assert message["To"] == NURSE.email
    assert message["Subject"] == "Set up your new account"
    body = message.get_body(("plain",))
    assert body is not None and LOGIN in str(body.get_content())
    link = last_link(backing)

    visitor = Visitor(app)
    form = open_link(visitor, link)
    assert form.status_code == 200
    assert says(form, "Set up your account") and says(form, LOGIN)
    assert says(form, f"have at least {MIN_LENGTH} characters")  # the directory's rules, shown
    assert 'id="strength"' in form.get_data(as_text=True)  # the meter
    assert "Nightingale" in form.get_data(as_text=True)  # the meter knows the names it refuses
    (verified,) = rows(app, audit.Action.EMAIL_VERIFIED)
    assert verified.account_id == account.id and verified.outcome == "ok"

    done = choose(visitor, form, PASSWORD)
    assert done.status_code == 303 and done.headers["Location"] == "/setup/done"
    ready = visitor.follow(done)
    assert ready.status_code == 200
    assert says(ready, READY) and says(ready, LOGIN)
    assert 'href="/enroll/edit"' in ready.get_data(as_text=True)
    assert 'href="/"' in ready.get_data(as_text=True)  # where to sign in next: SSPM's home by default
    # Signed in, as after Change Password: the security questions are one click away.
    assert visitor.get("/enroll/edit").status_code == 200
    # Shown once.
    assert visitor.get("/setup/done").status_code == 302

    # The directory: the password is the user's, not temporary, and the account usable.
    the = services_of(app)
    found = the.directory.get_account(account.id)
    assert found is not None and not found.disabled
    status = the.directory.status(found)
    assert not status.must_change and not status.locked
    assert usable(app)
    (setup_row,) = rows(app, audit.Action.SETUP)
    assert setup_row.outcome == "ok" and setup_row.account_id == account.id
    assert [row.spent_at is not None for row in token_rows(app)] == [True]

    # The owner is told, by email, in the language of the page.
    run_jobs(app)
    ready_mail = backing.mailbox.messages[-1]
    assert ready_mail["Subject"] == READY and ready_mail["To"] == NURSE.email

    # And signs in with it, anywhere.
    assert sign_in(Visitor(app), LOGIN, PASSWORD).status_code == 303


def test_the_link_works_once(app: Flask, backing: Backing) -> None:
    send_link(app, new_user(app))
    link = last_link(backing)
    # Two tabs opened the link; one sets the password.
    first, second = Visitor(app), Visitor(app)
    first_form, second_form = open_link(first, link), open_link(second, link)
    assert choose(first, first_form, PASSWORD).status_code == 303

    # The other tab's form, and the link itself, are gone; and say who sends a new one.
    late = choose(second, second_form, "Another-Lamp-Ledger-77")
    assert late.status_code == 410 and says(late, GONE) and says(late, HELP_DESK)
    again = open_link(Visitor(app), link)
    assert again.status_code == 410 and says(again, GONE)
    assert usable(app) and not usable(app, "Another-Lamp-Ledger-77")
    # Opening a dead link proves nothing.
    assert len(rows(app, audit.Action.EMAIL_VERIFIED)) == 2


def test_a_re_sent_link_kills_the_one_before_at_the_click(app: Flask, backing: Backing) -> None:
    account = new_user(app)
    send_link(app, account)
    old = last_link(backing)
    opened = Visitor(app)
    old_form = open_link(opened, old)
    assert old_form.status_code == 200

    # Staff send a new one: the old dies now, before the worker even sends the new email.
    send_link(app, account, run=False)
    assert open_link(Visitor(app), old).status_code == 410
    refused = choose(opened, old_form, PASSWORD)
    assert refused.status_code == 410 and says(refused, GONE)
    assert not usable(app)

    run_jobs(app)
    new = last_link(backing)
    assert new != old
    visitor = Visitor(app)
    assert choose(visitor, open_link(visitor, new), PASSWORD).status_code == 303
    assert usable(app)


def test_an_expired_link_says_who_can_send_a_new_one(app: Flask, backing: Backing) -> None:
    send_link(app, new_user(app))
    link = last_link(backing)
    # Opened in time, but the form is sent after the link's end.
    visitor = Visitor(app)
    form = open_link(visitor, link)
    age_links(app, LIFETIME + timedelta(seconds=1))
    late = choose(visitor, form, PASSWORD)
    assert late.status_code == 410 and says(late, GONE) and says(late, HELP_DESK)
    # Opened too late.
    page = open_link(Visitor(app), link)
    assert page.status_code == 410
    assert says(page, text_in(app, GONE, "en"))
    assert not usable(app)
    assert rows(app, audit.Action.SETUP) == []


def test_a_scanner_that_opens_the_link_spends_nothing(app: Flask, backing: Backing) -> None:
    send_link(app, new_user(app))
    link = last_link(backing)
    # A mail gateway's scanner fetches the link, follows the redirect, reads the form: all GETs.
    scanner = Visitor(app)
    for _ in range(3):
        assert open_link(scanner, link).status_code == 200
    assert [row.spent_at for row in token_rows(app)] == [None]
    assert not usable(app)

    visitor = Visitor(app)
    assert choose(visitor, open_link(visitor, link), PASSWORD).status_code == 303
    assert usable(app)


def test_a_form_without_its_csrf_token_changes_nothing(app: Flask, backing: Backing) -> None:
    send_link(app, new_user(app))
    visitor = Visitor(app)
    form = open_link(visitor, last_link(backing))
    forged = visitor.post("/setup", {"new": PASSWORD, "confirm": PASSWORD})
    assert forged.status_code == 400
    wrong = visitor.post("/setup", {"new": PASSWORD, "confirm": PASSWORD, "csrf_token": "forged"})
    assert wrong.status_code == 400
    assert not usable(app)
    assert [row.spent_at for row in token_rows(app)] == [None]
    # The real form still works.
    assert choose(visitor, form, PASSWORD).status_code == 303


def test_set_up_and_reset_links_open_only_their_own_page(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    the = services_of(app)
    # A set-up link's token, taken to the reset page.
    send_link(app, new_user(app))
    setup_link = last_link(backing)
    token = setup_link.split("token=", 1)[1]
    at_reset = Visitor(app)
    assert at_reset.follow(at_reset.get(f"/reset?token={token}")).status_code == 410
    assert rows(app, audit.Action.EMAIL_VERIFIED) == []
    # A reset link's token (an enabled account's), taken to the set-up page.
    john = accounts["normal"]
    john_account = the.directory.find_account(john.uid)
    assert john_account is not None
    reset_token = tokens.issue(the.store, john_account.id, RESET_PURPOSE, timedelta(minutes=30))
    at_setup = Visitor(app)
    gone = at_setup.follow(at_setup.get(f"/setup?token={reset_token}"))
    assert gone.status_code == 410 and says(gone, GONE)
    # Neither was spent: each still opens its own page.
    assert [row.spent_at for row in token_rows(app)] == [None]
    assert [row.spent_at for row in token_rows(app, RESET_PURPOSE)] == [None]
    assert open_link(Visitor(app), setup_link).status_code == 200
    at_own = Visitor(app)
    assert at_own.follow(at_own.get(f"/reset?token={reset_token}")).status_code == 200
    assert usable(app, john.password, john.uid)


def test_a_refused_password_is_said_at_its_field_and_the_link_keeps_working(app: Flask, backing: Backing) -> None:
    send_link(app, new_user(app))
    visitor = Visitor(app)
    form = open_link(visitor, last_link(backing))
    for new, confirm, reason in (
        (WEAK, WEAK, "too_weak"),
        ("Florence-Nightingale-77", "Florence-Nightingale-77", "contains_name"),
        (PASSWORD, "Lamp-Scutari-Ledger-1855", "mismatch"),
        ("Kx7-q", "Kx7-q", "too_short"),
    ):
        refused = choose(visitor, form, new, confirm)
        assert refused.status_code == 422, reason
        html = refused.get_data(as_text=True)
        assert says(refused, reason_in(app, reason)), reason
        field = "confirm" if reason == "mismatch" else "new"
        assert re.search(
            rf'<input[^>]*aria-invalid="true"[^>]*id="{field}"|<input[^>]*id="{field}"[^>]*aria-invalid="true"', html
        ), reason
        assert says(refused, LOGIN)  # still the user's own form, user name and all
        assert new not in html  # never sent back
        form = refused
    assert [row.spent_at for row in token_rows(app)] == [None]
    assert not usable(app, WEAK)
    assert choose(visitor, form, PASSWORD).status_code == 303
    assert usable(app)


def test_the_phone_entry_and_french(app: Flask, backing: Backing) -> None:
    send_link(app, new_user(app), "fr")
    message = backing.mailbox.messages[-1]
    assert message["Subject"] == text_in(app, "Set up your new account", "fr")
    visitor = Visitor(app)
    assert visitor.get("/m/setup?lang=fr").status_code == 410  # nothing opened yet: the French gone page
    opened = visitor.get("/m" + path_of(last_link(backing)))
    assert opened.status_code == 303 and opened.headers["Location"] == "/m/setup"
    form = visitor.follow(opened)
    assert form.status_code == 200 and says(form, text_in(app, "Set up your account", "fr"))
    done = choose(visitor, form, PASSWORD, entry="/m")
    assert done.headers["Location"] == "/m/setup/done"
    ready = visitor.follow(done)
    assert says(ready, text_in(app, READY, "fr"))
    assert 'href="/m/enroll/edit"' in ready.get_data(as_text=True)
    run_jobs(app)
    assert backing.mailbox.messages[-1]["Subject"] == text_in(app, READY, "fr")


def test_where_to_sign_in_next_is_the_organizations_choice(
    build_app: AppFactory, slapd: Slapd, backing: Backing
) -> None:
    portal = "https://intranet.partners.example/apps"
    app = build_app(slapd, SSPM_SETUP_NEXT_URL=portal, **SETUP_ENV)
    send_link(app, new_user(app))
    visitor = Visitor(app)
    ready = visitor.follow(choose(visitor, open_link(visitor, last_link(backing)), PASSWORD))
    assert f'href="{portal}"' in ready.get_data(as_text=True)


def test_a_record_no_longer_to_be_set_up_is_not_enabled_by_its_link(app: Flask, backing: Backing) -> None:
    """An account given a password some other way since the email went: the link says so and changes nothing."""
    account = new_user(app)
    send_link(app, account)
    visitor = Visitor(app)
    form = open_link(visitor, last_link(backing))
    the = services_of(app)
    # Someone gave the account a password outside SSPM (a directory console) since the email went.
    assert the.directory.activate_account(account, "Hand-Given-Temporary-42") is Outcome.OK
    refused = choose(visitor, form, PASSWORD)
    assert refused.status_code == 410
    assert not usable(app) and usable(app, "Hand-Given-Temporary-42")
