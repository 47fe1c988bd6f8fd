"""Forgot Password by email, and the emails that tell people what happened.

Every story runs on the real servers: the app queues a job in Redis, an RQ
worker (SimpleWorker, in this process, exactly as ``python worker.py``
runs it) sends it over SMTP to aiosmtpd, and the test reads what arrived as
the user would. A story that ends in a new password is checked in the
directory; a refusal is checked for what did not happen.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import signal
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from flask_babel import force_locale, format_datetime, gettext
from ldap3 import MODIFY_DELETE
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS, seed_enrollment
from lab.smtp import Mailbox
from sspm.email.jobs import QUEUE
from sspm.infra.settings import ConfigError
from sspm.infra.store import AuditEvent, EmailEvent, ResetToken, utcnow
from sspm.web.fields import MAX_USERNAME
from tests.contract.test_directory import HOSTILE_LOGINS
from tests.support import Backing, services_of, settings_for
from tests.support.flows import (
    HTTPS_BASE_URL,
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    as_directory_admin,
    csrf_token,
    enroll,
    lock_by_wrong_binds,
    reason_in,
    recover,
    says,
    set_new_password,
    sign_in,
    text_in,
    without_token,
)

#: What the emails name as the help desk, distinct enough to find.
HELP_DESK = "the Service Desk (ext. 4357)"
#: Retries run at once, so a burst worker sees a job through to its end.
EMAIL_ENV = {"SSPM_LRA_CONTACT": HELP_DESK, "SSPM_EMAIL_RETRY_SECONDS": "0,0,0"}
WEAK = "qwertyuiop"
#: Where the people in these stories browse from (documentation range).
CLIENT_IP = "203.0.113.7"
RESET_DONE = "Your password has been reset successfully."
LINK_GONE = "This link no longer works"
CHECK_EMAIL = "Check your email"
_LINK = re.compile(r"https?://[^\s\"'<>]+/reset\?token=[A-Za-z0-9_-]+")


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


# -- the worker, the mailbox, the store and Redis, as a test reads them -----------------------


def run_jobs(app: Flask) -> None:
    """What ``python worker.py`` does, in this process, until the queue is empty."""
    # The worker takes over Ctrl-C and SIGTERM while it works; give them back to pytest.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with app.app_context():
            SimpleWorker([QUEUE], connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def queue_of(app: Flask) -> Queue:
    return Queue(QUEUE, connection=services_of(app).state.redis)


def every_job(app: Flask) -> list[Job]:
    """Every email job Redis knows of: queued, running, scheduled, finished or failed."""
    queue = queue_of(app)
    ids = set(queue.get_job_ids())
    for registry in (
        queue.started_job_registry,
        queue.scheduled_job_registry,
        queue.deferred_job_registry,
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.canceled_job_registry,
    ):
        ids.update(registry.get_job_ids())
    return [job for job in Job.fetch_many(sorted(ids), connection=queue.connection) if job is not None]


def redis_values(app: Flask) -> list[bytes]:
    """Every key and value in the app's Redis, compressed ones (RQ's job data) opened."""
    connection = redis.Redis.from_url(services_of(app).settings.redis_url)
    found: list[bytes] = []
    for key in connection.scan_iter(count=1000):
        kind = connection.type(key)
        values: list[bytes] = []
        if kind == b"string":
            values = [connection.get(key) or b""]
        elif kind == b"hash":
            values = [part for pair in connection.hgetall(key).items() for part in pair]
        elif kind == b"list":
            values = connection.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(connection.smembers(key))
        elif kind == b"zset":
            values = connection.zrange(key, 0, -1)
        elif kind == b"stream":
            values = [part for _, fields in connection.xrange(key) for pair in fields.items() for part in pair]
        for value in [key, *values]:
            found.append(value)
            with contextlib.suppress(zlib.error):
                found.append(zlib.decompress(value))
    return found


def token_rows(app: Flask) -> list[ResetToken]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(ResetToken).order_by(ResetToken.id)))


def audit_rows(app: Flask, action_prefix: str = "") -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(action_prefix)))
        return list(rows)


def email_events(app: Flask) -> list[EmailEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(EmailEvent)))


def age_links(app: Flask, *, by: timedelta) -> None:
    """Move every link's issue and expiry back in time, as if it had been sent that long ago."""
    with services_of(app).store.session() as session:
        for row in session.scalars(select(ResetToken)):
            row.created_at -= by
            row.expires_at -= by


