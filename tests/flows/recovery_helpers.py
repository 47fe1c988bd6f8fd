"""What the sign-in, enrollment and recovery stories share.

A visitor here reads the CAPTCHA the way a person who can see it does: the
characters are the ones the image was drawn from, found through this
browser's own (signed, not encrypted) session cookie and the app's Redis.
Questions are read off the page's labels, as a person reads them.
"""

from __future__ import annotations

import html
import json
import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from conftest import services_of
from flask import Flask
from ldap3 import Connection, Server, Tls
from markupsafe import escape
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import seed_enrollment
from sspm.infra.store import Answer, AuditEvent
from sspm.recovery.service import question_pool
from sspm.web.messages import reason_text
from tests.flows.conftest import Visitor, csrf_token

SESSION_COOKIE = "sspm_session"
COOKIE_DOMAIN = "sspm.partners.example"
WRONG = "Not-The-Answer"
#: The lab policy's pwdMaxFailure: this many wrong binds lock an account.
LOCK_AFTER = 5

_LABEL = re.compile(r'<label for="answer_(\d+)">([^<]*)</label>')
_REMAINING = re.compile(r'data-remaining="(\d+)"')
_ECHOED = re.compile(r'(<input[^>]*name="username"[^>]*value=")([^"]*)(")')


# -- the browser's own session -------------------------------------------------------


def session_cookie(visitor: Visitor) -> str | None:
    cookie = visitor.client.get_cookie(SESSION_COOKIE, domain=COOKIE_DOMAIN)
    return cookie.value if cookie else None


def put_back_cookie(visitor: Visitor, value: str) -> None:
    """Send an earlier copy of the session cookie, as someone replaying it would."""
    visitor.client.set_cookie(SESSION_COOKIE, value, domain=COOKIE_DOMAIN, secure=True, httponly=True)


def browser_session(visitor: Visitor) -> dict[str, Any]:
    value = session_cookie(visitor)
    if value is None:
        return {}
    serializer = visitor.app.session_interface.get_signing_serializer(visitor.app)  # type: ignore[attr-defined]
    assert serializer is not None
    return dict(serializer.loads(value))


def app_redis(app: Flask) -> redis.Redis:
    return redis.Redis.from_url(app.config["SSPM_SETTINGS"].redis_url)


def captcha_text(visitor: Visitor) -> str:
    """The characters of the image this browser was last shown."""
    captcha_id = browser_session(visitor).get("captcha")
    assert isinstance(captcha_id, str), "the page should have issued a CAPTCHA to this browser"
    raw = app_redis(visitor.app).get(f"sspm:captcha:{captcha_id}")
    assert raw is not None, "the CAPTCHA this browser holds should exist"
    return str(json.loads(raw)["text"])


# -- signing in, enrolling --------------------------------------------------------------


def sign_in(visitor: Visitor, login: str, password: str, *, entry: str = "") -> TestResponse:
    return visitor.submit(f"{entry}/signin", {"username": login, "password": password})


def enroll_fields(picks: Mapping[str, str], password: str) -> dict[str, str]:
    fields = {"password": password}
    for i, (question, answer) in enumerate(picks.items()):
        fields[f"question_{i}"] = question
        fields[f"answer_{i}"] = answer
    return fields


def enroll(visitor: Visitor, picks: Mapping[str, str], password: str) -> TestResponse:
    """Fill in the enrollment page of a signed-in visitor."""
    return visitor.submit("/enroll/edit", enroll_fields(picks, password))


def sentence(app: Flask, reason: str, lang: str = "en") -> str:
    """A refusal as the enrollment and recovery pages word it, in ``lang``."""
    with app.test_request_context(f"/?lang={lang}"):
        return reason_text(reason, min_length=app.config["SSPM_SETTINGS"].min_answer_length)


def says_reason(body: str, app: Flask, reason: str) -> bool:
    """Whether a page (its text) says the sentence for ``reason``."""
    return str(escape(sentence(app, reason))) in body


def any_csrf_token(body: str) -> str:
    """The CSRF token of a page's form, whatever the order of the input's attributes."""
    found = re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', body)
    assert found, "the page should carry a CSRF token"
    return found.group(1)


def stored_answers(app: Flask, account_id: str | None = None) -> list[Answer]:
    with services_of(app).store.session() as session:
        query = select(Answer).order_by(Answer.account_id, Answer.position)
        if account_id is not None:
            query = query.where(Answer.account_id == account_id)
        return list(session.scalars(query))


def audit_rows(app: Flask) -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def account_id(app: Flask, login: str) -> str:
    account = services_of(app).directory.find_account(login)
    assert account is not None, login
    return account.id


