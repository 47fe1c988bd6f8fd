"""The profile: seeing one's own account, and changing one's own login email and mobile number.

Every story runs on the real servers: slapd, Redis, the database, the SMTP
catcher, and the SMS catcher (a folder the test reads like a phone). A link
reaches the new address through the worker (``run_jobs``), a code reaches the
new number as a text file; the test reads both as their owner would. What
must not happen (a change before the proof, a link working for the wrong
account, a code guessed) is checked in the directory itself.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from rq import Queue, SimpleWorker
from sqlalchemy import select
from werkzeug.test import TestResponse

from lab import SeedAccount, Slapd
from lab.sms import read_messages
from sspm.account import staff
from sspm.infra import jobs
from sspm.infra.store import AuditEvent
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason
from sspm.profile.service import CODE_TRIES, PHONE_CHANGED_EVENT
from tests.flows.test_email import EMAIL_ENV, bodies, messages_to, run_jobs, said
from tests.flows.test_realms import open_staff, with_probes
from tests.support import Backing, services_of
from tests.support.flows import (
    AppFactory,
    Visitor,
    any_csrf_token,
    csrf_token,
    reason_in,
    says,
    seed_enrolled,
    sign_in,
    text_in,
)

NEW_ADDRESS = "john.new@partners.example"
_VERIFY = re.compile(r"https?://[^\s\"'<>]+/profile/email/verify\?token=[A-Za-z0-9_-]+")
_CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def sms_dir(tmp_path: Path) -> Path:
    return tmp_path / "sms"


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd, sms_dir: Path) -> Flask:
    return build_app(slapd, SSPM_SMS_DIR=str(sms_dir), **EMAIL_ENV)


# -- reading what the owner would read --------------------------------------------------------------


def details(app: Flask, login: str) -> tuple[str | None, str | None]:
    """The account's email and mobile as the directory has them now."""
    the = services_of(app)
    account = the.directory.find_account(login)
    assert account is not None, login
    found = the.directory.account_details(account.id)
    assert found is not None
    return found.email, found.mobile


def finds(app: Flask, login: str) -> str | None:
    """Whom the directory's user filter finds with ``login`` (uid or mail on slapd): their user name."""
    account = services_of(app).directory.find_account(login)
    return account.username if account else None


def verify_link(message: EmailMessage) -> str:
    text, page = bodies(message)
    (found,) = set(_VERIFY.findall(text))
    assert found in page
    return found.removeprefix("https://sspm.partners.example")


def texts_to(sms_dir: Path, number: str) -> list[str]:
    return [message.text for message in read_messages(sms_dir) if message.to == number]


def code_in(text: str) -> str:
    found = _CODE.search(text)
    assert found, text
    return found.group(1)


def rows(app: Flask, action: str) -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def signed_in(app: Flask, person: SeedAccount) -> Visitor:
    visitor = Visitor(app)
    assert sign_in(visitor, person.uid, person.password).status_code == 303
    return visitor


def ask_email(visitor: Visitor, address: str, password: str, entry: str = "/profile") -> TestResponse:
    return visitor.submit(f"{entry}/email", {"email": address, "password": password})


def ask_phone(visitor: Visitor, number: str, password: str, entry: str = "/profile") -> TestResponse:
    return visitor.submit(f"{entry}/phone", {"phone": number, "password": password})


def give_code(visitor: Visitor, code: str, entry: str = "/profile") -> TestResponse:
    return visitor.submit(f"{entry}/phone/code", {"code": code})


def field_error(page: TestResponse, app: Flask, reason: str, field: str) -> bool:
    """Whether the page says ``reason`` at ``field``, marked invalid there."""
    body = page.get_data(as_text=True)
    marked = re.search(rf'<input[^>]*id="{field}"[^>]*aria-invalid="true"', body) or re.search(
        rf'<input[^>]*aria-invalid="true"[^>]*id="{field}"', body
    )
    return bool(marked) and says(page, reason_in(app, reason))


