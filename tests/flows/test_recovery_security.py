"""Forgot Password and Unlock Account against someone guessing.

No user name may be told apart from another, by construction: the work
each request does (directory calls, argon2 verifications, SQL statements,
Redis commands) is counted and must be the same for an enrolled, a
not-enrolled, a disabled and an unknown account. Limits hold across app
instances, everything is audited without a secret, and a Redis outage is
a polite "try again", never a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import event

from connectors import open_directory
from connectors.directory import Account, Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.redis import start_redis
from sspm.app import create_app
from sspm.policy.questions import normalise
from sspm.web.fields import MAX_USERNAME
from tests.contract.test_directory import HOSTILE_LOGINS
from tests.support import services_of, settings_for
from tests.support.flows import (
    NEW_PASSWORD,
    WRONG,
    AppFactory,
    Visitor,
    account_id,
    answer,
    answer_fields,
    any_csrf_token,
    app_redis,
    asked,
    audit_rows,
    browser_session,
    captcha_text,
    csrf_token,
    pool_of,
    recover,
    says,
    says_reason,
    seed_enrolled,
    set_new_password,
    sign_in,
    start,
    stored_answers,
    text_in,
    verdict,
    without_echo,
)

BUSY_TITLE = "Please try again in a minute"


class CountingDirectory:
    """The real connector, keeping a tally of every call made to it."""

    def __init__(self, real: Directory) -> None:
        self.real = real
        self.calls: Counter[str] = Counter()

    def _tally(self, name: str) -> None:
        self.calls[name] += 1

    def check(self) -> None:
        self._tally("check")
        self.real.check()

    def find_account(self, login: str) -> Account | None:
        self._tally("find_account")
        return self.real.find_account(login)

    def get_account(self, account_id: str) -> Account | None:
        self._tally("get_account")
        return self.real.get_account(account_id)

    def verify_password(self, login: str, password: str) -> Any:
        self._tally("verify_password")
        return self.real.verify_password(login, password)

    def change_password(self, account: Account, old: str, new: str) -> Outcome:
        self._tally("change_password")
        return self.real.change_password(account, old, new)

    def reset_password(self, account: Account, new: str, *, must_change: bool) -> Outcome:
        self._tally("reset_password")
        return self.real.reset_password(account, new, must_change=must_change)

    def status(self, account: Account) -> Any:
        self._tally("status")
        return self.real.status(account)

    def unlock(self, account: Account) -> Outcome:
        self._tally("unlock")
        return self.real.unlock(account)

    def policy(self) -> Any:
        self._tally("policy")
        return self.real.policy()

    def close(self) -> None:
        self.real.close()


@dataclasses.dataclass(frozen=True)
class Work:
    directory: tuple[tuple[str, int], ...]
    verifications: int
    statements: tuple[str, ...]
    redis_commands: tuple[tuple[str, int], ...]


class WorkMeter:
    """Counts what one request costs the outside systems of an app."""

    def __init__(self, app: Flask, directory: CountingDirectory) -> None:
        self.app = app
        self.directory = directory
        self.statements: list[str] = []
        self.redis = app_redis(app)
        event.listen(services_of(app).store.engine, "before_cursor_execute", self._statement)

    def _statement(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        self.statements.append(" ".join(statement.split()))

    def _redis_calls(self) -> Counter[str]:
        stats = self.redis.info("commandstats")
        return Counter({name: int(value["calls"]) for name, value in stats.items()})

    def measure(self, request: Any) -> tuple[Any, Work]:
        hasher = services_of(self.app).hasher
        calls, verifications = Counter(self.directory.calls), hasher.verifications
        self.statements.clear()
        redis_before = self._redis_calls()
        response = request()
        redis_after = self._redis_calls()
        redis_after.subtract(redis_before)
        redis_after["cmdstat_info"] -= 1  # the meter's own INFO
        directory = Counter(self.directory.calls)
        directory.subtract(calls)
        return response, Work(
            directory=tuple(sorted((+directory).items())),
            verifications=hasher.verifications - verifications,
            statements=tuple(self.statements),
            redis_commands=tuple(sorted((+redis_after).items())),
        )


@pytest.fixture
def counted(slapd: Slapd) -> Iterator[tuple[Flask, WorkMeter]]:
    settings = settings_for(slapd)
    directory = CountingDirectory(open_directory(settings.directory_kind, settings.directory))
    app = create_app(settings, directory=directory)
    yield app, WorkMeter(app, directory)
    services_of(app).close()


# -- the same work, whoever the name belongs to ---------------------------------------------------


@pytest.mark.parametrize("purpose", ["forgot", "unlock"])
def test_every_kind_of_user_name_costs_the_same_work_at_both_steps(
    counted: tuple[Flask, WorkMeter], accounts: dict[str, SeedAccount], purpose: str
) -> None:
    app, meter = counted
    john, laura, ravi = accounts["normal"], accounts["other"], accounts["disabled"]
    seed_enrolled(app, laura, ravi)
    cases = {
        "warm-up": ("warm-up", {}),
        "enrolled, wrong answers": (laura.uid, {q: WRONG for q in DEMO_ANSWERS}),
        "not enrolled": (john.uid, DEMO_ANSWERS),
        "disabled, enrolled, right answers": (ravi.uid, DEMO_ANSWERS),
        "unknown": ("jsmyth", DEMO_ANSWERS),
    }
    seen: dict[str, dict[str, Any]] = {}
    for case, (name, answers) in cases.items():
        visitor = Visitor(app)
        form = visitor.get(f"/{purpose}")
        fields = {"csrf_token": csrf_token(form.get_data(as_text=True)), "username": name}
        fields["captcha"] = captcha_text(visitor)
        started, start_work = meter.measure(lambda v=visitor, f=fields: v.post(f"/{purpose}", f))
        challenge, page_work = meter.measure(lambda v=visitor: v.get("/recovery/challenge"))
        fields = answer_fields(app, challenge, visitor, answers)
        judged, answer_work = meter.measure(lambda v=visitor, f=fields: v.post("/recovery/challenge", f))
        seen[case] = {
            "start work": start_work,
            "start page": (started.status_code, started.headers.get("Location"), started.get_data(as_text=True)),
            "challenge page work": page_work,
            "answer work": answer_work,
            "answer page": (
                judged.status_code,
                judged.headers.get("Location"),
                without_echo(judged.get_data(as_text=True), name),
            ),
        }
    del seen["warm-up"]

    for aspect in ("start work", "start page", "challenge page work", "answer work", "answer page"):
        values = {case: facts[aspect] for case, facts in seen.items()}
        assert len(set(values.values())) == 1, f"{aspect} differs: {values}"
    some = next(iter(seen.values()))
    # The counts are of real work: a directory lookup, two argon2 checks, statements, commands.
    assert dict(some["start work"].directory) == {"find_account": 1}
    assert some["start work"].verifications == 0
    assert some["answer work"].verifications == 2
    assert some["answer work"].statements and some["answer work"].redis_commands
    assert some["start page"][:2] == (303, "/recovery/challenge")
    assert some["answer page"][0] == 422
    assert says_reason(some["answer page"][2], app, "answers_refused")


def test_an_unknown_name_is_asked_only_questions_a_real_user_could_have_chosen(app: Flask) -> None:
    settings = app.config["SSPM_SETTINGS"]
    choosable = {q.id for q in services_of(app).catalogue.offered(settings.questions_offered)}
    assert len(services_of(app).catalogue.questions) > len(choosable), "the catalogue holds more than is offered"

    for i in range(10):
        # The whole pool a name's challenges draw from, not a sample of two drawn from it.
        pool = pool_of(app, f"nobody-{i}")
        assert len(pool) == 3 and pool <= choosable, f"nobody-{i} may be asked {pool}: no enrolled user could be"
        visitor = Visitor(app)
        assert start(visitor, "forgot", f"nobody-{i}").status_code == 303
        assert set(asked(app, visitor.get("/recovery/challenge"))) <= pool


# -- limits ---------------------------------------------------------------------------------------------


def test_past_the_failure_limit_even_right_answers_fail_in_the_same_words_on_every_instance(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    limit = app.config["SSPM_SETTINGS"].recovery_max_failures
    for name in (john.uid, "jsmyth"):
        for _ in range(limit):
            assert recover(Visitor(app), "forgot", name, {}).status_code == 422

    # A second web process of the same deployment: same settings, Redis and database.
    second = create_app(app.config["SSPM_SETTINGS"])
    try:
        pages = {}
        for name in (john.uid, "jsmyth"):
            page = recover(Visitor(second), "forgot", name, DEMO_ANSWERS)
            pages[name] = (page.status_code, without_echo(page.get_data(as_text=True), name))
    finally:
        services_of(second).close()

    assert pages[john.uid] == pages["jsmyth"]
    assert pages[john.uid][0] == 422
    assert says_reason(pages[john.uid][1], second, "answers_refused")
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    outcomes = [(row.action, row.outcome) for row in audit_rows(app) if row.subject == john.uid]
    assert outcomes[-1] == ("forgot_answers", "paused")


def test_the_failure_limit_holds_however_the_name_is_typed(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    for _ in range(app.config["SSPM_SETTINGS"].recovery_max_failures):
        assert recover(Visitor(app), "forgot", john.uid, {}).status_code == 422

    for typed in ("JSmith", " jsmith ", "jsmith@partners.example"):
        page = recover(Visitor(app), "forgot", typed, DEMO_ANSWERS)

        assert page.status_code == 422, typed
        assert says_reason(page.get_data(as_text=True), app, "answers_refused")


def test_the_per_address_limit_on_starting_treats_known_and_unknown_names_alike(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_IP="3 per minute")
    john = accounts["normal"]
    seed_enrolled(app, john)
    for name in ("achen", "nobody-1", "klee"):
        assert start(Visitor(app), "forgot", name).status_code == 303
    issued = [row for row in audit_rows(app) if row.outcome == "challenge_issued"]

    pages = {}
    for name in (john.uid, "jsmyth"):
        page = start(Visitor(app), "forgot", name)
        pages[name] = (page.status_code, page.get_data(as_text=True))

    assert pages[john.uid] == pages["jsmyth"]
    assert pages[john.uid][0] == 429
    assert says_reason(pages[john.uid][1], app, "rate_limited")
    rows = audit_rows(app)
    assert len([row for row in rows if row.outcome == "challenge_issued"]) == len(issued), (
        "no challenge was made past the limit"
    )
    # Both refusals are on the audit trail, neither with the name that was typed.
    limited = [row for row in rows if row.outcome == "rate_limited"]
    assert len(limited) == 2
    assert all(row.account_id is None and row.subject.startswith("unknown:") for row in limited)
    # Another address is not held back by this one.
    other = Visitor(app)
    other.client.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert start(other, "forgot", john.uid).status_code == 303


# -- the audit trail, and secrets ---------------------------------------------------------------------


def test_every_attempt_success_and_refusal_is_audited_and_no_secret_is_kept_or_logged(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sspm")
    caplog.set_level(logging.DEBUG, logger="connectors")
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, laura)
    ip = "203.0.113.9"

    def visitor() -> Visitor:
        someone = Visitor(app)
        someone.client.environ_base["REMOTE_ADDR"] = ip
        return someone

    # john enrolls through the page, then resets his password through his answers.
    johns = visitor()
    assert sign_in(johns, john.uid, john.password).status_code == 303
    assert johns.submit("/enroll/edit", {"password": john.password} | _picks()).status_code == 303
    wrong = visitor()
    assert recover(wrong, "forgot", john.uid, {}).status_code == 422
    reset = visitor()
    assert recover(reset, "forgot", john.uid, JOHNS_ANSWERS).status_code == 303
    assert set_new_password(reset, NEW_PASSWORD).status_code == 303
    # laura unlocks; somebody tries a name that does not exist.
    assert recover(visitor(), "unlock", laura.uid, DEMO_ANSWERS).status_code == 303
    assert recover(visitor(), "unlock", "jsmyth", DEMO_ANSWERS).status_code == 422

    rows = audit_rows(app)
    facts = [(r.action, r.outcome, r.subject, r.source_ip) for r in rows]
    unknown = next(r.subject for r in rows if r.subject.startswith("unknown:"))
    for expected in [
        ("sign_in", "ok", john.uid, ip),
        ("enroll", "ok", john.uid, ip),
        ("forgot_start", "challenge_issued", john.uid, ip),
        ("forgot_answers", "wrong_or_not_enrolled", john.uid, ip),
        ("forgot_answers", "ok", john.uid, ip),
        ("forgot_reset", "ok", john.uid, ip),
        ("unlock_start", "challenge_issued", laura.uid, ip),
        ("unlock_answers", "ok", laura.uid, ip),
        ("unlock", "ok", laura.uid, ip),
        ("unlock_start", "challenge_issued", unknown, ip),
        ("unlock_answers", "wrong_or_not_enrolled", unknown, ip),
    ]:
        assert expected in facts, expected
    assert "jsmyth" not in unknown, "a typed name that is no account is kept only as a digest"
    assert all(r.at is not None for r in rows)
    # The account is known by its immutable id as well as its name.
    assert {r.account_id for r in rows if r.subject == john.uid} == {account_id(app, john.uid)}

    secrets = [john.password, laura.password, NEW_PASSWORD, WRONG, *DEMO_ANSWERS.values(), *_picks().values()]
    secrets += [normalise(s) for s in secrets]
    kept = "\n".join(
        " ".join(str(getattr(r, column.name)) for column in r.__table__.columns)  # type: ignore[attr-defined]
        for r in rows
    )
    messages = [record.getMessage() for record in caplog.records]
    logged = caplog.text + "\n".join(messages + [repr(r.args) + str(r.exc_text) for r in caplog.records])
    assert caplog.records, "the log was listened to, so its silence about secrets counts"
    held = "\n".join(redis_contents(app_redis(app)))
    for secret in secrets:
        assert secret not in kept, secret
        assert secret not in logged, secret
        assert secret not in held, secret
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def redis_contents(store: redis.Redis) -> Iterator[str]:
    """Every value Redis holds (challenges, CAPTCHAs, sessions, counters, queued jobs), as text."""
    for key in store.scan_iter():
        kind = store.type(key)
        values = [store.get(key)] if kind == b"string" else list(store.hgetall(key).values()) if kind == b"hash" else []
        for value in values:
            if value is None:
                continue
            with contextlib.suppress(zlib.error):
                value = zlib.decompress(value)  # RQ keeps job data compressed
            yield value.decode("utf-8", "replace")


JOHNS_ANSWERS = {"childhood-street": "Maple Avenue", "first-job": "Paper round", "first-pet": "Pepper"}


def _picks() -> dict[str, str]:
    """John's answers as the enrollment form sends them."""
    fields = {}
    for i, (question, reply) in enumerate(JOHNS_ANSWERS.items()):
        fields |= {f"question_{i}": question, f"answer_{i}": reply}
    return fields


