"""A directory that stops answering must not take the rest of SSPM with it.

slapd is stopped with SIGSTOP: its sockets stay open, nothing answers, as a
hung server or a black-holed network looks. Requests that need it wait at
most their bounds and then get the plain "try again" page; no more than
LDAP_MAX_CALLS of them wait at once in a process, so pages that do not need
the directory (the home page, static files) are still served; once a call
got no answer, the next ones fail at once; and when the directory is back,
everything works again. What this costs in time under gunicorn is measured
by bench/frozen_directory.py, not asserted here.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

import connectors.ldapbase
from connectors.directory import DirectoryUnavailable
from connectors.guard import Guard
from lab import SeedAccount, Slapd
from tests.support import services_of
from tests.support.flows import AppFactory, Visitor, csrf_token, reason_in, says, text_in

STATIC = "/static/css/sspm.css"


@contextmanager
def frozen(slapd: Slapd) -> Iterator[None]:
    """slapd stopped (SIGSTOP) for the block, and continued whatever happens."""
    slapd.process.send_signal(signal.SIGSTOP)
    try:
        tasks = Path(f"/proc/{slapd.process.pid}/task")
        wait_until(lambda: all(_stopped(stat) for stat in tasks.glob("*/stat")))
        yield
    finally:
        slapd.process.send_signal(signal.SIGCONT)


def _stopped(stat: Path) -> bool:
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return True  # the thread is gone


def wait_until(condition: Callable[[], bool], *, within: float = 60.0) -> None:
    """Wait for ``condition`` (a liveness check with a generous bound, not a timing)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def guard_of(app: Flask) -> Guard:
    guard = getattr(services_of(app).directory, "guard", None)
    assert isinstance(guard, Guard)
    return guard


class SignIn:
    """Someone who opened the sign-in page before the outage and sends it during it."""

    def __init__(self, app: Flask, person: SeedAccount) -> None:
        self.visitor = Visitor(app)
        self.person = person
        self.token = csrf_token(self.visitor.get("/signin").get_data(as_text=True))
        self.answer: TestResponse | None = None

    def send(self) -> TestResponse:
        fields = {"username": self.person.uid, "password": self.person.password, "csrf_token": self.token}
        self.answer = self.visitor.post("/signin", fields)
        return self.answer


def test_while_the_directory_is_frozen_other_pages_are_served_and_extra_requests_fail_at_once(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    # Each operation may wait an hour here: the two sign-ins below wait exactly until the thaw.
    app = build_app(slapd, LDAP_MAX_CALLS="2", LDAP_QUEUE_TIMEOUT="1", LDAP_TIMEOUT="3600")
    guard = guard_of(app)
    john, laura = SignIn(app, accounts["normal"]), SignIn(app, accounts["other"])
    alice = SignIn(app, accounts["expiring"])
    waiting = [threading.Thread(target=person.send) for person in (john, laura)]
    passer_by = Visitor(app)

    with frozen(slapd):
        for thread in waiting:
            thread.start()
        wait_until(lambda: guard.in_flight == 2)

        # A third sign-in does not queue behind them: it gets the "try again" page.
        refused = alice.send()
        assert refused.status_code == 503
        assert says(refused, reason_in(app, "unavailable"))
        # Pages that do not need the directory are served as usual.
        home = passer_by.get("/")
        assert home.status_code == 200
        assert says(home, text_in(app, "Your new password must:"))
        assert passer_by.get(STATIC).status_code == 200
        assert all(thread.is_alive() for thread in waiting), "the two sign-ins were still waiting on the directory"

    for thread in waiting:
        thread.join()
    # The two that waited got the directory's answer once it was back; the next one just works.
    assert john.answer is not None and john.answer.status_code == 303
    assert laura.answer is not None and laura.answer.status_code == 303
    assert SignIn(app, accounts["expiring"]).send().status_code == 303
    assert guard.in_flight == 0


def test_after_the_directory_did_not_answer_requests_fail_at_once_and_all_works_again_when_it_is_back(
    build_app: AppFactory,
    slapd: Slapd,
    accounts: dict[str, SeedAccount],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The home page re-reads the policy on every view, as it does once it is 5 minutes old.
    monkeypatch.setattr(connectors.ldapbase, "POLICY_TTL_SECONDS", 0.0)
    app = build_app(slapd, LDAP_TIMEOUT="1", LDAP_CONNECT_TIMEOUT="1", LDAP_RETRY_AFTER="1")
    guard = guard_of(app)
    john = accounts["normal"]

    with frozen(slapd):
        first = SignIn(app, john)
        assert first.send().status_code == 503
        assert says(first.answer, reason_in(app, "unavailable"))  # type: ignore[arg-type]
        assert guard.open
        assert any("did not answer in time" in record.getMessage() for record in caplog.records)
        # The home page still shows the rules, as last read from the directory.
        home = Visitor(app).get("/")
        assert home.status_code == 200
        assert says(home, text_in(app, "Your new password must:"))
        assert not says(home, reason_in(app, "unavailable"))

    def answers() -> bool:
        # Asked of the connector, not through the sign-in page: its attempt limits would count the tries.
        try:
            return services_of(app).directory.find_account(john.uid) is not None
        except DirectoryUnavailable:
            return False

    wait_until(answers)
    assert not guard.open
    assert SignIn(app, john).send().status_code == 303
