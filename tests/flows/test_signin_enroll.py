"""Signing in and out, and enrolling security questions, as people do it.

Every story ends by looking where the truth is: the session record in
Redis, the answer table in SSPM's store, or the directory itself.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape

from connectors.directory import Directory
from lab import PEOPLE_DN, SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from tests.support import services_of
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    account_id,
    any_csrf_token,
    app_redis,
    as_directory_admin,
    browser_session,
    csrf_token,
    enroll,
    put_back_cookie,
    reason_in,
    recover,
    says,
    seed_enrolled,
    sentence,
    session_cookie,
    sign_in,
    stored_answers,
    text_in,
    without_echo,
)

#: These stories write to SSPM's store: they run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_databases

#: Three of the five offered questions, and answers a person would give.
PICKS = {"first-school": "Riverside Elementary", "first-pet": "Biscuit", "parents-met": "Montréal "}
OTHER_PICKS = {"childhood-street": "Maple Avenue", "first-job": "Paper round", "first-pet": "Pepper"}
OFFERED = ["first-school", "childhood-street", "first-pet", "parents-met", "first-job"]
WRONG_PASSWORD = "Not-My-Password-1"


def session_key(visitor: Visitor) -> str:
    """The Redis key of this browser's signed-in session."""
    handle = browser_session(visitor)["sid"]
    return "sspm:session:" + hashlib.sha256(handle.encode()).hexdigest()


def is_signed_in(visitor: Visitor) -> bool:
    page = visitor.get("/enroll")
    if page.status_code == 302:
        assert "/signin" in page.headers["Location"]
        return False
    assert page.status_code == 200, page.status
    return True


def signed_in(app: Flask, person: SeedAccount) -> Visitor:
    visitor = Visitor(app)
    assert sign_in(visitor, person.uid, person.password).status_code == 303
    return visitor


# -- signing in and out -------------------------------------------------------------------


@pytest.mark.parametrize(
    "login",
    ["jsmith", "JSmith", "jsmith@partners.example", "JSmith@Partners.Example"],
    ids=["by user name", "by user name in capitals", "by email", "by email in capitals"],
)
def test_a_user_signs_in_by_user_name_or_by_email(
    visitor: Visitor, accounts: dict[str, SeedAccount], login: str
) -> None:
    john = accounts["normal"]

    sent = sign_in(visitor, login, john.password)

    assert sent.status_code == 303
    assert sent.headers["Location"].endswith("/enroll")
    home = visitor.follow(sent)
    assert home.status_code == 200
    assert says(home, john.display_name)