def messages_to(mailbox: Mailbox, address: str | None) -> list[EmailMessage]:
    return [message for message in mailbox.messages if message["To"] == address]


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML (unescaped, as it reads) of a multipart message."""
    text, page = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and page is not None, "every email has a text and an HTML part"
    return str(text.get_content()), html.unescape(str(page.get_content()))


def link_in(message: EmailMessage) -> str:
    text, page = bodies(message)
    links = set(_LINK.findall(text))
    assert len(links) == 1, f"one reset link in the email, found {links}"
    (found,) = links
    assert found in page, "the HTML part carries the same link"
    return found


def token_of(link: str) -> str:
    return urlsplit(link).query.removeprefix("token=")


def said(app: Flask, lang: str, msgid: str, **values: object) -> str:
    """A sentence of the catalogue in ``lang``, with its placeholders filled."""
    with app.test_request_context(f"/?lang={lang}"):
        return str(gettext(msgid, **values))


def ask_for_link(visitor: Visitor, typed: str, *, lang: str | None = None, entry: str = "") -> TestResponse:
    path = f"{entry}/forgot/email" + (f"?lang={lang}" if lang else "")
    return visitor.submit(path, {"username": typed})


def open_link(visitor: Visitor, link: str) -> TestResponse:
    """Open an emailed link: the token goes into the session, the address bar loses it."""
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == visitor.base_url
    opened = visitor.get(f"{parts.path}?{parts.query}")
    assert opened.status_code == 303, opened.status
    assert "token" not in opened.headers["Location"]
    return visitor.follow(opened)


def set_password_by_link(visitor: Visitor, new: str, *, form: TestResponse | None = None) -> TestResponse:
    """Fill in the new-password form (the one given, opened earlier, or a fresh one) and send it."""
    if form is None:
        return visitor.submit("/reset", {"new": new, "confirm": new})
    return visitor.post("/reset", {"new": new, "confirm": new, "csrf_token": csrf_token(form.get_data(as_text=True))})


def verdict(directory: Directory, login: str, password: str) -> Outcome:
    return directory.verify_password(login, password)[1].outcome


def is_link_gone(app: Flask, page: TestResponse, lang: str = "en") -> bool:
    """The 410 page, with its way to ask for a new link."""
    return (
        page.status_code == 410
        and says(page, text_in(app, LINK_GONE, lang))
        and says(page, text_in(app, "Send me a new link", lang))
        and 'href="/forgot/email"' in page.get_data(as_text=True)
    )


def one_link_for(app: Flask, visitor: Visitor, mailbox: Mailbox, person: SeedAccount) -> str:
    """Ask for a link for ``person`` and return the one the worker emailed."""
    before = len(messages_to(mailbox, person.mail))
    assert ask_for_link(visitor, person.uid).status_code == 200
    run_jobs(app)
    received = messages_to(mailbox, person.mail)
    assert len(received) == before + 1
    return link_in(received[-1])


# -- Forgot Password by email, from the request to the new password ---------------------------


@pytest.mark.parametrize(
    ("typed", "lang", "entry"),
    [
        pytest.param("jsmith", "en", "", id="by user name, in English"),
        pytest.param("JSmith@Partners.Example", "fr", "/m", id="by email address, in French, on a phone"),
    ],
)
def test_a_user_resets_the_password_with_an_emailed_link(
    app: Flask,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    typed: str,
    lang: str,
    entry: str,
) -> None:
    mailbox = backing.mailbox
    john = accounts["normal"]
    visitor = Visitor(app)

    asked = ask_for_link(visitor, typed, lang=lang, entry=entry)

    assert asked.status_code == 200
    assert says(asked, text_in(app, CHECK_EMAIL, lang))
    assert not mailbox.messages, "the web app only queues; the worker sends"
    run_jobs(app)
    assert len(mailbox.messages) == 1
    (message,) = mailbox.messages
    assert message["To"] == john.mail
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == said(app, lang, "Your password reset link")
    assert (message["Subject"] == "Your password reset link") == (lang == "en"), "translated"
    text, page = bodies(message)
    for body in (text, page):
        assert said(app, lang, "Hello %(name)s,", name=john.display_name) in body
        assert said(app, lang, "Password self-service") in body, "the product's name"
        assert "PARTNERS" in body
        assert HELP_DESK in body, "the help-desk contact"
    link = link_in(message)
    assert link.startswith(f"{HTTPS_BASE_URL}/reset?token="), "built from SSPM_PUBLIC_BASE_URL"
    token = token_of(link)
    assert len(token) >= 22, "at least 128 random bits"

    # Mail scanners open links (without the user's cookies), and so may the user, many times:
    # none of it spends the link.
    for _ in range(5):
        scanner = Visitor(app)
        scanned = scanner.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert scanned.status_code == 303
        scanner.follow(scanned)
    for _ in range(5):
        form = open_link(visitor, link)
        assert form.status_code == 200
        assert says(form, text_in(app, "Choose a new password", lang))
    (row,) = token_rows(app)
    assert row.spent_at is None, "ten GETs later, the link still works"

    # The rules of every new password apply; a refusal leaves the link usable.
    weak = set_password_by_link(visitor, WEAK)
    assert weak.status_code == 422
    assert says(weak, reason_in(app, "too_weak", lang))
    assert token_rows(app)[0].spent_at is None
    assert verdict(directory, john.uid, john.password) is Outcome.OK

    done = set_password_by_link(visitor, NEW_PASSWORD)

    assert done.status_code == 303
    assert says(visitor.follow(done), text_in(app, RESET_DONE, lang))
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS
    # Once: the same link, even in the same browser, is gone, with a way to ask again.
    again = open_link(Visitor(app), link)
    assert is_link_gone(app, again)
    assert is_link_gone(app, open_link(visitor, link), lang)
    # The token was never stored as it is: only its SHA-256.
    (row,) = token_rows(app)
    assert row.spent_at is not None
    assert re.fullmatch(r"[0-9a-f]{64}", row.token_hash)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    database = Path(backing.database_url.removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):  # the database, its WAL and journal
        assert token.encode() not in path.read_bytes()
    # No job carried it (the worker made it), and Redis holds it nowhere.
    jobs = every_job(app)
    assert {job.func_name.rsplit(".", 1)[1] for job in jobs} == {"send_reset_link", "send_notification"}
    for job in jobs:
        assert token not in repr((job.args, job.kwargs, job.meta, job.return_value()))
    assert not [value for value in redis_values(app) if token.encode() in value]


def test_an_expired_link_is_refused_with_a_way_to_ask_for_a_new_one(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    link = one_link_for(app, visitor, backing.mailbox, john)
    lifetime = timedelta(minutes=services_of(app).settings.reset_link_minutes)
    assert lifetime == timedelta(minutes=30), "the documented default"
    form = open_link(visitor, link)
    assert form.status_code == 200, "a form opened in time"

    age_links(app, by=lifetime + timedelta(seconds=1))

    assert is_link_gone(app, open_link(Visitor(app), link))
    # Nor can the form opened while it worked still use it.
    assert set_password_by_link(visitor, NEW_PASSWORD, form=form).status_code == 410
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    # The way out works: a new link, which does.
    assert visitor.get("/forgot/email").status_code == 200
    fresh = one_link_for(app, visitor, backing.mailbox, john)
    assert open_link(visitor, fresh).status_code == 200


def test_a_link_lifetime_of_zero_minutes_is_refused_at_start(slapd: Slapd) -> None:
    """Every link would be dead on arrival: an operator's mistake, caught before any user meets it."""
    with pytest.raises(ConfigError, match="SSPM_RESET_LINK_MINUTES"):
        settings_for(slapd, SSPM_RESET_LINK_MINUTES="0")