def seed_enrolled(app: Flask, *people: SeedAccount) -> None:
    """Enroll seeded accounts with the demo's answers (DEMO_ANSWERS), straight into the store."""
    the = services_of(app)
    for person in people:
        seed_enrollment(the.store, the.hasher, account_id(app, person.uid))


# -- recovery ----------------------------------------------------------------------------


def start(visitor: Visitor, purpose: str, username: str, *, entry: str = "", query: str = "") -> TestResponse:
    """Open Forgot Password or Unlock Account, type the name and the CAPTCHA, continue."""
    path = f"{entry}/{purpose}"
    page = visitor.get(path + query)
    assert page.status_code == 200, page.status
    fields = {
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "username": username,
        "captcha": captcha_text(visitor),
        "action": "continue",
    }
    return visitor.post(path, fields)


def pool_of(app: Flask, typed: str) -> set[str]:
    """The questions a challenge for ``typed`` draws from: an account's enrolled
    ones, or the fixed decoys of an account without them or of an unknown name.

    Read from the service the start page calls, so that a test can say exactly
    which questions a name may be asked, never by sampling random draws.
    """
    from sspm.recovery.views import recovery_policy

    the = services_of(app)
    with app.test_request_context("/"):
        _, pool, _ = question_pool(the.directory, the.store, the.catalogue, recovery_policy(), typed)
    return set(pool)


def asked(app: Flask, page: TestResponse) -> list[str]:
    """The ids of the questions a challenge page asks, read from its labels (any language)."""
    by_text = {text: q.id for q in services_of(app).catalogue.questions for text in q.text.values()}
    labels = sorted((int(i), html.unescape(text)) for i, text in _LABEL.findall(page.get_data(as_text=True)))
    return [by_text[text] for _, text in labels]


def remaining(page: TestResponse) -> int:
    found = _REMAINING.search(page.get_data(as_text=True))
    assert found, "a challenge page shows a countdown"
    return int(found.group(1))


def answer_fields(app: Flask, page: TestResponse, visitor: Visitor, answers: Mapping[str, str]) -> dict[str, str]:
    """The filled-in challenge form: each asked question answered from ``answers`` (else WRONG)."""
    fields = {
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "captcha": captcha_text(visitor),
        "action": "continue",
    }
    for i, question in enumerate(asked(app, page)):
        fields[f"answer_{i}"] = answers.get(question, WRONG)
    return fields


def answer(visitor: Visitor, answers: Mapping[str, str], *, entry: str = "") -> TestResponse:
    """Open the challenge, answer what it asks, send it."""
    path = f"{entry}/recovery/challenge"
    page = visitor.get(path)
    assert page.status_code == 200, page.status
    return visitor.post(path, answer_fields(visitor.app, page, visitor, answers))


def recover(visitor: Visitor, purpose: str, username: str, answers: Mapping[str, str]) -> TestResponse:
    started = start(visitor, purpose, username)
    assert started.status_code == 303, started.status
    return answer(visitor, answers)


def set_new_password(visitor: Visitor, new: str, *, entry: str = "") -> TestResponse:
    return visitor.submit(f"{entry}/recovery/new-password", {"new": new, "confirm": new})


def echoed_username(body: str) -> str | None:
    found = _ECHOED.search(body)
    return html.unescape(found.group(2)) if found else None


def without_echo(body: str, *names: str) -> str:
    """A page with what it echoes back (user name, CSRF token) blanked out."""
    body = re.sub(r'(<input[^>]*name="csrf_token"[^>]*value=")[^"]+(")', r"\1TOKEN\2", body)
    body = re.sub(r"image\.png\?v=\d+", "image.png?v=N", body)
    body = _ECHOED.sub(r"\1NAME\3", body)
    for name in sorted(names, key=len, reverse=True):
        body = body.replace(str(html.escape(name)), "NAME")
    return body


# -- the directory, as a lab operator touches it -----------------------------------------


def verdict(directory: Directory, login: str, password: str) -> Outcome:
    return directory.verify_password(login, password)[1].outcome


def lock_by_wrong_binds(directory: Directory, login: str) -> None:
    """Lock an account the way a forgetful user does: real binds with a wrong password."""
    for _ in range(LOCK_AFTER):
        assert verdict(directory, login, "Wrong-Guess-0000") is Outcome.BAD_CREDENTIALS
    account = directory.find_account(login)
    assert account is not None
    assert directory.status(account).locked


@contextmanager
def as_directory_admin(slapd: Slapd) -> Iterator[Connection]:
    """A raw connection as the directory's root, for what only an administrator does (renames)."""
    tls = Tls(ca_certs_file=str(slapd.ca_file), validate=ssl.CERT_REQUIRED)
    conn = Connection(Server(slapd.ldaps_url, use_ssl=True, tls=tls), slapd.root_dn, slapd.root_password)
    assert conn.bind(), conn.result
    try:
        yield conn
    finally:
        conn.unbind()
