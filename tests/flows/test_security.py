"""What an attacker would try against Change Password, and what they get.

Each story checks the outcome twice: what the attacker sees, and what the
real directory says happened (nothing, in every case here).
"""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from sspm.app import create_app
from sspm.infra.settings import Settings
from sspm.web.fields import MAX_USERNAME
from tests.contract.test_directory import HOSTILE_LOGINS
from tests.support import services_of
from tests.support.flows import (
    HTTP_BASE_URL,
    HTTPS_BASE_URL,
    NEW_PASSWORD,
    AppFactory,
    SlapdLog,
    Visitor,
    csrf_token,
    reason_in,
    says,
    text_in,
)

WRONG_PASSWORD = "Not-My-Password-1"


def verdict(directory: Directory, login: str, password: str) -> Outcome:
    return directory.verify_password(login, password)[1].outcome


def app_directory(app: Flask) -> Directory:
    return services_of(app).directory


def change_fields(username: str, current: str, new: str = NEW_PASSWORD) -> dict[str, str]:
    return {"username": username, "current": current, "new": new, "confirm": new}


# -- forged and replayed forms ----------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    visitor.get("/change")

    page = visitor.post("/change", change_fields(john.uid, john.password))

    assert page.status_code == 400
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.BAD_CREDENTIALS


@pytest.mark.parametrize(
    "referer", [None, "https://evil.example/change", "http://sspm.partners.example/change"], ids=repr
)
def test_a_post_from_another_site_is_refused_even_with_a_valid_token(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount], referer: str | None
) -> None:
    john = accounts["normal"]
    token = csrf_token(visitor.get("/change").get_data(as_text=True))

    page = visitor.post("/change", {**change_fields(john.uid, john.password), "csrf_token": token}, referer=referer)

    assert page.status_code == 400
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_a_token_lifted_from_someone_elses_session_is_refused(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    attacker, victim = Visitor(app), Visitor(app)
    stolen = csrf_token(attacker.get("/change").get_data(as_text=True))
    victim.get("/change")
    john = accounts["normal"]

    page = victim.post("/change", {**change_fields(john.uid, john.password), "csrf_token": stolen})

    assert page.status_code == 400
    assert verdict(directory, john.uid, john.password) is Outcome.OK


# -- blank passwords never reach the directory -----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "blank"),
    [("current", ""), ("current", "   "), ("current", "\t \n"), ("new", ""), ("new", "  ")],
    ids=["empty current", "spaces as current", "whitespace as current", "empty new", "spaces as new"],
)
def test_a_blank_password_is_refused_without_a_single_bind(
    build_app: AppFactory,
    watched_slapd: tuple[Slapd, SlapdLog],
    accounts: dict[str, SeedAccount],
    field: str,
    blank: str,
) -> None:
    slapd, log = watched_slapd
    app = build_app(slapd)
    visitor = Visitor(app)
    john = accounts["normal"]
    fields = change_fields(john.uid, john.password)
    fields[field] = blank
    if field == "new":
        fields["confirm"] = blank
    mark = log.mark()

    page = visitor.submit("/change", fields)

    assert page.status_code == 422
    assert "BIND" not in [what for _, what in log.work_since(mark)]
    directory = app_directory(app)
    account = directory.find_account(john.uid)
    assert account is not None
    assert directory.status(account).failures == 0
    mark = log.mark()
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    assert (1, "BIND") in log.work_since(mark), "the log shows binds when there are some"


# -- hostile user names ---------------------------------------------------------------------------


@pytest.mark.parametrize("login", HOSTILE_LOGINS, ids=repr)
def test_a_hostile_user_name_gets_the_ordinary_wrong_credentials_page(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount], login: str
) -> None:
    john = accounts["normal"]

    page = visitor.change_password(login, john.password, NEW_PASSWORD)

    assert page.status_code == 422
    if len(login) > MAX_USERNAME:
        # Refused by the form before the directory: a length says nothing about accounts.
        assert says(page, text_in(visitor.app, "This user name is too long. Check it and try again."))
    else:
        assert says(page, reason_in(visitor.app, "bad_credentials"))
    assert verdict(directory, john.uid, john.password) is Outcome.OK


# -- attempt limits ---------------------------------------------------------------------------------