def test_signing_in_issues_a_new_session_id_and_retires_the_old_one(
    visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    visitor.get("/signin")
    before = session_cookie(visitor)
    assert before is not None and "sid" not in browser_session(visitor)

    assert sign_in(visitor, john.uid, john.password).status_code == 303
    first = session_cookie(visitor)
    first_sid = browser_session(visitor)["sid"]
    assert first not in (None, before)

    # The cookie from before signing in is worth nothing, whoever holds it.
    put_back_cookie(visitor, before)
    assert not is_signed_in(visitor)

    # Signing in again in the same browser (someone else at the same desk) starts
    # another session and ends the one it replaces.
    assert first is not None
    put_back_cookie(visitor, first)
    assert says(visitor.get("/enroll"), john.display_name)
    assert sign_in(visitor, laura.uid, laura.password).status_code == 303
    assert browser_session(visitor)["sid"] != first_sid
    assert says(visitor.get("/enroll"), laura.display_name)
    put_back_cookie(visitor, first)
    assert not is_signed_in(visitor)


def test_signing_out_ends_the_session_for_real(visitor: Visitor, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    assert sign_in(visitor, john.uid, john.password).status_code == 303
    key = session_key(visitor)
    signed_in_cookie = session_cookie(visitor)
    page = visitor.get("/enroll")
    assert app_redis(visitor.app).exists(key)

    out = visitor.post("/signout", {"csrf_token": any_csrf_token(page.get_data(as_text=True))})

    assert out.status_code == 303
    assert not app_redis(visitor.app).exists(key)
    assert not is_signed_in(visitor)
    # A copy of the cookie taken before signing out opens nothing either.
    assert signed_in_cookie is not None
    put_back_cookie(visitor, signed_in_cookie)
    assert not is_signed_in(visitor)


def test_each_request_keeps_the_session_alive_for_the_idle_time_again(
    visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    idle_seconds = visitor.app.config["SSPM_SETTINGS"].session_idle_minutes * 60
    assert sign_in(visitor, john.uid, john.password).status_code == 303
    key, store = session_key(visitor), app_redis(visitor.app)
    # Shorten what is left, as if the user had been away: the next request restores it.
    store.expire(key, 5)

    assert is_signed_in(visitor)

    assert idle_seconds - 5 < store.ttl(key) <= idle_seconds


def test_a_session_left_idle_ends(build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]) -> None:
    app = build_app(slapd)
    visitor = Visitor(app)
    john = accounts["normal"]
    assert sign_in(visitor, john.uid, john.password).status_code == 303
    key = session_key(visitor)
    # The idle time is the record's TTL: cut to a second, as if the user had been away that long.
    app_redis(app).expire(key, 1)

    time.sleep(1.5)

    assert not is_signed_in(visitor)
    assert not app_redis(app).exists(key)


def test_a_session_ends_after_the_absolute_time_however_busy_it_is(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    from tests.flows.test_realms import rewrite  # test_realms imports this module

    app = build_app(slapd)
    visitor = Visitor(app)
    john = accounts["normal"]
    assert sign_in(visitor, john.uid, john.password).status_code == 303
    key = session_key(visitor)
    assert app_redis(app).exists(key), "the session was opened, with its idle time still to run"
    # Started longer ago than the limit, and used all along (its idle time still runs).
    hours = app.config["SSPM_SETTINGS"].session_max_hours
    rewrite(app, key, started=time.time() - hours * 3600 - 1)

    assert not is_signed_in(visitor)
    assert not app_redis(app).exists(key)


@pytest.mark.parametrize(
    ("state", "reason"),
    [("temporary", "must_change"), ("expired", "expired")],
    ids=["a temporary password", "an expired password"],
)
def test_a_password_that_must_be_changed_leads_from_sign_in_to_the_change_page(
    visitor: Visitor, accounts: dict[str, SeedAccount], state: str, reason: str
) -> None:
    person = accounts[state]

    sent = sign_in(visitor, person.uid, person.password)

    assert sent.status_code == 303
    assert f"/change?reason={reason}&username={person.uid}" in sent.headers["Location"]
    change = visitor.follow(sent)
    assert change.status_code == 200
    assert says(change, reason_in(visitor.app, reason))
    assert f'value="{person.uid}"' in change.get_data(as_text=True)
    assert not is_signed_in(visitor)


def test_wrong_unknown_locked_and_disabled_all_read_the_same_at_sign_in(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john, kevin, ravi = accounts["normal"], accounts["locked"], accounts["disabled"]
    tries = {
        "wrong password": (john.uid, WRONG_PASSWORD),
        "unknown name": ("jsmyth", john.password),
        "locked, right password": (kevin.uid, kevin.password),
        "disabled, right password": (ravi.uid, ravi.password),
    }
    seen = {}
    for case, (login, password) in tries.items():
        visitor = Visitor(app)
        page = sign_in(visitor, login, password)
        seen[case] = (page.status_code, without_echo(page.get_data(as_text=True), login))
        assert not is_signed_in(visitor)

    assert len(set(seen.values())) == 1, seen.keys()
    status, body = seen["wrong password"]
    assert status == 422
    assert str(escape(reason_in(app, "bad_credentials"))) in body


# -- enrollment -----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "comes_back_to"), [("/enroll", "enroll.index"), ("/enroll/edit", "enroll.edit")])
def test_enrollment_needs_a_signed_in_user_and_comes_back_after_sign_in(
    visitor: Visitor, accounts: dict[str, SeedAccount], path: str, comes_back_to: str
) -> None:
    john = accounts["normal"]

    page = visitor.get(path)

    assert page.status_code == 302
    assert page.headers["Location"] == f"/signin?next={comes_back_to}"
    form = visitor.get(page.headers["Location"]).get_data(as_text=True)
    assert f'name="next" type="hidden" value="{comes_back_to}"' in form
    sent = visitor.post(
        "/signin",
        {"csrf_token": csrf_token(form), "username": john.uid, "password": john.password, "next": comes_back_to},
    )
    assert sent.status_code == 303
    assert sent.headers["Location"] == path


def test_after_sign_in_only_our_own_pages_are_a_destination(visitor: Visitor, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    for elsewhere in ("https://evil.example/", "//evil.example/enroll", "/change", "change.form"):
        form = visitor.get("/signin").get_data(as_text=True)
        fields = {"csrf_token": csrf_token(form), "username": john.uid, "password": john.password}

        sent = visitor.post("/signin", fields | {"next": elsewhere})

        assert sent.status_code == 303
        assert sent.headers["Location"] == "/enroll", elsewhere


def test_a_post_to_enrollment_without_signing_in_stores_nothing(
    visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    token = csrf_token(visitor.get("/signin").get_data(as_text=True))
    fields = {"csrf_token": token, "password": john.password}
    for i, (question, answer) in enumerate(PICKS.items()):
        fields |= {f"question_{i}": question, f"answer_{i}": answer}

    page = visitor.post("/enroll/edit", fields)

    assert page.status_code == 302
    assert "/signin" in page.headers["Location"]
    assert stored_answers(visitor.app) == []


def test_a_user_enrolls_three_of_the_five_offered_questions_and_only_argon2id_hashes_are_kept(
    app: Flask, accounts: dict[str, SeedAccount], tmp_path: Path
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    form = visitor.get("/enroll/edit").get_data(as_text=True)
    for i in range(3):
        select = re.search(rf'<select[^>]*name="question_{i}".*?</select>', form, re.S)
        assert select, f"question_{i} is a choice"
        assert re.findall(r'<option[^>]*value="([^"]+)"', select.group(0)) == OFFERED
    assert "question_3" not in form

    saved = enroll(visitor, PICKS, john.password)

    assert saved.status_code == 303
    review = visitor.follow(saved)
    rows = stored_answers(app, account_id(app, john.uid))
    assert [row.question_id for row in rows] == list(PICKS)
    assert all(row.answer_hash.startswith("$argon2id$") for row in rows)
    assert len({row.answer_hash.split("$")[4] for row in rows}) == 3, "each answer has its own salt"
    # Nowhere in the database's files, in any form a person typed it.
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("sspm.db*"))
    for answer in PICKS.values():
        for form_of_it in {answer, answer.strip(), answer.strip().lower(), "montreal", "biscuit"}:
            assert form_of_it.encode() not in on_disk
    # The review shows the questions, never the answers.
    for question in PICKS:
        assert says(review, services_of(app).catalogue.by_id[question].in_language("en"))
    for page in (review, visitor.get("/enroll/edit")):
        body = page.get_data(as_text=True)
        assert not any(answer.strip() in body for answer in PICKS.values())


def test_two_users_with_the_same_answers_get_different_hashes(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john, laura = accounts["normal"], accounts["other"]
    for person in (john, laura):
        assert enroll(signed_in(app, person), PICKS, person.password).status_code == 303

    johns = stored_answers(app, account_id(app, john.uid))
    lauras = stored_answers(app, account_id(app, laura.uid))

    for mine, theirs in zip(johns, lauras, strict=True):
        assert mine.question_id == theirs.question_id
        assert mine.answer_hash != theirs.answer_hash
        assert mine.answer_hash.split("$")[4] != theirs.answer_hash.split("$")[4]


def test_an_answer_matches_whatever_its_case_accents_and_spacing(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    assert enroll(signed_in(app, john), PICKS, john.password).status_code == 303
    # Every answer typed differently from how it was enrolled, so whichever two are asked:
    typed = {"first-school": "  riverside   ELEMENTARY", "first-pet": "BISCUIT", "parents-met": "montreal"}

    verdict = recover(Visitor(app), "forgot", john.uid, typed)

    assert verdict.status_code == 303
    assert verdict.headers["Location"].endswith("/recovery/new-password")


REFUSALS = {
    "the same question twice": ({"first-school": "Riverside", "first-pet": "Biscuit"}, "question_twice"),
    "an answer too short": ({**PICKS, "first-pet": "Bo"}, "answer_too_short"),
    "two equal answers": ({**PICKS, "first-pet": "riverside  elementary"}, "answers_same"),
    "an answer holding the user name": ({**PICKS, "first-pet": "JSmith's dog"}, "answer_contains_name"),
    "an answer holding the password": ({**PICKS, "first-pet": "x winter-harbour-42 x"}, "answer_contains_password"),
    "a wrong confirmation password": (PICKS, "bad_credentials"),
}


@pytest.mark.parametrize(("picks", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_an_enrollment_that_breaks_a_rule_is_refused_with_its_reason_and_nothing_is_kept(
    app: Flask, accounts: dict[str, SeedAccount], picks: dict[str, str], reason: str
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    fields = {}
    if reason == "question_twice":
        # Two boxes on the same question: a person can pick that in the page.
        fields = {"question_2": "first-school", "answer_2": "Maple Avenue"}
    password = WRONG_PASSWORD if reason == "bad_credentials" else john.password
    token = csrf_token(visitor.get("/enroll/edit").get_data(as_text=True))
    sent = {"csrf_token": token, "password": password}
    for i, (question, answer) in enumerate(picks.items()):
        sent |= {f"question_{i}": question, f"answer_{i}": answer}
    sent |= fields

    page = visitor.post("/enroll/edit", sent)

    assert page.status_code == 422
    assert says(page, sentence(app, reason))
    assert stored_answers(app) == []


def test_a_question_that_is_not_offered_is_refused(app: Flask, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    picks = {**PICKS}
    picks.pop("first-pet")
    picks["first-concert"] = "Abba"  # in the catalogue, but not among the five offered

    page = enroll(signed_in(app, john), picks, john.password)

    assert page.status_code == 422
    assert stored_answers(app) == []


def test_re_enrolling_replaces_the_answers_and_the_old_ones_stop_working(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    assert enroll(visitor, PICKS, john.password).status_code == 303
    old_rows = stored_answers(app)

    again = enroll(visitor, OTHER_PICKS, john.password)

    assert again.status_code == 303
    review = visitor.follow(again)
    new_rows = stored_answers(app)
    assert [row.question_id for row in new_rows] == list(OTHER_PICKS)
    assert not {row.answer_hash for row in old_rows} & {row.answer_hash for row in new_rows}
    for question in OTHER_PICKS:
        assert says(review, services_of(app).catalogue.by_id[question].in_language("en"))
    # Recovery now asks only the new questions and takes only the new answers.
    assert recover(Visitor(app), "forgot", john.uid, PICKS).status_code == 422
    assert recover(Visitor(app), "forgot", john.uid, OTHER_PICKS).status_code == 303


def test_a_renamed_account_keeps_its_enrollment(
    app: Flask, slapd: Slapd, directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    seed_enrolled(app, laura)

    with as_directory_admin(slapd) as admin:
        assert admin.modify_dn(f"uid={laura.uid},{PEOPLE_DN}", "uid=lsmith2"), admin.result

    # The old user name is still her address's local part (the filter finds that too), and so her.
    renamed = directory.find_account(laura.uid)
    assert renamed is not None and renamed.username == "lsmith2"
    visitor = Visitor(app)
    assert sign_in(visitor, "lsmith2", laura.password).status_code == 303
    review = visitor.get("/enroll")
    for question in DEMO_ANSWERS:
        assert says(review, services_of(app).catalogue.by_id[question].in_language("en"))
    assert recover(Visitor(app), "forgot", "lsmith2", DEMO_ANSWERS).status_code == 303


def test_after_changing_the_password_a_user_not_yet_enrolled_is_signed_in_and_offered_enrollment(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, laura)
    offer = text_in(app, "Set up security questions")

    visitor = Visitor(app)
    done = visitor.follow(visitor.change_password(john.uid, john.password, NEW_PASSWORD))

    assert says(done, offer)
    assert 'href="/enroll/edit"' in done.get_data(as_text=True)
    assert visitor.get("/enroll/edit").status_code == 200, "signed in: the offer is one click away"
    assert enroll(visitor, PICKS, NEW_PASSWORD).status_code == 303

    # Someone already enrolled is not asked again.
    enrolled = Visitor(app)
    done = enrolled.follow(enrolled.change_password(laura.uid, laura.password, NEW_PASSWORD))
    assert not says(done, offer)
    assert is_signed_in(enrolled)


def test_refused_enrollments_of_one_user_do_not_stop_another_from_enrolling(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="3 per 30 minutes")
    john, laura = accounts["normal"], accounts["other"]
    visitor = signed_in(app, john)
    # The sign-in and two refusals: john's count (one for every form that asks
    # for his password) is at its limit, and his next try is turned away.
    for _ in range(2):
        assert enroll(visitor, {**PICKS, "first-pet": "Bo"}, john.password).status_code == 422
    assert enroll(visitor, {**PICKS, "first-pet": "Bo"}, john.password).status_code == 429

    other = signed_in(app, laura)
    other.client.environ_base["REMOTE_ADDR"] = "198.51.100.7"

    assert enroll(other, PICKS, laura.password).status_code == 303
