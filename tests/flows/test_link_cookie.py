"""An opened reset link leaves no secret in the browser's cookie.

Flask's session cookie is signed, not encrypted: anyone who sees it (a
shared PC's profile, a proxy log, a browser extension) reads it with a
base64 decoder. So an attacker who gets hold of the cookie of someone who
opened a reset link decodes it, looking for the link's token, or the
token's SHA-256 (what the store finds the link by). Neither is there: the
cookie holds a random handle, which is good once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from tests.flows.test_email import (
    EMAIL_ENV,
    is_link_gone,
    one_link_for,
    open_link,
    redis_values,
    set_password_by_link,
    token_of,
    verdict,
)
from tests.support import Backing
from tests.support.flows import NEW_PASSWORD, AppFactory, Visitor, csrf_token, put_back_cookie, session_cookie


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


def read_by_anyone(cookie: str) -> str:
    """What the cookie says, decoded without the key: base64, zlib when it starts with a dot."""
    payload = cookie.split(".")[1] if cookie.startswith(".") else cookie.split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if cookie.startswith(".") else raw).decode()


def read_with_the_key(app: Flask, cookie: str) -> str:
    """The same, as the app itself reads it (itsdangerous, signature checked)."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert isinstance(serializer, URLSafeTimedSerializer)
    return json.dumps(serializer.loads(cookie))


def test_the_cookie_of_an_opened_link_holds_neither_the_token_nor_its_digest(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    link = one_link_for(app, visitor, backing.mailbox, john)
    token = token_of(link)
    digest = hashlib.sha256(token.encode()).hexdigest()

    form = open_link(visitor, link)

    assert form.status_code == 200
    cookie = session_cookie(visitor)
    assert cookie is not None
    for seen in (cookie, read_by_anyone(cookie), read_with_the_key(app, cookie)):
        assert token not in seen
        assert digest not in seen
    assert token.encode() not in b"\n".join(redis_values(app)), "the server side keeps only the digest"

    # The link still does its job.
    assert set_password_by_link(visitor, NEW_PASSWORD, form=form).status_code == 303
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_the_handle_in_the_cookie_opens_the_form_once_only(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    form = open_link(visitor, one_link_for(app, visitor, backing.mailbox, john))
    copied = session_cookie(visitor)
    assert copied is not None
    assert set_password_by_link(visitor, NEW_PASSWORD, form=form).status_code == 303

    # Someone replays the cookie copied while the form was open.
    thief = Visitor(app)
    put_back_cookie(thief, copied)
    assert is_link_gone(app, thief.get("/reset"))
    put_back_cookie(thief, copied)
    fields = {"new": "Another-Quarry-Violet-17", "confirm": "Another-Quarry-Violet-17"}
    sent = thief.post("/reset", {**fields, "csrf_token": csrf_token(form.get_data(as_text=True))})
    assert sent.status_code == 410
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert not [value for value in redis_values(app) if value.startswith(b"sspm:reset-link:")]
