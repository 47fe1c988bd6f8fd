"""What an outsider found by trying the self-service pages the way an attacker would.

Each story here is a gap that was shown against a running demo first: the
pages answered as they should to every ordinary request, and gave way only
to someone who sends many at once, spreads them over several pages, or
sends a form in a shape no browser sends it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence

import pytest
from flask import Flask

from connectors.directory import Outcome
from lab import SeedAccount, Slapd
from sspm.policy.questions import AnswerHasher
from tests.support import services_of
from tests.support.flows import (
    HTTPS_BASE_URL,
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    answer_fields,
    audit_rows,
    csrf_token,
    reason_in,
    says,
    seed_enrolled,
    sign_in,
    start,
    verdict,
)

#: A password someone sprays across many names, hoping one of them uses it.
SPRAYED = "Summer-Holiday-2026"


class AnswersJudgedTogether:
    """The app's own answer checks, each held once done until every racer's is done.

    So the answers sent at once leave their checks at once, as they do when
    a guesser fires them from many browsers in the same instant: nothing
    any of them counts afterwards is seen by the others before they decide.
    """

    def __init__(self, hasher: AnswerHasher, racers: int) -> None:
        self.real = hasher.verify_all
        self.together = threading.Barrier(racers)

    def __call__(self, pairs: Sequence[tuple[str | None, str]]) -> list[bool]:
        judged = self.real(pairs)
        self.together.wait()
        return judged


def test_answers_sent_all_at_once_get_no_more_tries_than_the_failure_limit(
    app: Flask, accounts: dict[str, SeedAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone guessing John's answers cannot beat the limit by sending many at once.

    They open Forgot Password in several browsers (a CAPTCHA each, within
    the per-name limit), get a challenge in each, and send every guess in
    the same instant. Had each read "not paused yet" before any failure was
    counted, every guess would be judged: more tries than
    SSPM_RECOVERY_MAX_FAILURES. Only that many may be judged; the others
    are refused as paused, as they would be one after the other.
    """
    john = accounts["normal"]
    seed_enrolled(app, john)
    limit = app.config["SSPM_SETTINGS"].recovery_max_failures
    racers = limit + 7
    guessers = [Visitor(app) for _ in range(racers)]
    guesses = []
    for guesser in guessers:
        assert start(guesser, "forgot", john.uid).status_code == 303
        challenge = guesser.get("/recovery/challenge")
        assert challenge.status_code == 200
        guesses.append(answer_fields(app, challenge, guesser, {}))
    hasher = services_of(app).hasher
    monkeypatch.setattr(hasher, "verify_all", AnswersJudgedTogether(hasher, racers))

    statuses: list[int] = []
    sent = [
        threading.Thread(target=lambda g=g, f=f: statuses.append(g.post("/recovery/challenge", f).status_code))
        for g, f in zip(guessers, guesses, strict=True)
    ]
    for thread in sent:
        thread.start()
    for thread in sent:
        thread.join()

    assert statuses == [422] * racers
    judged = [row.outcome for row in audit_rows(app) if row.subject == john.uid and row.action == "forgot_answers"]
    assert sorted(judged) == sorted(["wrong_or_not_enrolled"] * limit + ["paused"] * (racers - limit))


def test_guesses_spread_over_sign_in_and_change_share_one_per_address_limit(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    """Someone trying one password on many names cannot double the per-address limit by using two forms.

    Sign in and Change Password both tell whether a password is right.
    Were each counted apart, one address would get SSPM_LIMIT_PER_IP guesses
    on each of them (and on the phone entry's, which are the same pages):
    moving to another form must start no new count, for an address as for
    a name.
    """
    app = build_app(slapd, SSPM_LIMIT_PER_IP="4 per minute")
    sprayer = Visitor(app)
    laura = accounts["other"]
    assert sign_in(sprayer, "jsmith", SPRAYED).status_code == 422
    assert sign_in(sprayer, "nobody-1", SPRAYED, entry="/m").status_code == 422
    assert sprayer.change_password("klee", SPRAYED, NEW_PASSWORD).status_code == 422
    assert sprayer.change_password("nobody-2", SPRAYED, NEW_PASSWORD, entry="/m/change").status_code == 422

    fifth = sprayer.change_password(laura.uid, laura.password, NEW_PASSWORD)

    assert fifth.status_code == 429
    assert says(fifth, reason_in(app, "rate_limited"))
    assert verdict(services_of(app).directory, laura.uid, laura.password) is Outcome.OK


def send_as_json(visitor: Visitor, path: str, body: object) -> int:
    """Send ``body`` as JSON to a form's address, with the page's CSRF token in the header a script would use."""
    token = csrf_token(visitor.get(path).get_data(as_text=True))
    headers = {"X-CSRFToken": token, "Referer": HTTPS_BASE_URL + path}
    return visitor.client.post(path, json=body, headers=headers, base_url=HTTPS_BASE_URL).status_code


def test_a_form_sent_as_json_is_refused_so_the_per_name_limit_cannot_be_stepped_around(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    """Past John's per-name limit, the same sign-in sent as JSON is not checked either.

    Flask-WTF reads a JSON body as the form when there is no form body, but
    the limits count the name a form body carries: a JSON body was counted
    against no one's name (all of them in one bucket, the empty name's), so
    it was a second budget of guesses at John's password. Every form here is
    an HTML form: JSON is refused before anything is checked.
    """
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="2 per 30 minutes")
    guesser = Visitor(app)
    john = accounts["normal"]
    for guess in ("Wrong-Guess-1", "Wrong-Guess-2"):
        assert sign_in(guesser, john.uid, guess).status_code == 422
    assert sign_in(guesser, john.uid, john.password).status_code == 429

    assert send_as_json(guesser, "/signin", {"username": john.uid, "password": john.password}) == 415
    assert send_as_json(guesser, "/m/change", {"username": john.uid, "current": john.password}) == 415
    assert not [row for row in audit_rows(app) if row.subject == john.uid and row.outcome == "ok"]


@pytest.mark.parametrize("body", [[1, 2], "a string", {"username": 5, "password": "x"}, {"username": {"a": 1}}])
def test_a_json_body_of_any_shape_gets_the_form_error_page_not_a_crash(visitor: Visitor, body: object) -> None:
    """Odd JSON sent to a form is refused like any other bad request, never a 500 logged as a crash."""
    assert send_as_json(visitor, "/signin", body) == 415


def test_a_user_name_sent_as_a_file_gets_the_form_error_page_not_a_crash(visitor: Visitor) -> None:
    """A form field sent as an uploaded file (Flask-WTF reads files first) is refused, never a 500."""
    token = csrf_token(visitor.get("/signin").get_data(as_text=True))
    fields = {"csrf_token": token, "password": "Wrong-Guess-1", "username": (io.BytesIO(b"jsmith"), "name.txt")}
    sent = visitor.client.post(
        "/signin", data=fields, headers={"Referer": HTTPS_BASE_URL + "/signin"}, base_url=HTTPS_BASE_URL
    )
    assert sent.status_code == 415
