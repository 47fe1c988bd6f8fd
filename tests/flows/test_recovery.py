"""Forgot Password and Unlock Account through security questions, as users walk them.

A story that ends in "done" is checked against the directory; a story that
ends in a refusal is checked for what did not happen.
"""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask
from markupsafe import escape

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from sspm.web.messages import lra_contact
from tests.support import services_of
from tests.support.flows import (
    NEW_PASSWORD,
    WRONG,
    AppFactory,
    Visitor,
    answer,
    answer_fields,
    asked,
    audit_rows,
    browser_session,
    captcha_text,
    csrf_token,
    echoed_username,
    lock_by_wrong_binds,
    pool_of,
    put_back_cookie,
    recover,
    remaining,
    says,
    says_reason,
    seed_enrolled,
    session_cookie,
    set_new_password,
    start,
    text_in,
    verdict,
    without_echo,
)

#: These stories write to SSPM's store: they run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases

RESET_DONE = "Your password has been reset successfully."
UNLOCK_DONE = "The account unlock has been done successfully."
GONE_TITLE = "We could not confirm your identity"


def says_whom_to_contact(body: str, app: Flask) -> bool:
    """The failure tells someone who never enrolled whom to contact."""
    with app.test_request_context("/"):
        return str(escape(lra_contact())) in body


# -- the stories that end well ---------------------------------------------------------------


def test_a_user_who_forgot_the_password_sets_a_new_one_and_only_the_new_one_works(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)

    started = start(visitor, "forgot", john.uid)
    assert started.status_code == 303
    assert started.headers["Location"] == "/recovery/challenge"
    challenge = visitor.get("/recovery/challenge")
    assert f"<strong>{john.uid}</strong> (PARTNERS)" in challenge.get_data(as_text=True)
    assert len(asked(app, challenge)) == 2
    assert set(asked(app, challenge)) <= set(DEMO_ANSWERS)
    passed = visitor.post("/recovery/challenge", answer_fields(app, challenge, visitor, DEMO_ANSWERS))
    assert passed.status_code == 303
    assert passed.headers["Location"] == "/recovery/new-password"
    form = visitor.follow(passed)
    assert says(form, text_in(app, "Choose a new password"))
    assert 'id="strength"' in form.get_data(as_text=True), "the backbone's meter, not a copy"

    sent = set_new_password(visitor, NEW_PASSWORD)

    assert sent.status_code == 303
    done = visitor.follow(sent)
    assert says(done, RESET_DONE)
    assert says(done, text_in(app, "Back to home"))
    # An administrative reset, but not a temporary password: it works as it is.
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS


