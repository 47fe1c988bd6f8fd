"""Checks sent at the same instant get no more tries than one after the other would.

Every check of a caller at the helpdesk (an emailed code, two security
answers), of a staff member's own second factor, and of a code texted for
a new mobile number was right and counted as it should when sent alone.
These stories send several at once, as tabs or a script do, and hold them
together at the moment each has looked at what decides whether it may be
judged: whatever a check decides before it judges has then been decided
for all of them. Everything else is the real app against the real slapd,
Redis, database, mailbox and SMS folder (fixtures and helpers of
test_helpdesk.py, test_profile.py and test_staff_signin.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from lab import SeedAccount, Slapd
from lab.seed import ST_MARY
from sspm.account import attempts
from sspm.policy.reasons import Reason
from sspm.profile.service import CODE_TRIES
from sspm.web.auth import STAFF_COOKIE
from sspm.web.limits import limiter
from tests.flows.test_email import EMAIL_ENV
from tests.flows.test_helpdesk import (
    account_page,
    agent,
    asked,
    emailed_code,
    post,
    rows,
    with_probe,
)
from tests.flows.test_profile import ask_phone, code_in, details, signed_in, texts_to
from tests.flows.test_realms import staff_handle
from tests.flows.test_staff_signin import enrolled, give_password, wrong_code
from tests.support import Backing, services_of
from tests.support.flows import (
    COOKIE_DOMAIN,
    AppFactory,
    Visitor,
    account_id,
    csrf_token,
    reason_in,
    recover,
    says,
    seed_enrolled,
)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    """The app with the test-only page that signs staff in (test_helpdesk.py)."""
    return with_probe(build_app(slapd))


class LookedAtTogether:
    """Holds each racer just after its first look at whatever decides whether it may be judged, until all have looked.

    That look is a failure count read ("paused yet?") or bumped ("one more
    try"), or the code found still there. Once every racer has decided,
    they go on at once, as requests sent in the same instant do.
    """

    def __init__(self, racers: int) -> None:
        self.together = threading.Barrier(racers)
        self.looked = threading.local()

    def hold(self, owner: object, method: str, when: Callable[..., bool], monkeypatch: pytest.MonkeyPatch) -> None:
        """Hold racers after ``owner.method`` answers a call that ``when`` says is the look."""
        real = getattr(owner, method)

        def look(*args: Any, **kwargs: Any) -> Any:
            answer = real(*args, **kwargs)
            if when(*args) and not getattr(self.looked, "done", False):
                self.looked.done = True
                self.together.wait()
            return answer

        monkeypatch.setattr(owner, method, look)


def of_kind(kind: str) -> Callable[..., bool]:
    """A call to State about records of ``kind`` (its first argument)."""
    return lambda called, *_: called == kind


def at_once(sends: list[Callable[[], TestResponse]]) -> list[TestResponse]:
    """Send every request in the same instant, each from its own thread; their answers in the same order."""
    answers: list[Any] = [None] * len(sends)

    def send(index: int) -> None:
        answers[index] = sends[index]()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(sends))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def another_tab(app: Flask, staff_id: str, role: str = "helpdesk", organization: str = ST_MARY) -> Visitor:
    """The same agent signed in a second time: a second tab, a second window, or a script with its own cookies."""
    browser = Visitor(app)
    assert browser.get(f"/staff/test-helpdesk/start?staff={staff_id}&role={role}&org={organization}").status_code == 200
    return browser


def test_a_wrong_code_and_wrong_answers_sent_at_once_get_one_try_between_them(
    app: Flask,
    backing: Backing,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kevin's account has one try left; an agent's two tabs cannot turn it into two.

    Someone already failed Kevin's Unlock Account questions all but once.
    Then, on the phone with "Kevin", an agent emails a code in one tab and
    asks the security questions in another, and sends the caller's wrong
    code and wrong answers at the same instant. Had each read "not paused
    yet" before either was counted, both would be judged: a try past
    SSPM_RECOVERY_MAX_FAILURES. One is judged; the other is refused as
    paused, as it would be one after the other.
    """
    kevin = accounts["locked"]
    seed_enrolled(app, kevin)
    kevin_id = account_id(app, kevin.uid)
    limit = app.config["SSPM_SETTINGS"].recovery_max_failures
    for _ in range(limit - 1):
        assert says(recover(Visitor(app), "unlock", kevin.uid, {}), reason_in(app, Reason.ANSWERS_REFUSED))

    code_tab = agent(app, accounts["expiring"])
    questions_tab = another_tab(app, account_id(app, accounts["expiring"].uid))
    assert post(code_tab, f"/staff/helpdesk/account/{kevin_id}/code/send").status_code == 303
    right = emailed_code(app, backing, kevin)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert post(questions_tab, f"/staff/helpdesk/account/{kevin_id}/questions/ask").status_code == 303
    wrong_answers = {
        f"answer_{i}": "Not-The-Answer" for i, _ in enumerate(asked(app, account_page(questions_tab, kevin_id)))
    }
    state = services_of(app).state
    held = LookedAtTogether(2)
    held.hold(state, "count", of_kind(attempts.KIND), monkeypatch)
    held.hold(state, "hit", of_kind(attempts.KIND), monkeypatch)

    sent = at_once(
        [
            lambda: post(code_tab, f"/staff/helpdesk/account/{kevin_id}/code", {"code": wrong}),
            lambda: post(questions_tab, f"/staff/helpdesk/account/{kevin_id}/questions", wrong_answers),
        ]
    )

    assert [answer.status_code for answer in sent] == [422, 422]
    checks = [r.outcome for r in rows(app, "helpdesk_verify") if r.outcome not in ("code_sent", "questions_asked")]
    assert sorted(checks) == ["paused", "wrong"]


def test_codes_sent_at_once_for_a_new_mobile_number_get_no_more_tries_than_the_limit(
    build_app: AppFactory,
    slapd: Slapd,
    tmp_path: Path,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whoever asks to move John's mobile number to one they do not hold cannot guess its code by sending many at once.

    They have John's session and password, ask for the change, and then
    send guesses of the texted code from several pages in the same instant.
    Had each found the code still there before any wrong one was counted,
    every guess would be judged: more than CODE_TRIES. Only that many are;
    the others find the code ended, as they would one after the other,
    and the directory keeps no new number.
    """
    sms_dir = tmp_path / "sms"
    profile = build_app(slapd, SSPM_SMS_DIR=str(sms_dir), **EMAIL_ENV)
    john = accounts["normal"]
    racers = CODE_TRIES + 3
    pages = [signed_in(profile, john) for _ in range(racers)]
    assert ask_phone(pages[0], "613 555 0123", john.password).status_code == 303
    (text,) = texts_to(sms_dir, "+16135550123")
    wrong = f"{(int(code_in(text)) + 1) % 10**6:06d}"
    tokens = [csrf_token(page.get("/profile/phone/code").get_data(as_text=True)) for page in pages]
    LookedAtTogether(racers).hold(services_of(profile).state, "get", of_kind("phone-code"), monkeypatch)

    sent = at_once(
        [
            lambda page=page, token=token: page.post("/profile/phone/code", {"csrf_token": token, "code": wrong})
            for page, token in zip(pages, tokens, strict=True)
        ]
    )

    assert [answer.status_code for answer in sent] == [422] * racers
    judged = [row.outcome for row in rows(profile, "phone_changed")]
    assert len(judged) == CODE_TRIES and "too_many_wrong_codes" in judged
    assert details(profile, john.uid)[1] is None


def test_second_factor_codes_sent_at_once_get_no_more_tries_than_the_limit(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone with John's staff password cannot guess his authenticator code by sending many at once.

    They give the password once, then send a guessed code from many tabs
    (or a script with that session's cookie, from many addresses so no
    per-address limit stops it) in the same instant. Had each found the
    count below SSPM_LIMIT_PER_ACCOUNT before any wrong code was counted,
    every guess would be judged. Only that many are; the others wait (429),
    as they would one after the other.
    """
    allowed = 3
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT=f"{allowed} per hour")
    john = accounts["normal"]
    _first, secret, _codes = enrolled(app, john)
    racers = allowed + 4
    guesser = Visitor(app)
    assert give_password(guesser, john.uid, john.password).status_code == 303
    half = staff_handle(guesser)
    assert half is not None
    browsers = [Visitor(app) for _ in range(racers)]
    for browser in browsers:
        browser.client.set_cookie(STAFF_COOKIE, half, domain=COOKIE_DOMAIN, path="/staff", secure=True, httponly=True)
    tokens = [csrf_token(browser.get("/staff/signin/code").get_data(as_text=True)) for browser in browsers]
    guess = wrong_code(secret)
    # Where each decides whether it may be judged: the limiter's look at its count, or the count in Redis.
    held = LookedAtTogether(racers)
    held.hold(services_of(app).state, "hit", of_kind(attempts.KIND), monkeypatch)
    held.hold(limiter.limiter, "test", lambda _limit, *counted: "staff-code" in counted, monkeypatch)

    sent = at_once(
        [
            lambda browser=browser, token=token: browser.post(
                "/staff/signin/code", {"csrf_token": token, "code": guess}
            )
            for browser, token in zip(browsers, tokens, strict=True)
        ]
    )

    assert sorted(answer.status_code for answer in sent) == [422] * allowed + [429] * (racers - allowed)
    judged = [row for row in rows(app, "staff_second_factor") if row.outcome == "refused"]
    assert len(judged) == allowed