def test_a_newer_link_voids_the_older_one(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    first = one_link_for(app, visitor, backing.mailbox, john)
    second = one_link_for(app, visitor, backing.mailbox, john)
    assert first != second

    assert is_link_gone(app, open_link(Visitor(app), first))

    latest = Visitor(app)
    assert open_link(latest, second).status_code == 200
    assert set_password_by_link(latest, NEW_PASSWORD).status_code == 303
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def changed_through_sspm(app: Flask, directory: Directory, person: SeedAccount) -> None:
    done = Visitor(app).change_password(person.uid, person.password, NEW_PASSWORD)
    assert done.status_code == 303


def reset_in_the_directory(app: Flask, directory: Directory, person: SeedAccount) -> None:
    # pwdChangedTime has whole seconds: the link was sent a while before the reset.
    age_links(app, by=timedelta(minutes=1))
    account = directory.find_account(person.uid)
    assert account is not None
    assert directory.reset_password(account, NEW_PASSWORD, must_change=False) is Outcome.OK


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(changed_through_sspm, id="changed through /change"),
        pytest.param(reset_in_the_directory, id="reset in the directory, outside SSPM"),
    ],
)
def test_a_password_change_by_any_path_voids_an_outstanding_link(
    app: Flask,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    change: Callable[[Flask, Directory, SeedAccount], None],
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    link = one_link_for(app, visitor, backing.mailbox, john)
    form = open_link(visitor, link)
    assert form.status_code == 200, "a form opened before the change"

    change(app, directory, john)

    assert is_link_gone(app, open_link(Visitor(app), link))
    assert set_password_by_link(visitor, "Another-Quarry-Violet-17", form=form).status_code == 410
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_a_link_opened_while_the_directory_does_not_answer_says_wait_and_still_works_afterwards(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    app = build_app(slapd, LDAP_TIMEOUT="1", LDAP_RETRY_AFTER="1")
    john = accounts["normal"]
    visitor = Visitor(app)
    link = one_link_for(app, visitor, backing.mailbox, john)

    slapd.process.send_signal(signal.SIGSTOP)
    try:
        page = open_link(visitor, link)
    finally:
        slapd.process.send_signal(signal.SIGCONT)

    assert page.status_code == 503
    assert says(page, reason_in(app, "unavailable"))
    time.sleep(1.2)  # LDAP_RETRY_AFTER: the breaker lets the next call try the directory again
    form = visitor.get("/reset")
    assert form.status_code == 200, "the opened link was kept for the retry"
    assert set_password_by_link(visitor, NEW_PASSWORD, form=form).status_code == 303
    assert verdict(services_of(app).directory, john.uid, NEW_PASSWORD) is Outcome.OK


# -- no enumeration ---------------------------------------------------------------------------


def test_the_request_says_the_same_whoever_is_named_and_only_a_real_account_gets_mail(
    app: Flask, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    mailbox = backing.mailbox
    john, laura, ravi = accounts["normal"], accounts["other"], accounts["disabled"]
    with as_directory_admin(slapd) as admin:
        assert admin.modify(laura.dn, {"mail": [(MODIFY_DELETE, [])]}), admin.result
    named = {
        "an account with an address": john.uid,
        "an unknown user name": "nobody",
        "an unknown address": "nobody@partners.example",
        "an account without an address": laura.uid,
        "a disabled account": ravi.uid,
    }

    pages = {}
    for case, typed in named.items():
        page = ask_for_link(Visitor(app), typed)
        pages[case] = (page.status_code, without_token(page.get_data(as_text=True)))

    assert {status for status, _ in pages.values()} == {200}
    assert len({body for _, body in pages.values()}) == 1, "one page, word for word, whoever is named"
    assert CHECK_EMAIL in next(iter(pages.values()))[1]
    # The same work is queued for each: a job apiece, carrying no name.
    jobs = queue_of(app).get_jobs()
    assert len(jobs) == len(named)
    assert all(job.func_name == "sspm.email.jobs.send_reset_link" for job in jobs)
    for job in jobs:
        assert not {"nobody", laura.uid, ravi.uid, john.uid} & {str(arg) for arg in job.args}
    run_jobs(app)
    assert [message["To"] for message in mailbox.messages] == [john.mail]
    assert sorted(str(job.return_value()) for job in every_job(app)) == ["no-recipient"] * 4 + ["sent"]
    assert len(token_rows(app)) == 1, "a token only for the account that was emailed"


# -- notifications ----------------------------------------------------------------------------

Story = Callable[[Flask, Directory, Visitor, SeedAccount], list[str]]


def speak(visitor: Visitor, lang: str) -> None:
    """Choose the page language with the switch, as a user does (it is remembered)."""
    assert visitor.get(f"/?lang={lang}").status_code == 200


def after_a_change(app: Flask, directory: Directory, visitor: Visitor, person: SeedAccount) -> list[str]:
    assert visitor.change_password(person.uid, person.password, NEW_PASSWORD).status_code == 303
    return [person.password, NEW_PASSWORD]


def after_a_reset_by_questions(app: Flask, directory: Directory, visitor: Visitor, person: SeedAccount) -> list[str]:
    account = directory.find_account(person.uid)
    assert account is not None
    seed_enrollment(services_of(app).store, services_of(app).hasher, account.id)
    assert recover(visitor, "forgot", person.uid, DEMO_ANSWERS).status_code == 303
    assert set_new_password(visitor, NEW_PASSWORD).status_code == 303
    return [person.password, NEW_PASSWORD, *DEMO_ANSWERS.values()]


def after_an_unlock(app: Flask, directory: Directory, visitor: Visitor, person: SeedAccount) -> list[str]:
    account = directory.find_account(person.uid)
    assert account is not None
    seed_enrollment(services_of(app).store, services_of(app).hasher, account.id)
    lock_by_wrong_binds(directory, person.uid)
    assert recover(visitor, "unlock", person.uid, DEMO_ANSWERS).status_code == 303
    assert not directory.status(account).locked
    return [person.password, *DEMO_ANSWERS.values()]


PICKS = {"first-school": "Riverside Elementary", "first-pet": "Biscuit", "parents-met": "Montréal"}
OTHER_PICKS = {"childhood-street": "Maple Avenue", "first-job": "Paper round", "first-pet": "Pepper"}


def after_an_enrollment(app: Flask, directory: Directory, visitor: Visitor, person: SeedAccount) -> list[str]:
    assert sign_in(visitor, person.uid, person.password).status_code == 303
    assert enroll(visitor, PICKS, person.password).status_code == 303
    return [person.password, *PICKS.values()]


def after_a_re_enrollment(app: Flask, directory: Directory, visitor: Visitor, person: SeedAccount) -> list[str]:
    secrets = after_an_enrollment(app, directory, visitor, person)
    run_jobs(app)  # the first enrollment's email goes out first
    assert enroll(visitor, OTHER_PICKS, person.password).status_code == 303
    return [*secrets, *OTHER_PICKS.values()]


WHAT_HAPPENED = {
    "password_changed": "The password of your %(domain)s account %(username)s was changed.",
    "password_reset": "The password of your %(domain)s account %(username)s was reset.",
    "account_unlocked": "Your %(domain)s account %(username)s was unlocked.",
    "enrolled": "Security questions were set up for your %(domain)s account %(username)s.",
    "re_enrolled": "The security questions of your %(domain)s account %(username)s were changed.",
}
SUBJECT = {
    "password_changed": "Your password was changed",
    "password_reset": "Your password was reset",
    "account_unlocked": "Your account was unlocked",
    "enrolled": "Your security questions were set up",
    "re_enrolled": "Your security questions were changed",
}
IF_NOT_YOU = (
    "If this was you, there is nothing to do. If it was not you, contact %(lra)s right away: "
    "someone else may know your password or your answers."
)


@pytest.mark.parametrize(
    ("story", "kind", "lang"),
    [
        pytest.param(after_a_change, "password_changed", "fr", id="password changed (fr)"),
        pytest.param(after_a_reset_by_questions, "password_reset", "en", id="reset by questions (en)"),
        pytest.param(after_an_unlock, "account_unlocked", "fr", id="account unlocked (fr)"),
        pytest.param(after_an_enrollment, "enrolled", "en", id="enrolled (en)"),
        pytest.param(after_a_re_enrollment, "re_enrolled", "fr", id="re-enrolled (fr)"),
    ],
)
def test_the_owner_is_told_what_happened_when_and_from_where_in_their_language(
    app: Flask,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    story: Story,
    kind: str,
    lang: str,
) -> None:
    mailbox = backing.mailbox
    john = accounts["normal"]
    visitor = Visitor(app)
    visitor.client.environ_base["REMOTE_ADDR"] = CLIENT_IP
    speak(visitor, lang)
    before = utcnow()

    secrets = story(app, directory, visitor, john)

    after = utcnow()
    (job,) = [
        job for job in every_job(app) if job.func_name == "sspm.email.jobs.send_notification" and job.args[1] == kind
    ]
    account_id, _, language, at, source_ip, _ = job.args
    assert (language, source_ip) == (lang, CLIENT_IP)
    assert before <= datetime.fromisoformat(at) <= after
    run_jobs(app)
    (message,) = [m for m in messages_to(mailbox, john.mail) if m["Subject"] == said(app, lang, SUBJECT[kind])]
    assert (message["Subject"] == SUBJECT[kind]) == (lang == "en"), "translated"
    with app.test_request_context(f"/?lang={lang}"), force_locale(lang):
        when = format_datetime(datetime.fromisoformat(at), "long")
    for body in bodies(message):
        assert said(app, lang, WHAT_HAPPENED[kind], domain="PARTNERS", username=john.uid) in body
        assert said(app, lang, "When: %(when)s", when=when) in body
        assert said(app, lang, "Network address: %(ip)s", ip=CLIENT_IP) in body
        assert said(app, lang, IF_NOT_YOU, lra=HELP_DESK) in body
    # Never a password or an answer, in any email, in any form, nor in any job.
    for sent in mailbox.messages:
        raw = sent.as_string()
        readable = "\n".join(bodies(sent))
        for secret in secrets:
            assert secret not in raw and secret not in readable
    for queued in every_job(app):
        for secret in secrets:
            assert secret not in repr((queued.args, queued.kwargs))
    assert any(row.outcome == "sent" for row in audit_rows(app, f"email_{kind}"))
    assert {event.account_id for event in email_events(app)} == {account_id}


@pytest.mark.parametrize("login", HOSTILE_LOGINS, ids=repr)
def test_a_hostile_user_name_asking_for_a_reset_email_gets_the_ordinary_page_and_no_mail(
    app: Flask, backing: Backing, login: str
) -> None:
    visitor = Visitor(app)
    page = visitor.submit("/forgot/email", {"username": login})

    if len(login) > MAX_USERNAME:
        assert page.status_code == 422
        return
    assert page.status_code == 200
    assert says(page, text_in(app, CHECK_EMAIL))
    with app.app_context():
        SimpleWorker([QUEUE], connection=services_of(app).state.redis).work(burst=True)
    assert backing.mailbox.messages == []