def test_a_reset_also_unlocks_a_locked_account(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    seed_enrolled(app, laura)
    lock_by_wrong_binds(directory, laura.uid)
    assert verdict(directory, laura.uid, laura.password) is Outcome.LOCKED
    visitor = Visitor(app)

    assert recover(visitor, "forgot", laura.uid, DEMO_ANSWERS).status_code == 303
    assert set_new_password(visitor, NEW_PASSWORD).status_code == 303

    account = directory.find_account(laura.uid)
    assert account is not None
    assert not directory.status(account).locked
    assert verdict(directory, laura.uid, NEW_PASSWORD) is Outcome.OK


def test_a_locked_out_user_unlocks_the_account_and_the_old_password_works_again(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    lock_by_wrong_binds(directory, john.uid)
    assert verdict(directory, john.uid, john.password) is Outcome.LOCKED
    visitor = Visitor(app)

    unlocked = recover(visitor, "unlock", john.uid, DEMO_ANSWERS)

    assert unlocked.status_code == 303
    assert unlocked.headers["Location"] == "/recovery/done"
    done = visitor.follow(unlocked)
    assert says(done, UNLOCK_DONE)
    account = directory.find_account(john.uid)
    assert account is not None
    assert not directory.status(account).locked
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    # The done page is said once: a reload goes home.
    assert visitor.get("/recovery/done").status_code == 302


def test_whoever_proves_the_account_is_theirs_sees_how_it_was_locked_and_nobody_else_does(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    """A nurse locked out at 3 a.m. can tell her own typos from someone else trying, once she has answered."""
    john = accounts["normal"]
    seed_enrolled(app, john)
    lock_by_wrong_binds(directory, john.uid)
    account = directory.find_account(john.uid)
    assert account is not None
    status = directory.status(account)
    stranger = Visitor(app)
    started = start(stranger, "unlock", john.uid)
    assert not says(stranger.follow(started), "What happened to your account"), "not before the answers"

    done = Visitor(app)
    page = done.follow(recover(done, "unlock", john.uid, DEMO_ANSWERS))

    assert says(page, UNLOCK_DONE)
    assert says(page, "What happened to your account")
    assert says(page, f"{status.failures} wrong passwords were typed.")
    body = page.get_data(as_text=True)
    assert body.count("<time datetime=") == len(status.failure_times) == status.failures
    assert "It was locked on" in body
    assert not says(done.get("/recovery/done"), "What happened to your account"), "said once"


def test_the_new_password_page_after_the_answers_shows_the_lockout_before_it_is_cleared(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    seed_enrolled(app, laura)
    lock_by_wrong_binds(directory, laura.uid)
    visitor = Visitor(app)

    form = visitor.follow(recover(visitor, "forgot", laura.uid, DEMO_ANSWERS))

    assert form.status_code == 200
    assert says(form, "What happened to your account") and says(form, "It was locked on")


def test_an_account_nobody_failed_shows_no_lockout_section(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    seed_enrolled(app, laura)
    visitor = Visitor(app)

    form = visitor.follow(recover(visitor, "forgot", laura.uid, DEMO_ANSWERS))

    assert form.status_code == 200
    assert not says(form, "What happened to your account")


def test_the_phone_entry_walks_the_whole_way(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)

    started = start(visitor, "forgot", john.uid, entry="/m")
    assert started.headers["Location"] == "/m/recovery/challenge"
    passed = answer(visitor, DEMO_ANSWERS, entry="/m")
    assert passed.headers["Location"] == "/m/recovery/new-password"
    sent = set_new_password(visitor, NEW_PASSWORD, entry="/m")
    assert sent.headers["Location"] == "/m/recovery/done"
    assert says(visitor.follow(sent), RESET_DONE)
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK


def test_a_french_speaker_is_asked_the_questions_in_french(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    catalogue = services_of(app).catalogue

    assert start(visitor, "unlock", john.uid, query="?lang=fr").status_code == 303
    challenge = visitor.get("/recovery/challenge")

    questions = asked(app, challenge)
    assert len(questions) == 2
    for question in questions:
        assert says(challenge, catalogue.by_id[question].in_language("fr"))
        assert not says(challenge, catalogue.by_id[question].in_language("en"))
    assert says(challenge, text_in(app, "Answer your security questions to unlock your account", "fr"))
    passed = visitor.post("/recovery/challenge", answer_fields(app, challenge, visitor, DEMO_ANSWERS))
    assert says(visitor.follow(passed), text_in(app, UNLOCK_DONE, "fr"))


# -- the one verdict ---------------------------------------------------------------------------------


def test_a_wrong_answer_fails_with_one_verdict_that_names_no_question(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    pages = {}
    for case in ("first right, second wrong", "second right, first wrong", "both wrong"):
        visitor = Visitor(app)
        assert start(visitor, "forgot", john.uid).status_code == 303
        challenge = visitor.get("/recovery/challenge")
        first, second = asked(app, challenge)
        right = {"first": first, "second": second}.get(case.split()[0])
        answers = {right: DEMO_ANSWERS[right]} if right else {}
        page = visitor.post("/recovery/challenge", answer_fields(app, challenge, visitor, answers))
        pages[case] = (page.status_code, without_echo(page.get_data(as_text=True), john.uid))

    assert len(set(pages.values())) == 1
    status, body = pages["both wrong"]
    assert status == 422
    assert says_reason(body, app, "answers_refused")
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_a_reload_of_the_challenge_asks_the_same_questions(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    assert start(visitor, "forgot", john.uid).status_code == 303

    shown = [asked(app, visitor.get("/recovery/challenge")) for _ in range(4)]

    assert all(questions == shown[0] for questions in shown)


@pytest.mark.parametrize("purpose", ["forgot", "unlock"])
def test_not_enrolled_unknown_and_disabled_users_meet_the_same_challenge_and_the_same_failure(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], purpose: str
) -> None:
    john, laura, ravi = accounts["normal"], accounts["other"], accounts["disabled"]
    seed_enrolled(app, laura, ravi)  # john is not enrolled; ravi is, but disabled
    tries = {
        "enrolled, wrong answers": (laura.uid, {}),
        "not enrolled": (john.uid, DEMO_ANSWERS),
        "unknown": ("jsmyth", DEMO_ANSWERS),
        "disabled, right answers": (ravi.uid, DEMO_ANSWERS),
    }
    challenges, failures = {}, {}
    for case, (name, answers) in tries.items():
        visitor = Visitor(app)
        started = start(visitor, purpose, name)
        assert (started.status_code, started.headers["Location"]) == (303, "/recovery/challenge"), case
        page = visitor.get("/recovery/challenge")
        assert len(asked(app, page)) == 2, case
        assert 0 < remaining(page) <= 300, case
        body = page.get_data(as_text=True)
        for question in asked(app, page):
            body = body.replace(services_of(app).catalogue.by_id[question].in_language("en"), "QUESTION")
        body = body.replace(f'data-remaining="{remaining(page)}"', "")
        challenges[case] = (page.status_code, without_echo(body, name))
        failed = visitor.post("/recovery/challenge", answer_fields(app, page, visitor, answers))
        failures[case] = (failed.status_code, without_echo(failed.get_data(as_text=True), name))

    # The clock's text is drawn from the same number: drop its digits too.
    shapes = {case: (s, re.sub(r"\d+:\d\d|\d+ minutes", "T", b)) for case, (s, b) in challenges.items()}
    assert len(set(shapes.values())) == 1, shapes.keys()
    assert len(set(failures.values())) == 1, failures.keys()
    status, body = failures["unknown"]
    assert status == 422
    assert says_reason(body, app, "answers_refused")
    assert says_whom_to_contact(body, app)
    assert verdict(directory, ravi.uid, ravi.password) is Outcome.DISABLED


def test_decoy_questions_stay_the_same_across_tries_like_a_real_users(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, laura)  # john is not enrolled; "jsmyth" is nobody
    offered = {q.id for q in services_of(app).catalogue.offered(app.config["SSPM_SETTINGS"].questions_offered)}
    pools = {name: pool_of(app, name) for name in (laura.uid, john.uid, "jsmyth")}

    assert pools[laura.uid] == set(DEMO_ANSWERS), "an enrolled user is asked from the three she chose"
    for name, pool in pools.items():
        assert len(pool) == 3 and pool <= offered, name
        # Every try draws two from the same fixed three: the pool is the same each time.
        for _ in range(4):
            visitor = Visitor(app)
            assert start(visitor, "forgot", name).status_code == 303
            questions = asked(app, visitor.get("/recovery/challenge"))
            assert len(set(questions)) == 2 and set(questions) <= pool, name
            assert pool_of(app, name) == pool, name
        # The same name typed another way is the same person, with the same questions.
        assert pool_of(app, f" {name.upper()} ") == pool, name


# -- what cannot be done -----------------------------------------------------------------------------


def test_an_answer_after_the_countdown_is_refused_even_when_right(
    build_app: AppFactory, slapd: Slapd, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_CHALLENGE_SECONDS="1")
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    assert start(visitor, "forgot", john.uid).status_code == 303
    challenge = visitor.get("/recovery/challenge")
    fields = answer_fields(app, challenge, visitor, DEMO_ANSWERS)

    time.sleep(1.2)
    late = visitor.post("/recovery/challenge", fields)

    assert late.status_code == 422
    assert says_reason(late.get_data(as_text=True), app, "too_late")
    assert "recovery_pass" not in browser_session(visitor)
    assert visitor.get("/recovery/new-password").status_code == 410
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    assert ("forgot_answers", "late") in [(row.action, row.outcome) for row in audit_rows(app)]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_new_password_page_cannot_be_reached_by_skipping_the_questions(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount], method: str
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    # Someone who started, and jumps over the questions.
    assert start(visitor, "forgot", john.uid).status_code == 303
    token = csrf_token(visitor.get("/recovery/challenge").get_data(as_text=True))

    if method == "GET":
        page = visitor.get("/recovery/new-password")
    else:
        page = visitor.post(
            "/recovery/new-password", {"csrf_token": token, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        )

    assert page.status_code == 410
    assert says(page, GONE_TITLE)
    assert says_reason(page.get_data(as_text=True), app, "challenge_gone")
    assert verdict(directory, john.uid, john.password) is Outcome.OK
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.BAD_CREDENTIALS


def test_a_replayed_answer_form_is_refused(app: Flask, directory: Directory, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    assert start(visitor, "forgot", john.uid).status_code == 303
    challenge = visitor.get("/recovery/challenge")
    fields = answer_fields(app, challenge, visitor, DEMO_ANSWERS)
    before = session_cookie(visitor)
    assert visitor.post("/recovery/challenge", fields).status_code == 303

    # The same request again, from the same browser...
    again = visitor.post("/recovery/challenge", fields)
    # ... and with the cookie as it was before the answers were sent.
    assert before is not None
    put_back_cookie(visitor, before)
    replayed = visitor.post("/recovery/challenge", fields)

    for page in (again, replayed):
        assert page.status_code == 410
        assert says_reason(page.get_data(as_text=True), app, "challenge_gone")
    assert "recovery_pass" not in browser_session(visitor)
    assert visitor.get("/recovery/new-password").status_code == 410
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_another_browser_cannot_answer_someone_elses_challenge(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    owner, other = Visitor(app), Visitor(app)
    assert start(owner, "forgot", john.uid).status_code == 303
    challenge = owner.get("/recovery/challenge")
    questions = asked(app, challenge)
    # The other browser has a form of its own (its token, its CAPTCHA) and the right answers.
    other.get("/forgot")
    fields = {"csrf_token": csrf_token(other.get("/forgot").get_data(as_text=True)), "captcha": captcha_text(other)}
    fields |= {f"answer_{i}": DEMO_ANSWERS[q] for i, q in enumerate(questions)}

    page = other.post("/recovery/challenge", fields)

    assert page.status_code == 410
    assert other.get("/recovery/new-password").status_code == 410
    # The owner's challenge is untouched by it, and still works for its owner.
    assert owner.post("/recovery/challenge", answer_fields(app, challenge, owner, DEMO_ANSWERS)).status_code == 303
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_starting_again_retires_the_challenge_this_browser_had(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    assert start(visitor, "forgot", john.uid).status_code == 303
    with_first = session_cookie(visitor)

    assert start(visitor, "forgot", john.uid).status_code == 303
    assert visitor.get("/recovery/challenge").status_code == 200

    # Going back to the first challenge with the cookie that held it:
    assert with_first is not None
    put_back_cookie(visitor, with_first)
    page = visitor.get("/recovery/challenge")

    assert page.status_code == 410
    assert says_reason(page.get_data(as_text=True), app, "challenge_gone")
    assert verdict(directory, john.uid, john.password) is Outcome.OK


def test_the_pass_to_a_new_password_is_used_once(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    assert recover(visitor, "forgot", john.uid, DEMO_ANSWERS).status_code == 303
    holding_pass = session_cookie(visitor)
    form = visitor.get("/recovery/new-password")
    assert form.status_code == 200
    token = csrf_token(form.get_data(as_text=True))
    assert set_new_password(visitor, NEW_PASSWORD).status_code == 303

    assert visitor.get("/recovery/new-password").status_code == 410
    assert holding_pass is not None
    put_back_cookie(visitor, holding_pass)
    second = "Tundra-Mosaic-Beacon-71"
    again = visitor.post("/recovery/new-password", {"csrf_token": token, "new": second, "confirm": second})

    assert again.status_code == 410
    assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(directory, john.uid, second) is Outcome.BAD_CREDENTIALS


# -- the CAPTCHA -------------------------------------------------------------------------------------


def test_a_wrong_captcha_is_refused_with_a_new_image(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    page = visitor.get("/forgot")
    shown, first_id = captcha_text(visitor), browser_session(visitor)["captcha"]
    wrong = "".join("A" if c != "A" else "C" for c in shown)

    refused_page = visitor.post(
        "/forgot", {"csrf_token": csrf_token(page.get_data(as_text=True)), "username": john.uid, "captcha": wrong}
    )

    assert refused_page.status_code == 422
    assert says_reason(refused_page.get_data(as_text=True), app, "captcha_wrong")
    assert browser_session(visitor)["captcha"] != first_id, "a new image"
    assert captcha_text(visitor) != "" and "challenge" not in browser_session(visitor)
    image = visitor.get("/captcha/image.png")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert 'href="/captcha/audio.wav"' in refused_page.get_data(as_text=True), "with its audio version"

    # At the questions too: a wrong CAPTCHA there does not spend the challenge.
    assert start(visitor, "forgot", john.uid).status_code == 303
    challenge = visitor.get("/recovery/challenge")
    fields = answer_fields(app, challenge, visitor, DEMO_ANSWERS)
    again = visitor.post("/recovery/challenge", {**fields, "captcha": wrong})
    assert again.status_code == 422
    assert says_reason(again.get_data(as_text=True), app, "captcha_wrong")
    assert visitor.post("/recovery/challenge", answer_fields(app, again, visitor, DEMO_ANSWERS)).status_code == 303
    # Both refusals are on the audit trail.
    refused = [(row.action, row.outcome) for row in audit_rows(app) if row.outcome == "captcha_wrong"]
    assert refused == [("forgot_start", "captcha_wrong"), ("forgot_answers", "captcha_wrong")]


def test_a_captcha_is_good_for_one_try_only(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    page = visitor.get("/forgot")
    fields = {"csrf_token": csrf_token(page.get_data(as_text=True)), "username": john.uid}
    fields["captcha"] = captcha_text(visitor)
    before = session_cookie(visitor)
    assert visitor.post("/forgot", fields).status_code == 303

    assert before is not None
    put_back_cookie(visitor, before)
    again = visitor.post("/forgot", fields)

    assert again.status_code == 422
    assert says_reason(again.get_data(as_text=True), app, "captcha_wrong")


def test_a_new_image_keeps_the_typed_user_name(app: Flask) -> None:
    visitor = Visitor(app)
    page = visitor.get("/unlock")
    first_id = browser_session(visitor)["captcha"]

    fresh = visitor.post(
        "/unlock",
        {"csrf_token": csrf_token(page.get_data(as_text=True)), "username": "jsmith", "action": "new-image"},
    )

    assert fresh.status_code == 200
    assert echoed_username(fresh.get_data(as_text=True)) == "jsmith"
    assert browser_session(visitor)["captcha"] != first_id
    assert not says(fresh, text_in(app, "There is a problem"))


def test_wrong_answers_leave_a_real_user_free_to_start_again(
    app: Flask, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    assert recover(visitor, "forgot", john.uid, {q: WRONG for q in DEMO_ANSWERS}).status_code == 422

    assert recover(visitor, "forgot", john.uid, DEMO_ANSWERS).status_code == 303