def confirm_link(visitor: Visitor, path: str, password: str | None = None) -> TestResponse:
    """Open the link (GET, as a mail scanner would too), then confirm on the page it leads to."""
    opened = visitor.get(path)
    assert opened.status_code == 303
    page = visitor.follow(opened)
    assert page.status_code == 200, page.status
    fields = {"csrf_token": csrf_token(page.get_data(as_text=True))}
    if password is not None:
        fields["password"] = password
    return visitor.post("/profile/email/verify", fields)


# -- seeing it ----------------------------------------------------------------------------------------


def test_a_signed_in_user_sees_their_names_contacts_password_age_and_enrollment(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    seed_enrolled(app, john)
    visitor = Visitor(app)
    away = visitor.get("/profile")
    assert away.status_code == 302 and "/signin" in away.headers["Location"]

    visitor = signed_in(app, john)
    for entry in ("/profile", "/m/profile"):
        page = visitor.get(entry)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        for shown in (john.display_name, john.given_name, john.surname, john.uid, john.mail, "st-mary"):
            assert shown in body, shown
        assert says(page, text_in(app, "Change my login email"))
        assert says(page, text_in(app, "Change my mobile number"))
        assert re.search(r'id="password-age">[^<]*\(1 day ago\)', body), "seeded a day ago"
        assert re.search(r'id="password-expiry">[^<]*\d{4}', body), "the lab's policy expires passwords"
        assert "You have set up 3 security questions" in body
        assert 'action="' + ("/m" if entry.startswith("/m") else "") + '/signout"' in body, "signing out from here"


def test_an_account_outside_the_provisioning_base_is_shown_but_its_contacts_cannot_be_changed_here(
    build_app: AppFactory, slapd: Slapd, sms_dir: Path, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_SMS_DIR=str(sms_dir), LDAP_PROVISION_BASE_DN=f"ou=Staff,{slapd.people_dn}")
    john = accounts["normal"]
    visitor = signed_in(app, john)
    page = visitor.get("/profile")
    assert page.status_code == 200 and john.mail in page.get_data(as_text=True)
    assert says(page, reason_in(app, Reason.CONTACTS_NOT_EDITABLE))
    assert not says(page, text_in(app, "Change my login email"))
    refused = ask_email(visitor, NEW_ADDRESS, john.password)
    assert refused.status_code == 422 and says(refused, reason_in(app, Reason.CONTACTS_NOT_EDITABLE))
    assert details(app, john.uid)[0] == john.mail


# -- a new login email ----------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_a_new_login_email_counts_only_once_the_link_sent_to_it_is_used(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    john, mailbox = accounts["normal"], backing.mailbox
    visitor = signed_in(app, john)

    asked = ask_email(visitor, NEW_ADDRESS, john.password)
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/profile")
    home = visitor.follow(asked)
    assert NEW_ADDRESS in home.get_data(as_text=True), "the profile says a link waits at the new address"
    run_jobs(app)

    # The link went to the new address, a notice to the old one; the directory changed nothing yet.
    (link_mail,) = messages_to(mailbox, NEW_ADDRESS)
    (notice,) = messages_to(mailbox, john.mail)
    assert NEW_ADDRESS in bodies(notice)[0]
    assert details(app, john.uid)[0] == john.mail
    # The old address is still the login and the recovery address; the new one is neither.
    assert finds(app, john.mail) == john.uid and finds(app, NEW_ADDRESS) is None
    Visitor(app).submit("/forgot/email", {"username": john.mail})
    run_jobs(app)
    assert len(messages_to(mailbox, john.mail)) == 2, "a reset link still goes to the old address"
    assert messages_to(mailbox, NEW_ADDRESS) == [link_mail]

    # A GET (a mail scanner) confirms nothing; the owner's POST does.
    path = verify_link(link_mail)
    assert Visitor(app).get(path).status_code == 303
    assert details(app, john.uid)[0] == john.mail
    done = confirm_link(visitor, path)
    assert done.status_code == 303 and done.headers["Location"].endswith("/profile")
    assert details(app, john.uid)[0] == NEW_ADDRESS

    # Signing in now works with the new address and no longer with the old one (the filter is uid or mail).
    assert finds(app, NEW_ADDRESS) == john.uid and finds(app, john.mail) is None
    assert sign_in(Visitor(app), NEW_ADDRESS, john.password).status_code == 303
    refused = sign_in(Visitor(app), john.mail, john.password)
    assert refused.status_code == 422 and says(refused, reason_in(app, Reason.BAD_CREDENTIALS))

    # The old address is told it no longer counts; the link works once.
    run_jobs(app)
    changed = said(app, "en", "Your login email was changed")
    assert [m["Subject"] for m in messages_to(mailbox, john.mail)][-1] == changed
    again = visitor.get(path)
    assert visitor.follow(again).status_code == 410
    (asked_row,) = rows(app, "email_change_asked")
    assert asked_row.outcome == "link_sent" and asked_row.details["to"] == NEW_ADDRESS
    (changed_row,) = rows(app, "email_changed")
    assert changed_row.outcome == "ok"
    assert (changed_row.details["from"], changed_row.details["to"]) == (john.mail, NEW_ADDRESS)


def test_a_link_opened_while_someone_else_is_signed_in_changes_neither_account(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    ask_email(signed_in(app, john), NEW_ADDRESS, john.password)
    run_jobs(app)
    (link_mail,) = messages_to(backing.mailbox, NEW_ADDRESS)
    path = verify_link(link_mail)

    # Laura is signed in where the link is opened: refused, whatever is posted, and on the trail.
    lauras = signed_in(app, laura)
    refused = lauras.follow(lauras.get(path))
    assert refused.status_code == 403 and says(refused, reason_in(app, Reason.WRONG_ACCOUNT))
    posted = lauras.post("/profile/email/verify", {"csrf_token": any_csrf_token(refused.get_data(as_text=True))})
    assert posted.status_code == 403
    posted = lauras.post(
        "/profile/email/verify",
        {"csrf_token": any_csrf_token(refused.get_data(as_text=True)), "password": laura.password},
    )
    assert posted.status_code == 403
    assert details(app, john.uid)[0] == john.mail and details(app, laura.uid)[0] == laura.mail
    assert {row.outcome for row in rows(app, "email_changed")} == {Reason.WRONG_ACCOUNT}
    assert {row.details["signed_in"] for row in rows(app, "email_changed")} == {
        services_of(app).directory.find_account(laura.uid).id  # type: ignore[union-attr]
    }

    # The link was not spent: its owner, signed in, still confirms it.
    assert confirm_link(signed_in(app, john), path).status_code == 303
    assert details(app, john.uid)[0] == NEW_ADDRESS and details(app, laura.uid)[0] == laura.mail


def test_a_link_opened_signed_out_needs_the_accounts_own_password(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    ask_email(signed_in(app, john), NEW_ADDRESS, john.password)
    run_jobs(app)
    path = verify_link(messages_to(backing.mailbox, NEW_ADDRESS)[0])

    stranger = Visitor(app)
    page = stranger.follow(stranger.get(path))
    assert page.status_code == 200 and NEW_ADDRESS in page.get_data(as_text=True)
    for wrong in ("Not-His-Password-1", laura.password):
        refused = stranger.post(
            "/profile/email/verify", {"csrf_token": csrf_token(page.get_data(as_text=True)), "password": wrong}
        )
        assert refused.status_code == 422 and field_error(refused, app, Reason.BAD_CREDENTIALS, "password")
    assert details(app, john.uid)[0] == john.mail

    done = stranger.post(
        "/profile/email/verify", {"csrf_token": csrf_token(page.get_data(as_text=True)), "password": john.password}
    )
    assert done.status_code == 303 and "/signin" in done.headers["Location"]
    assert details(app, john.uid)[0] == NEW_ADDRESS


def test_a_newer_ask_voids_the_older_link(app: Flask, backing: Backing, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    ask_email(visitor, "first.try@partners.example", john.password)
    run_jobs(app)
    ask_email(visitor, NEW_ADDRESS, john.password)
    run_jobs(app)
    older = verify_link(messages_to(backing.mailbox, "first.try@partners.example")[0])
    assert visitor.follow(visitor.get(older)).status_code == 410
    assert confirm_link(visitor, verify_link(messages_to(backing.mailbox, NEW_ADDRESS)[0])).status_code == 303
    assert details(app, john.uid)[0] == NEW_ADDRESS


@pytest.mark.parametrize(
    ("typed", "password", "reason", "field"),
    [
        pytest.param(NEW_ADDRESS, "Not-His-Password-1", Reason.BAD_CREDENTIALS, "password", id="wrong password"),
        pytest.param("JSMITH@partners.example", None, Reason.EMAIL_SAME, "email", id="the same address"),
        pytest.param("lsmith@partners.example", None, Reason.EMAIL_TAKEN, "email", id="another account's"),
    ],
)
def test_an_email_change_is_refused_plainly_at_its_field(
    app: Flask,
    backing: Backing,
    accounts: dict[str, SeedAccount],
    typed: str,
    password: str | None,
    reason: Reason,
    field: str,
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    page = ask_email(visitor, typed, password or john.password)
    assert page.status_code == 422 and field_error(page, app, reason, field)
    run_jobs(app)
    assert backing.mailbox.messages == []
    assert details(app, john.uid)[0] == john.mail


@pytest.mark.parametrize(
    "typed",
    ["not an address", "john@", "jöhn@partners.example", "john@partners", "a" * 250 + "@x.example"],
    ids=["words", "no domain", "accented", "no dot", "too long"],
)
def test_an_address_that_is_not_one_is_refused_before_anything(
    app: Flask, backing: Backing, accounts: dict[str, SeedAccount], typed: str
) -> None:
    john = accounts["normal"]
    page = ask_email(signed_in(app, john), typed, john.password)
    assert page.status_code == 422
    assert re.search(
        r'id="email"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="email"', page.get_data(as_text=True)
    )
    run_jobs(app)
    assert backing.mailbox.messages == []


# -- a new mobile number --------------------------------------------------------------------------------


def test_a_new_mobile_number_counts_only_once_the_texted_code_comes_back(
    app: Flask, backing: Backing, sms_dir: Path, accounts: dict[str, SeedAccount], caplog: pytest.LogCaptureFixture
) -> None:
    john, mailbox = accounts["normal"], backing.mailbox
    visitor = signed_in(app, john)

    asked = ask_phone(visitor, "(613) 555-0123", john.password)
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/profile/phone/code")
    page = visitor.follow(asked)
    assert page.status_code == 200 and "+16135550123" in page.get_data(as_text=True)
    (text,) = texts_to(sms_dir, "+16135550123")
    assert details(app, john.uid)[1] is None, "nothing written before the code comes back"

    done = give_code(visitor, code_in(text))
    assert done.status_code == 303 and done.headers["Location"].endswith("/profile")
    assert details(app, john.uid)[1] == "+16135550123"
    assert "+16135550123" in visitor.follow(done).get_data(as_text=True)
    (row,) = [row for row in rows(app, "phone_changed") if row.outcome == "ok"]
    assert row.details["mobile_credentials"] is True
    assert (row.details["from"], row.details["to"]) == (None, "+16135550123")

    # The address is told; the operator's event is queued, and says it when a worker runs it.
    run_jobs(app)
    assert [m["Subject"] for m in messages_to(mailbox, john.mail)] == ["Your mobile number was changed"]
    housekeeping = Queue(jobs.HOUSEKEEPING, connection=services_of(app).state.redis)
    assert [job.func_name for job in housekeeping.get_jobs()] == [PHONE_CHANGED_EVENT]
    with caplog.at_level(logging.INFO, logger="sspm.profile.events"), app.app_context():
        SimpleWorker([jobs.HOUSEKEEPING], connection=services_of(app).state.redis).work(burst=True)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "sspm.profile.events"]
    assert line.startswith("phone_changed {") and '"mobile_credentials": true' in line and john.uid in line

    # A second change: the old number is told by text, and the code works once only.
    asked = ask_phone(visitor, "+33 6 12 34 56 78", john.password)
    (text,) = texts_to(sms_dir, "+33612345678")
    code = code_in(text)
    assert give_code(visitor, code).status_code == 303
    assert details(app, john.uid)[1] == "+33612345678"
    (told,) = texts_to(sms_dir, "+16135550123")[1:]
    assert "was changed" in told
    token = csrf_token(visitor.get("/profile/phone").get_data(as_text=True))
    replay = visitor.post("/profile/phone/code", {"csrf_token": token, "code": code})
    assert replay.status_code == 422 and says(replay, reason_in(app, Reason.PHONE_CODE_GONE))


def test_wrong_codes_are_counted_and_too_many_end_the_code(
    app: Flask, sms_dir: Path, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    ask_phone(visitor, "613 555 0123", john.password)
    (text,) = texts_to(sms_dir, "+16135550123")
    right = code_in(text)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for _ in range(CODE_TRIES - 1):
        refused = give_code(visitor, wrong)
        assert refused.status_code == 422 and field_error(refused, app, Reason.PHONE_CODE_WRONG, "code")
        assert right not in refused.get_data(as_text=True)
    ended = give_code(visitor, wrong)
    assert ended.status_code == 422 and says(ended, reason_in(app, Reason.PHONE_CODE_GONE))
    token = csrf_token(visitor.get("/profile/phone").get_data(as_text=True))
    late = visitor.post("/profile/phone/code", {"csrf_token": token, "code": right})
    assert late.status_code == 422 and says(late, reason_in(app, Reason.PHONE_CODE_GONE))
    assert visitor.get("/profile/phone/code").status_code == 410
    assert details(app, john.uid)[1] is None
    outcomes = [row.outcome for row in rows(app, "phone_changed")]
    assert outcomes == [Reason.PHONE_CODE_WRONG] * (CODE_TRIES - 1) + ["too_many_wrong_codes"]


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("613-555-0123", "+16135550123"),
        ("+1 (613) 555 0123", "+16135550123"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+44 7400 123456", "+447400123456"),
    ],
)
def test_a_number_typed_any_usual_way_is_texted_in_e164(
    app: Flask, sms_dir: Path, accounts: dict[str, SeedAccount], typed: str, e164: str
) -> None:
    john = accounts["normal"]
    assert ask_phone(signed_in(app, john), typed, john.password).status_code == 303
    assert [message.to for message in read_messages(sms_dir)] == [e164]


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("12", Reason.PHONE_INVALID),
        ("call me maybe", Reason.PHONE_INVALID),
        ("+1 613 555 01234567", Reason.PHONE_INVALID),
        ("+33 1 23 45 67 89", Reason.PHONE_NOT_MOBILE),
    ],
    ids=["too short", "words", "too long", "a landline"],
)
def test_a_number_that_cannot_get_a_text_is_refused_plainly_at_its_field(
    app: Flask, sms_dir: Path, accounts: dict[str, SeedAccount], typed: str, reason: Reason
) -> None:
    john = accounts["normal"]
    page = ask_phone(signed_in(app, john), typed, john.password)
    assert page.status_code == 422 and field_error(page, app, reason, "phone")
    assert read_messages(sms_dir) == []


def test_a_wrong_password_texts_nothing(app: Flask, sms_dir: Path, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    page = ask_phone(signed_in(app, john), "613 555 0123", "Not-His-Password-1")
    assert page.status_code == 422 and field_error(page, app, Reason.BAD_CREDENTIALS, "password")
    assert read_messages(sms_dir) == []
    assert [row.outcome for row in rows(app, "phone_change_asked")] == ["bad_credentials"]


# -- the forms' own protections ----------------------------------------------------------------------


def test_every_profile_form_refuses_a_post_without_its_token(
    app: Flask, backing: Backing, sms_dir: Path, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    for path, fields in (
        ("/profile/email", {"email": NEW_ADDRESS, "password": john.password}),
        ("/profile/phone", {"phone": "613 555 0123", "password": john.password}),
        ("/profile/phone/code", {"code": "123456"}),
        ("/profile/email/verify", {"password": john.password}),
    ):
        assert visitor.post(path, fields).status_code == 400, path
    run_jobs(app)
    assert backing.mailbox.messages == [] and read_messages(sms_dir) == []


def test_signed_out_the_forms_send_to_sign_in_and_do_nothing(app: Flask, sms_dir: Path) -> None:
    visitor = Visitor(app)
    token = csrf_token(visitor.get("/signin").get_data(as_text=True))
    for path in ("/profile/email", "/profile/phone", "/profile/phone/code"):
        page = visitor.post(path, {"csrf_token": token, "phone": "613 555 0123", "password": "x"})
        assert page.status_code == 302 and "/signin" in page.headers["Location"], path
    assert read_messages(sms_dir) == []


# -- staff, in the console ---------------------------------------------------------------------------


def test_staff_reach_their_own_profile_from_the_console_and_change_their_number_there(
    build_app: AppFactory, slapd: Slapd, sms_dir: Path, accounts: dict[str, SeedAccount]
) -> None:
    app = with_probes(build_app(slapd, SSPM_SMS_DIR=str(sms_dir)))
    john = accounts["normal"]
    account = services_of(app).directory.find_account(john.uid)
    assert account is not None
    staff.grant(
        services_of(app).store, Actor.operator("test"), account=account, role="helpdesk", organization="st-mary"
    )
    visitor = Visitor(app)
    assert visitor.get("/staff/profile").status_code in (302, 303), "behind the staff sign-in"
    open_staff(visitor, account.id, "helpdesk", orgs="st-mary")

    home = visitor.get("/staff/")
    assert 'href="/staff/profile"' in home.get_data(as_text=True)
    page = visitor.get("/staff/profile")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and john.uid in body and john.mail in body
    assert 'action="/staff/signout"' in body, "the console's sign-out, on this page too"
    assert 'href="/staff/profile/phone"' in body

    asked = ask_phone(visitor, "613 555 0123", john.password, entry="/staff/profile")
    assert asked.status_code == 303 and asked.headers["Location"] == "/staff/profile/phone/code"
    (text,) = texts_to(sms_dir, "+16135550123")
    done = give_code(visitor, code_in(text), entry="/staff/profile")
    assert done.status_code == 303 and done.headers["Location"] == "/staff/profile"
    assert details(app, john.uid)[1] == "+16135550123"
    (row,) = [row for row in rows(app, "phone_changed") if row.outcome == "ok"]
    assert row.actor_kind == "staff"


def test_someone_sent_to_sign_in_from_the_profile_comes_back_to_it(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    asked = visitor.get("/profile")
    assert asked.status_code in (302, 303) and "next=profile.index" in asked.headers["Location"]
    signin = visitor.follow(asked)

    signed_in = visitor.post(
        "/signin",
        {
            "username": john.uid,
            "password": john.password,
            "next": "profile.index",
            "csrf_token": csrf_token(signin.text),
        },
    )

    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/profile"
    assert 'href="/profile"' in visitor.get("/enroll").text, "the signed-in page links to the profile"
