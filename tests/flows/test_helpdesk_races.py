"""Checks sent at the same instant get no more tries than one after the other would.

Every check of a caller (an emailed code, two security answers) and of a
staff member's own second factor was right and counted as it should when
sent alone. These stories send several at once, as two tabs or a script
do, and hold them together at the moment each has looked at the failure
counter: whatever a check decides before it judges has then been decided
for all of them. Everything else is the real app against the real slapd,
Redis, database and mailbox (fixtures and helpers of test_helpdesk.py).
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
from sspm.infra.state import State
from sspm.policy.reasons import Reason
from sspm.profile.service import CODE_TRIES
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
from tests.support import Backing, services_of
from tests.support.flows import AppFactory, Visitor, account_id, csrf_token, reason_in, recover, says, seed_enrolled


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    """The app with the test-only page that signs staff in (test_helpdesk.py)."""
    return with_probe(build_app(slapd))


class LookedAtTogether:
    """Holds each racer just after its first look at a ``kind`` of record in Redis, until every racer has looked.

    The look is where a check decides whether it may be judged: reading a
    failure counter ("paused yet?"), bumping it ("one more try"), or
    finding the code still there. Once all have decided, they go on at
    once, as requests sent in the same instant do.
    """

    def __init__(self, racers: int, kind: str, *looks: str) -> None:
        self.kind = kind
        self.looks = looks
        self.together = threading.Barrier(racers)
        self.looked = threading.local()

    def install(self, state: State, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in self.looks:
            monkeypatch.setattr(state, name, self._held(getattr(state, name)))

    def _held(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def look(kind: str, *args: Any) -> Any:
            answer = real(kind, *args)
            if kind == self.kind and not getattr(self.looked, "done", False):
                self.looked.done = True
                self.together.wait()
            return answer

        return look


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
    LookedAtTogether(2, attempts.KIND, "count", "hit").install(state, monkeypatch)

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
    LookedAtTogether(racers, "phone-code", "get").install(services_of(profile).state, monkeypatch)

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