# -- forged forms ----------------------------------------------------------------------------------------


def test_every_form_refuses_a_post_without_its_csrf_token(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, laura)

    def refused_without_token(visitor: Visitor, path: str, fields: dict[str, str]) -> None:
        page = visitor.post(path, fields)
        assert page.status_code == 400, path
        assert says(page, text_in(app, "This page has expired"))

    signing = Visitor(app)
    signing.get("/signin")
    refused_without_token(signing, "/signin", {"username": john.uid, "password": john.password})
    assert "sid" not in browser_session(signing)
    assert sign_in(signing, john.uid, john.password).status_code == 303
    refused_without_token(signing, "/enroll/edit", {"password": john.password} | _picks())
    assert stored_answers(app, account_id(app, john.uid)) == []
    refused_without_token(signing, "/signout", {})
    assert signing.get("/enroll").status_code == 200, "still signed in"
    signing.post("/signout", {"csrf_token": any_csrf_token(signing.get("/enroll").get_data(as_text=True))})

    recovering = Visitor(app)
    for purpose in ("forgot", "unlock"):
        recovering.get(f"/{purpose}")
        fields = {"username": laura.uid, "captcha": captcha_text(recovering)}
        refused_without_token(recovering, f"/{purpose}", fields)
        refused_without_token(recovering, f"/{purpose}", {"username": laura.uid, "action": "new-image"})
        assert "challenge" not in browser_session(recovering)
    assert start(recovering, "forgot", laura.uid).status_code == 303
    challenge = recovering.get("/recovery/challenge")
    fields = answer_fields(app, challenge, recovering, DEMO_ANSWERS)
    del fields["csrf_token"]
    refused_without_token(recovering, "/recovery/challenge", fields)
    assert "recovery_pass" not in browser_session(recovering)
    # The challenge was not spent by the forged post: the real form still goes through.
    fields["csrf_token"] = csrf_token(challenge.get_data(as_text=True))
    assert recovering.post("/recovery/challenge", fields).status_code == 303
    refused_without_token(recovering, "/recovery/new-password", {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert verdict(directory, laura.uid, laura.password) is Outcome.OK


# -- Redis away -----------------------------------------------------------------------------------------


def test_with_redis_stopped_recovery_asks_to_try_again_and_works_once_redis_is_back(
    build_app: AppFactory, slapd: Slapd, directory: Directory, accounts: dict[str, SeedAccount], tmp_path: Path
) -> None:
    own = start_redis(tmp_path / "own-redis")
    try:
        app = build_app(slapd, SSPM_REDIS_URL=own.url)
        laura = accounts["other"]
        seed_enrolled(app, laura)
        # Three people, each at a different step when Redis stops.
        starting, answering, choosing = Visitor(app), Visitor(app), Visitor(app)
        token = csrf_token(starting.get("/forgot").get_data(as_text=True))
        shown = captcha_text(starting)
        assert start(answering, "forgot", laura.uid).status_code == 303
        challenge = answering.get("/recovery/challenge")
        answers = answer_fields(app, challenge, answering, DEMO_ANSWERS)
        assert recover(choosing, "forgot", laura.uid, DEMO_ANSWERS).status_code == 303
        new_password_token = csrf_token(choosing.get("/recovery/new-password").get_data(as_text=True))

        own.stop()
        pages = [
            starting.get("/forgot"),
            starting.get("/m/unlock"),
            starting.get("/captcha/image.png"),
            starting.post("/forgot", {"csrf_token": token, "username": laura.uid, "captcha": shown}),
            answering.get("/recovery/challenge"),
            answering.post("/recovery/challenge", answers),
            choosing.get("/recovery/new-password"),
            choosing.post(
                "/recovery/new-password",
                {"csrf_token": new_password_token, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            ),
        ]
        for page in pages:
            assert page.status_code == 503, page.request.path
            body = page.get_data(as_text=True)
            if page.mimetype == "text/html":
                assert says(page, text_in(app, BUSY_TITLE))
            assert "Traceback" not in body
        assert starting.get("/signin").status_code == 200, "a page that needs no Redis still opens"

        assert verdict(directory, laura.uid, laura.password) is Outcome.OK, "nothing was changed"

        own = start_redis(tmp_path / "own-redis", port=own.port)
        back = Visitor(app)
        assert recover(back, "forgot", laura.uid, DEMO_ANSWERS).status_code == 303
        assert set_new_password(back, NEW_PASSWORD).status_code == 303
    finally:
        own.stop()
    assert verdict(directory, laura.uid, NEW_PASSWORD) is Outcome.OK


@pytest.mark.parametrize("login", HOSTILE_LOGINS, ids=repr)
def test_a_hostile_user_name_never_reaches_an_enrolled_account_through_recovery(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], login: str
) -> None:
    """Wildcards, filter syntax, NULs and DNs typed as a user name get decoys, never jsmith's questions."""
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)

    started = start(visitor, "forgot", login)

    if len(login) > MAX_USERNAME:
        assert started.status_code == 422  # refused by the form, before any lookup
        return
    assert started.status_code == 303
    # Even answering with jsmith's real answers does not pass.
    answered = answer(visitor, DEMO_ANSWERS)
    assert answered.status_code == 422
    assert says_reason(answered.get_data(as_text=True), app, "answers_refused")
    assert verdict(directory, john.uid, john.password) is Outcome.OK