def test_the_per_name_limit_treats_an_unknown_name_exactly_like_a_real_one(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="3 per 30 minutes")
    visitor = Visitor(app)
    john = accounts["normal"]
    seen: dict[str, tuple[list[int], bytes]] = {}

    for name in (john.uid, "jsmyth"):
        statuses = [visitor.change_password(name, WRONG_PASSWORD, NEW_PASSWORD).status_code for _ in range(3)]
        # The fourth try carries the right password: it must not even be checked.
        fourth = visitor.change_password(name, john.password, NEW_PASSWORD)
        statuses.append(fourth.status_code)
        assert says(fourth, reason_in(app, "rate_limited"))
        seen[name] = (statuses, fourth.get_data())

    assert seen[john.uid][0] == seen["jsmyth"][0] == [422, 422, 422, 429]
    assert seen[john.uid][1] == seen["jsmyth"][1]
    directory = app_directory(app)
    account = directory.find_account(john.uid)
    assert account is not None
    # Three wrong binds, and no fourth (a right password would have cleared them).
    assert directory.status(account).failures == 3
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_the_per_name_limit_ignores_case_and_spaces_but_not_other_people(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="3 per 30 minutes")
    visitor = Visitor(app)
    john, laura = accounts["normal"], accounts["other"]
    for name in ("jsmith", "JSmith", " jsmith "):
        assert visitor.change_password(name, WRONG_PASSWORD, NEW_PASSWORD).status_code == 422

    assert visitor.change_password("JSMITH", john.password, NEW_PASSWORD).status_code == 429
    assert visitor.change_password(laura.uid, laura.password, NEW_PASSWORD).status_code == 303


def test_the_per_address_limit_stops_guessing_across_many_names(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_IP="5 per minute")
    visitor = Visitor(app)
    laura = accounts["other"]
    for name in ("jsmith", "nobody-1", "klee", "nobody-2", "achen"):
        assert visitor.change_password(name, WRONG_PASSWORD, NEW_PASSWORD).status_code == 422

    sixth = visitor.change_password(laura.uid, laura.password, NEW_PASSWORD)

    assert sixth.status_code == 429
    assert says(sixth, reason_in(app, "rate_limited"))
    assert verdict(app_directory(app), laura.uid, laura.password) is Outcome.OK


