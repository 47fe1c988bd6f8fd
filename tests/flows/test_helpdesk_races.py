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
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from lab import SeedAccount, Slapd
from lab.seed import ST_MARY
from sspm.account import attempts
from sspm.infra.state import State
from sspm.policy.reasons import Reason
from tests.flows.test_helpdesk import (
    account_page,
    agent,
    asked,
    emailed_code,
    post,
    rows,
    with_probe,
)
from tests.support import Backing, services_of
from tests.support.flows import AppFactory, Visitor, account_id, reason_in, recover, says, seed_enrolled


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    """The app with the test-only page that signs staff in (test_helpdesk.py)."""
    return with_probe(build_app(slapd))


class CounterLookedAtTogether:
    """Holds each racer just after its first look at a failure counter of ``kind``, until every racer has looked.

    Whether a check reads the counter ("paused yet?") or bumps it ("one
    more try"), that first look is where it decides whether it may be
    judged; once all have decided, they go on at once.
    """

    def __init__(self, state: State, kind: str, racers: int) -> None:
        self.kind = kind
        self.together = threading.Barrier(racers)
        self.looked = threading.local()
        self.real_count, self.real_hit = state.count, state.hit

    def _first_look(self, kind: str, answer: int) -> int:
        if kind == self.kind and not getattr(self.looked, "done", False):
            self.looked.done = True
            self.together.wait()
        return answer

    def count(self, kind: str, key: str) -> int:
        return self._first_look(kind, self.real_count(kind, key))

    def hit(self, kind: str, key: str, window: int) -> int:
        return self._first_look(kind, self.real_hit(kind, key, window))

    def install(self, state: State, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(state, "count", self.count)
        monkeypatch.setattr(state, "hit", self.hit)


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
    CounterLookedAtTogether(state, attempts.KIND, 2).install(state, monkeypatch)

    sent = at_once(
        [
            lambda: post(code_tab, f"/staff/helpdesk/account/{kevin_id}/code", {"code": wrong}),
            lambda: post(questions_tab, f"/staff/helpdesk/account/{kevin_id}/questions", wrong_answers),
        ]
    )

    assert [answer.status_code for answer in sent] == [422, 422]
    checks = [r.outcome for r in rows(app, "helpdesk_verify") if r.outcome not in ("code_sent", "questions_asked")]
    assert sorted(checks) == ["paused", "wrong"]
