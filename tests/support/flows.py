"""What the stories through Flask's test client share.

A visitor with a browser's manners (cookies, the page's CSRF token, a
same-origin Referer), what pages say, and slapd's own account of the work
it did. A visitor reads the CAPTCHA the way a person who can see it does:
the characters are the ones the image was drawn from, found through this
browser's own (signed, not encrypted) session cookie and the app's Redis.
Questions are read off the page's labels, as a person reads them.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask_babel import gettext
from ldap3 import Connection, Server, Tls
from markupsafe import escape
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import seed_enrollment
from sspm.infra import redisconn
from sspm.infra.store import Answer, AuditEvent
from sspm.recovery.service import question_pool
from sspm.web.messages import reason_text
from tests.support import services_of

HTTPS_BASE_URL = "https://sspm.partners.example"
HTTP_BASE_URL = "http://sspm.partners.example"
#: pwdMinLength of the lab's policy, which the page repeats in its refusal.
MIN_LENGTH = 8
NEW_PASSWORD = "Orchard-Kettle-Lantern-58"
SESSION_COOKIE = "sspm_session"
COOKIE_DOMAIN = "sspm.partners.example"
WRONG = "Not-The-Answer"
#: The lab policy's pwdMaxFailure: this many wrong binds lock an account.
LOCK_AFTER = 5

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_LABEL = re.compile(r'<label for="answer_(\d+)">([^<]*)</label>')
_REMAINING = re.compile(r'data-remaining="(\d+)"')
_ECHOED = re.compile(r'(<input[^>]*name="username"[^>]*value=")([^"]*)(")')


def csrf_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page should carry a CSRF token in a hidden input"
    return found.group(1)


def without_token(html: str) -> str:
    return _TOKEN.sub('name="csrf_token" type="hidden" value="TOKEN"', html)


def says(response: TestResponse, text: str) -> bool:
    """Whether the page shows ``text`` (as the template escapes it)."""
    return str(escape(text)) in response.get_data(as_text=True)


def reason_in(app: Flask, reason: str, lang: str = "en") -> str:
    """The sentence a page shows for ``reason``, in ``lang``, from the catalogue."""
    with app.test_request_context(f"/?lang={lang}"):
        return reason_text(reason, min_length=MIN_LENGTH)


def text_in(app: Flask, text: str, lang: str = "en") -> str:
    """Any other page text, translated into ``lang`` from the catalogue."""
    with app.test_request_context(f"/?lang={lang}"):
        return str(gettext(text))


class Visitor:
    """Someone with a browser: keeps cookies, sends back the page's CSRF
    token and a same-origin Referer (Flask-WTF's check over HTTPS), and
    remembers every page seen so a test can search them all.
    """

    def __init__(self, app: Flask, base_url: str = HTTPS_BASE_URL) -> None:
        self.app = app
        self.base_url = base_url
        self.client = app.test_client()
        self.pages: list[TestResponse] = []

    def get(self, path: str, **options: object) -> TestResponse:
        return self._seen(self.client.get(path, base_url=self.base_url, **options))

    def post(self, path: str, data: Mapping[str, str], *, referer: str | None = "same-origin") -> TestResponse:
        headers = {}
        if referer == "same-origin":
            headers["Referer"] = self.base_url + path.split("?")[0]
        elif referer is not None:
            headers["Referer"] = referer
        return self._seen(self.client.post(path, base_url=self.base_url, data=dict(data), headers=headers))

    def submit(self, path: str, fields: Mapping[str, str]) -> TestResponse:
        """Open the form at ``path``, fill it in, send it."""
        token = csrf_token(self.get(path).get_data(as_text=True))
        return self.post(path, {**fields, "csrf_token": token})

    def change_password(
        self, username: str, current: str, new: str, confirm: str | None = None, *, entry: str = "/change"
    ) -> TestResponse:
        return self.submit(
            entry,
            {"username": username, "current": current, "new": new, "confirm": new if confirm is None else confirm},
        )

    def follow(self, response: TestResponse) -> TestResponse:
        assert response.status_code in (302, 303), response.status
        return self.get(response.headers["Location"])

    def _seen(self, response: TestResponse) -> TestResponse:
        self.pages.append(response)
        return response


AppFactory = Callable[..., Flask]


# -- slapd's own log of what it was asked ----------------------------------------------

_OPERATION = re.compile(r"conn=(\d+) (?:fd=\d+|op=\d+) (.*)$")

#: Kept from a log line: what was done and how it ended, not to whom.
_SHAPE = re.compile(
    r"^(ACCEPT|TLS established|BIND|SRCH|SEARCH RESULT tag=\d+ err=\d+|RESULT tag=\d+ err=\d+|UNBIND|closed)"
)


@dataclasses.dataclass
class SlapdLog:
    """slapd's per-operation log (-d stats), read in windows."""

    path: Path

    def mark(self) -> int:
        return self.path.stat().st_size

    def lines_since(self, mark: int) -> list[str]:
        """Log lines written since ``mark``, once every connection opened in
        that window has been closed (slapd logs the close a moment after the
        client's unbind; this waits for that, it does not time anything)."""
        deadline = time.monotonic() + 10
        while True:
            with self.path.open("rb") as log:
                log.seek(mark)
                lines = log.read().decode("utf-8", "replace").splitlines()
            opened = sum(" ACCEPT " in line for line in lines)
            closed = sum(line.endswith(" closed") for line in lines)
            if opened == closed or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)

    def work_since(self, mark: int) -> list[tuple[int, str]]:
        """The operations since ``mark`` as (connection, what), with connections
        numbered by first appearance and the entries they named left out.

        Grouped by connection: slapd logs each connection's operations in
        order, but the lines of two connections interleave as its threads
        happen to run (a search's result line may land before or after the
        next connection's ACCEPT), and that says nothing about the work."""
        connections: dict[str, int] = {}
        work: list[tuple[int, str]] = []
        for line in self.lines_since(mark):
            found = _OPERATION.search(line)
            if not found:
                continue
            shape = _SHAPE.match(found.group(2))
            if not shape:
                continue
            conn = connections.setdefault(found.group(1), len(connections))
            work.append((conn, shape.group(1)))
        return sorted(work, key=lambda operation: operation[0])  # stable: keeps each connection's order


def wait_listening(server: Slapd) -> None:
    """Wait for a slapd started by hand (not by lab.start_slapd) to take connections, or say why it will not."""
    port = int(server.ldaps_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"slapd exited with {server.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


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
    """A client of the app's own Redis, reached as the app reaches it (a Sentinel group too)."""
    return redisconn.connect(app.config["SSPM_SETTINGS"].redis_url, socket_timeout=5)


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