def test_loading_forgot_password_in_a_loop_is_limited_per_address_and_stops_filling_redis(
    build_app: AppFactory, slapd: Slapd
) -> None:
    # Each load without a cookie is a new visitor with a new CAPTCHA kept ten minutes in Redis.
    app = build_app(slapd, SSPM_LIMIT_PER_IP="5 per minute")
    redis = services_of(app).state.redis
    person = Visitor(app)
    form = person.get("/forgot")
    loads = [app.test_client().get("/forgot", base_url=HTTPS_BASE_URL).status_code for _ in range(10)]
    assert [form.status_code, *loads] == [200] * 10 + [429], "twice the limit on sending"
    unlock = [app.test_client().get("/unlock", base_url=HTTPS_BASE_URL).status_code for _ in range(11)]
    assert unlock == [200] * 10 + [429]
    assert len(redis.keys("sspm:captcha:*")) == 20, "a refused load keeps nothing"
    elsewhere = app.test_client().get("/forgot", base_url=HTTPS_BASE_URL, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert elsewhere.status_code == 200, "another address is not held up"
    # Sending the form loaded before is counted apart: the person who loaded it is not stopped.
    sent = person.post(
        "/forgot", {"csrf_token": csrf_token(form.get_data(as_text=True)), "username": "jsmith", "captcha": "nope"}
    )
    assert sent.status_code == 422 and says(sent, reason_in(app, "captcha_wrong"))


# -- no enumeration through the directory's work ------------------------------------------------------


def test_an_unknown_name_costs_the_directory_the_same_work_as_a_wrong_password(
    build_app: AppFactory, watched_slapd: tuple[Slapd, SlapdLog], accounts: dict[str, SeedAccount]
) -> None:
    """The same operations, on the same kinds of connection, with the same
    result codes; only the entries named (and the search's entry count)
    differ, and those never leave the server."""
    slapd, log = watched_slapd
    visitor = Visitor(build_app(slapd))
    # Opens the pooled service connection, so both measured tries find it open.
    visitor.change_password("warm-up", WRONG_PASSWORD, NEW_PASSWORD)

    mark = log.mark()
    assert visitor.change_password(accounts["normal"].uid, WRONG_PASSWORD, NEW_PASSWORD).status_code == 422
    known = log.work_since(mark)
    mark = log.mark()
    assert visitor.change_password("jsmyth", WRONG_PASSWORD, NEW_PASSWORD).status_code == 422
    unknown = log.work_since(mark)

    assert known == unknown
    assert (1, "BIND") in known
    assert (1, "RESULT tag=97 err=49") in known


# -- headers and cookies --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/change", "/m/change", "/", "/no-such-page"])
def test_every_page_forbids_framing_inline_scripts_and_sniffing(visitor: Visitor, path: str) -> None:
    headers = visitor.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_refusal_page_is_never_cached(visitor: Visitor) -> None:
    page = visitor.change_password("jsmith", WRONG_PASSWORD, NEW_PASSWORD)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def test_over_https_cookies_are_secure_http_only_and_same_site(visitor: Visitor) -> None:
    cookies = visitor.get("/change?lang=fr").headers.getlist("Set-Cookie")
    assert {c.split("=", 1)[0] for c in cookies} == {"sspm_session", "sspm_lang"}
    for cookie in cookies:
        assert "; Secure" in cookie
        assert "; HttpOnly" in cookie
        assert "; SameSite=Lax" in cookie


def test_over_plain_http_there_is_no_hsts_and_cookies_are_not_marked_secure(
    build_app: AppFactory, slapd: Slapd
) -> None:
    visitor = Visitor(build_app(slapd, SSPM_PUBLIC_BASE_URL=HTTP_BASE_URL), base_url=HTTP_BASE_URL)
    page = visitor.get("/change?lang=fr")
    assert "Strict-Transport-Security" not in page.headers
    cookies = page.headers.getlist("Set-Cookie")
    assert cookies
    for cookie in cookies:
        assert "; Secure" not in cookie
        assert "; HttpOnly" in cookie
        assert "; SameSite=Lax" in cookie


# -- secrets stay secret ------------------------------------------------------------------------------------


def test_no_password_ever_reaches_a_log_record_or_a_page(
    app: Flask, slapd: Slapd, accounts: dict[str, SeedAccount], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sspm")
    caplog.set_level(logging.DEBUG, logger="connectors")
    visitor = Visitor(app)
    john, laura, kevin = accounts["normal"], accounts["other"], accounts["locked"]
    too_short = "Ab1-xyz"

    assert visitor.change_password(john.uid, john.password, NEW_PASSWORD).status_code == 303
    assert visitor.change_password(laura.uid, WRONG_PASSWORD, NEW_PASSWORD).status_code == 422
    assert visitor.change_password("nobody-here", WRONG_PASSWORD, NEW_PASSWORD).status_code == 422
    assert visitor.change_password(laura.uid, laura.password, too_short).status_code == 422
    assert visitor.change_password(kevin.uid, kevin.password, NEW_PASSWORD).status_code == 422
    slapd.stop()
    assert visitor.change_password(laura.uid, laura.password, NEW_PASSWORD).status_code == 503

    secrets = [john.password, laura.password, kevin.password, NEW_PASSWORD, WRONG_PASSWORD, too_short]
    # Something was logged, so the silence about passwords means something.
    messages = [record.getMessage() for record in caplog.records]
    assert any("password changed for account" in m for m in messages)
    assert any("directory unavailable" in m for m in messages)
    logged = caplog.text + "\n".join(messages + [repr(r.args) + str(r.exc_text) for r in caplog.records])
    for secret in secrets:
        assert secret not in logged
        for page in visitor.pages:
            assert secret not in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no-such-page", 404), ("PUT", "/change", 405), ("DELETE", "/m/change/done", 405)],
)
def test_an_error_page_shows_no_stack_trace(visitor: Visitor, method: str, path: str, status: int) -> None:
    page = visitor.client.open(path, method=method, base_url=HTTPS_BASE_URL)
    body = page.get_data(as_text=True)
    assert page.status_code == status
    assert says(page, text_in(visitor.app, "Page not found"))
    assert "Traceback" not in body
    assert 'File "' not in body
    assert "werkzeug" not in body.lower()


def test_a_post_larger_than_64_kib_is_refused_and_changes_nothing(
    visitor: Visitor, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    token = csrf_token(visitor.get("/change").get_data(as_text=True))
    fields = {**change_fields(john.uid, john.password), "csrf_token": token, "padding": "x" * (64 * 1024)}

    page = visitor.post("/change", fields)

    assert page.status_code == 413
    assert "Traceback" not in page.get_data(as_text=True)
    assert verdict(directory, john.uid, john.password) is Outcome.OK


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_an_unexpected_error_shows_a_plain_page_that_never_claims_nothing_was_changed(
    settings: Settings, lang: str
) -> None:
    """A bug can strike after the directory took a new password (it once did: a locked database).

    So the page for an unexpected error must not say "nothing was changed":
    the user would retry with the old password, be refused, and lock the
    account. It says part of it may be done and to try the new password
    first, in the user's language, and shows nothing of the error.
    No real part fails on demand the way a bug does, so the test app gets
    one page that raises.
    """
    app = create_app(settings)
    secret = "secret-detail-0xC0FFEE"

    def broken() -> str:
        raise RuntimeError(secret)

    app.add_url_rule("/broken", "broken", broken)
    try:
        page = app.test_client().get(f"/broken?lang={lang}", base_url=HTTPS_BASE_URL)
    finally:
        services_of(app).close()

    body = page.get_data(as_text=True)
    assert page.status_code == 500
    assert says(page, text_in(app, "Something went wrong on our side", lang))
    assert says(page, text_in(app, TRY_THE_NEW_ONE_FIRST, lang))
    assert not says(page, text_in(app, "Nothing was changed", lang))
    assert "nothing was changed" not in body.lower() and "rien n’a été modifié" not in body.lower()
    assert secret not in body and "Traceback" not in body


TRY_THE_NEW_ONE_FIRST = (
    "We could not finish this, and part of it may have been done: if you were setting a password, "
    "try the new one first. Then wait a minute and try again; if it keeps happening, contact your help desk."
)
