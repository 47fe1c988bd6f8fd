"""People's records through the app against a real slapd: every role and action, the directory account each
record provisions, and what an attacker would try (DN injection through names, another organization's record
by id, a manager reaching for clinicians, two staff saving one record at once).

Staff are made as an operator does (``staff.grant``) and signed in through the helpdesk tests' probe page
(the sign-in itself is tested in test_staff_signin.py). Each story ends by looking where the truth is: the
directory (as its administrator sees it), the store, the audit trail, the mailbox.

The lab's organizations: st-mary and north-clinic; new accounts go to its Staff OU.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import ldap3
import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors import dn
from connectors.directory import Account, Outcome
from lab import Pki, Slapd
from lab.demo import people_table, seed_demo_people
from lab.env import sspm_environ
from lab.seed import NORTH_CLINIC, PEOPLE_DN, ST_MARY, STAFF_ACCOUNTS
from sspm.account import audit, tokens
from sspm.account.setup_links import SETUP_PURPOSE, still_to_set_up
from sspm.account.staff import Staff
from sspm.infra.store import AuditEvent, PersonRecord
from sspm.people import service
from sspm.people.service import Details, Kind
from sspm.policy.actor import Actor
from sspm.policy.roles import Grants
from tests.flows.test_console_roles import start_staff_slapd
from tests.flows.test_helpdesk import agent, mails_to, run_jobs, text_of, with_probe
from tests.flows.test_realms import rewrite, staff_handle, staff_key
from tests.support import Backing, services_of
from tests.support.flows import (
    AppFactory,
    Visitor,
    as_directory_admin,
    csrf_token,
    reason_in,
    says,
    sign_in,
    without_token,
)

SUPER, ADMIN, MANAGER, HELPDESK, HELPDESK_NORTH = STAFF_ACCOUNTS
OPERATOR = Actor.operator("test-operator")
SETUP_LINK = re.compile(r"https://sspm\.partners\.example/setup\?token=([A-Za-z0-9_-]+)")
PASSWORD = "Orchard-Kettle-Lantern-58"


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    """The lab's directory with its staff accounts too."""
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probe(build_app(slapd))


def employee(**changes: object) -> dict[str, str]:
    fields = {
        "organization": ST_MARY,
        "given_name": "Jean",
        "family_name": "Dupont",
        "language": "fr",
        "work_email": "jean.dupont@partners.example",
        "job_title": "Nurse",
        "department": "Cardiology",
        "manager": MANAGER.uid,
        "start_date": "2026-03-02",
        "end_date": "",
    }
    fields.update({k: str(v) for k, v in changes.items()})
    return fields


def clinician(**changes: object) -> dict[str, str]:
    fields = employee(
        given_name="Zoë",
        family_name="Ærø",
        work_email="zoe.aero@partners.example",
        college="Ordre des infirmières",
        registration_number="12-3456",
        specialty="Cardiology",
        mobile="613 555 0123",
    )
    fields.update({k: str(v) for k, v in changes.items()})
    return fields


def submit(visitor: Visitor, path: str, fields: dict[str, str]) -> TestResponse:
    """Open the page's form (for its CSRF token), then send ``fields`` with it."""
    page = visitor.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return visitor.post(path, {"csrf_token": csrf_token(page.get_data(as_text=True)), **fields})


def record_id_of(response: TestResponse) -> int:
    found = re.search(r"/staff/people/\w+/(\d+)$", response.headers["Location"])
    assert found, response.headers.get("Location")
    return int(found.group(1))


def stored(app: Flask, record_id: int) -> PersonRecord:
    with services_of(app).store.session() as session:
        found = session.get(PersonRecord, record_id)
    assert found is not None
    return found


def all_records(app: Flask) -> list[PersonRecord]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(PersonRecord).order_by(PersonRecord.id)))


def rows(app: Flask, action: str) -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def seeded(app: Flask, kind: Kind = Kind.EMPLOYEE, organization: str = ST_MARY, **changes: object) -> PersonRecord:
    """A record made by a Super Admin through the use case, as if on the page."""
    the = services_of(app)
    member = Staff(0, "seeding-operator", "operator", Grants.of([("super-admin", "*")]), True, datetime.now(UTC))
    values: dict[str, object] = {
        "given_name": "Marie",
        "family_name": "Curie",
        "language": "en",
        "work_email": f"m.curie.{organization}.{kind.value}@partners.example",
        "job_title": "Physicist",
        "department": "Radiology",
        "manager": "",
        "start_date": date(2026, 1, 5),
        "end_date": None,
    }
    if kind is Kind.CLINICIAN:
        values.update(college="CMQ", registration_number=f"R-{organization}", specialty="Radiology")
    values.update(changes)
    result = service.create(the, OPERATOR, member, kind, organization, Details(**values))  # type: ignore[arg-type]
    assert result.reason is None and result.record is not None, result
    return result.record


def directory_entry(slapd: Slapd, uid: str) -> tuple[str, dict[str, list[str]]] | None:
    with as_directory_admin(slapd) as conn:
        conn.search(PEOPLE_DN, f"(uid={ldap3.utils.conv.escape_filter_chars(uid)})", attributes=["*", "+"])
        if not conn.entries:
            return None
        entry = conn.response[0]
        values = {k: [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in entry["attributes"].items()}
        return entry["dn"], values


def set_up(app: Flask, record: PersonRecord, password: str = PASSWORD) -> Account:
    """What the set-up page does once its owner chose a password (sspm.setup)."""
    the = services_of(app)
    account = the.directory.get_account(record.account_id or "")
    assert account is not None
    assert the.directory.activate_account(account, password) is Outcome.OK
    audit.record(the.store, audit.Action.SETUP, "ok", actor=Actor.user(account.id, "127.0.0.1"), account=account)
    return account


# -- creating -------------------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_an_admin_creates_an_employee_whose_account_awaits_set_up_and_is_emailed_its_link(
    database_url: str, app: Flask, slapd: Slapd, backing: Backing
) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    created = submit(admin, "/staff/people/employees/new", employee())
    assert created.status_code == 303, created.get_data(as_text=True)
    record = stored(app, record_id_of(created))
    assert (record.username, record.organization, record.status, record.version) == ("jdupont", ST_MARY, "active", 1)
    assert record.manager_name == MANAGER.display_name

    found = directory_entry(slapd, "jdupont")
    assert found is not None
    entry_dn, attributes = found
    assert dn.same(dn.parent(entry_dn), f"ou=Staff,{PEOPLE_DN}")
    assert attributes["entryUUID"] == [record.account_id]
    assert (attributes["sn"], attributes["givenName"], attributes["mail"]) == (
        ["Dupont"],
        ["Jean"],
        ["jean.dupont@partners.example"],
    )
    assert (attributes["title"], attributes["departmentNumber"], attributes["o"]) == (
        ["Nurse"],
        ["Cardiology"],
        [ST_MARY],
    )
    assert "userPassword" not in attributes, "no usable password"
    directory = services_of(app).directory
    assert directory.verify_password("jdupont", PASSWORD)[1].outcome is not Outcome.OK

    page = admin.get(f"/staff/people/employees/{record.id}")
    assert page.status_code == 200
    assert says(page, "Active, waiting for its owner to set the account up")

    run_jobs(app)
    sent = mails_to(backing, "jean.dupont@partners.example")
    assert len(sent) == 1
    assert sent[0]["Subject"] == "Configurez votre nouveau compte" or "setup" in text_of(sent[0])
    token = SETUP_LINK.search(text_of(sent[0]))
    assert token, text_of(sent[0])
    assert tokens.find(services_of(app).store, tokens.digest(token.group(1)), SETUP_PURPOSE) == record.account_id
    assert [r.outcome for r in rows(app, "record_create")] == ["ok"]
    assert [r.outcome for r in rows(app, "record_setup_link")] == ["queued"]


def test_user_names_come_from_the_names_and_are_never_one_someone_holds(app: Flask, slapd: Slapd) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    first = submit(admin, "/staff/people/employees/new", employee(manager=""))
    second = submit(admin, "/staff/people/employees/new", employee(manager="", work_email="jd2@partners.example"))
    # John Smith: jsmith is a seeded account of the directory, never SSPM's, and still held.
    third = submit(
        admin,
        "/staff/people/employees/new",
        employee(given_name="Jöhn", family_name="Smith", work_email="john2@partners.example", manager=""),
    )
    fourth = submit(
        admin,
        "/staff/people/employees/new",
        employee(given_name="李", family_name="小龍", work_email="li@partners.example", manager=""),
    )
    names = [stored(app, record_id_of(r)).username for r in (first, second, third, fourth)]
    assert names == ["jdupont", "jdupont2", "jsmith2", "lxiaolong"]
    for name in names:
        assert directory_entry(slapd, name) is not None


def test_every_field_is_refused_with_its_own_sentence_and_nothing_is_created(app: Flask, slapd: Slapd) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    refused = submit(
        admin,
        "/staff/people/clinicians/new",
        clinician(
            given_name="",
            family_name="x" * 65,
            work_email="not an address",
            start_date="2026-03-02",
            end_date="2026-01-01",
            registration_number="12/34",
            mobile="12",
        ),
    )
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    for sentence in (
        "Enter the person’s given name.",
        "This is longer than 64 characters. Shorten it.",
        "This is not an email address we can use.",
        "The end date is before the start date. Check both.",
        "A registration number has letters, digits and dashes only, 32 at most.",
        "This is not a mobile number we can use.",
    ):
        assert sentence in body, sentence
    assert 'aria-invalid="true"' in body
    assert all_records(app) == []

    french = submit(admin, "/staff/people/employees/new?lang=fr", employee(given_name=""))
    assert french.status_code == 422
    assert text_in_french(app, "Enter the person’s given name.") in french.get_data(as_text=True)


def text_in_french(app: Flask, text: str) -> str:
    from tests.support.flows import text_in

    return text_in(app, text, "fr")


def test_a_clinicians_mobile_is_kept_in_e164_and_the_registration_is_unique_per_college(
    app: Flask, slapd: Slapd
) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    created = submit(admin, "/staff/people/clinicians/new", clinician())
    assert created.status_code == 303, created.get_data(as_text=True)
    record = stored(app, record_id_of(created))
    assert (record.username, record.mobile, record.registration_number) == ("zaero", "+16135550123", "12-3456")
    found = directory_entry(slapd, "zaero")
    assert found is not None and found[1]["mobile"] == ["+16135550123"]

    again = submit(
        admin,
        "/staff/people/clinicians/new",
        clinician(given_name="Other", work_email="other@partners.example", college="ordre des  INFIRMIÈRES"),
    )
    assert again.status_code == 422
    assert reason_in(app, "registration_taken") in again.get_data(as_text=True)
    other_college = submit(
        admin,
        "/staff/people/clinicians/new",
        clinician(given_name="Other", work_email="o@partners.example", college="CMQ"),
    )
    assert other_college.status_code == 303


def test_an_email_someone_signs_in_with_is_refused_at_its_field(app: Flask) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    taken = submit(admin, "/staff/people/employees/new", employee(work_email="jsmith@partners.example"))
    assert taken.status_code == 422
    assert reason_in(app, "work_email_taken") in taken.get_data(as_text=True)
    assert all_records(app) == []


# -- who may do what ---------------------------------------------------------------------------------------


ROLES = {
    "super-admin": (SUPER, None),
    "admin": (ADMIN, ST_MARY),
    "assigning-manager": (MANAGER, ST_MARY),
    "helpdesk": (HELPDESK, ST_MARY),
}
#: role -> action -> the status the page answers (303 done, 200 shown, 403 not the role's, 404 as absent).
EXPECTED: dict[str, dict[str, int]] = {
    "super-admin": {
        "list-employees": 200, "list-clinicians": 200, "view-employee": 200, "view-clinician": 200,
        "view-other-org": 200, "create-employee": 303, "create-clinician": 303, "edit-employee": 303,
        "edit-clinician": 303, "end-employee": 303, "edit-other-org": 303,
    },
    "admin": {
        "list-employees": 200, "list-clinicians": 200, "view-employee": 200, "view-clinician": 200,
        "view-other-org": 404, "create-employee": 303, "create-clinician": 303, "edit-employee": 303,
        "edit-clinician": 303, "end-employee": 303, "edit-other-org": 404,
    },
    "assigning-manager": {
        "list-employees": 200, "list-clinicians": 403, "view-employee": 200, "view-clinician": 403,
        "view-other-org": 404, "create-employee": 303, "create-clinician": 403, "edit-employee": 303,
        "edit-clinician": 403, "end-employee": 303, "edit-other-org": 404,
    },
    "helpdesk": {
        "list-employees": 200, "list-clinicians": 200, "view-employee": 200, "view-clinician": 200,
        "view-other-org": 404, "create-employee": 403, "create-clinician": 403, "edit-employee": 404,
        "edit-clinician": 404, "end-employee": 404, "edit-other-org": 404,
    },
}  # fmt: skip


@pytest.fixture
def world(app: Flask) -> Iterator[dict[str, PersonRecord]]:
    yield {
        "employee": seeded(app),
        "clinician": seeded(app, Kind.CLINICIAN),
        "other": seeded(app, organization=NORTH_CLINIC, given_name="Nils"),
    }


def attempt(app: Flask, visitor: Visitor, action: str, world: dict[str, PersonRecord]) -> int:
    employee_id, clinician_id, other_id = world["employee"].id, world["clinician"].id, world["other"].id

    def post_form(path: str, fields: dict[str, str]) -> int:
        page = visitor.get(path)
        if page.status_code != 200:
            return page.status_code
        return visitor.post(path, {"csrf_token": csrf_token(page.get_data(as_text=True)), **fields}).status_code

    def edit(section: str, record: PersonRecord, **more: str) -> int:
        fields = employee(given_name="Edited", work_email=record.work_email, manager="", version=record.version)
        fields.pop("organization")
        return post_form(f"/staff/people/{section}/{record.id}/edit", {**fields, **more})

    registration = {"college": "CMQ", "registration_number": "R-st-mary", "specialty": "Radiology", "mobile": ""}
    match action:
        case "list-employees":
            return visitor.get("/staff/people/employees").status_code
        case "list-clinicians":
            return visitor.get("/staff/people/clinicians").status_code
        case "view-employee":
            return visitor.get(f"/staff/people/employees/{employee_id}").status_code
        case "view-clinician":
            return visitor.get(f"/staff/people/clinicians/{clinician_id}").status_code
        case "view-other-org":
            return visitor.get(f"/staff/people/employees/{other_id}").status_code
        case "create-employee":
            return post_form("/staff/people/employees/new", employee(manager="", work_email="new.e@partners.example"))
        case "create-clinician":
            fields = clinician(manager="", work_email="new.c@partners.example", registration_number="NEW-1")
            return post_form("/staff/people/clinicians/new", fields)
        case "edit-employee":
            return edit("employees", world["employee"])
        case "edit-clinician":
            return edit("clinicians", world["clinician"], **registration)
        case "end-employee":
            return post_form(f"/staff/people/employees/{employee_id}/end", {"version": "1"})
        case "edit-other-org":
            return edit("employees", world["other"])
    raise AssertionError(action)


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_does_exactly_what_the_permission_table_says(
    app: Flask, world: dict[str, PersonRecord], role: str
) -> None:
    person, organization = ROLES[role]
    visitor = agent(app, person, role, organization)
    answers = {action: attempt(app, visitor, action, world) for action in EXPECTED[role]}
    assert answers == EXPECTED[role]


def test_out_of_reach_answers_exactly_as_absent(app: Flask) -> None:
    """A manager of st-mary reading north-clinic's employee by id: the very page a made-up id gets."""
    other = seeded(app, organization=NORTH_CLINIC)
    manager = agent(app, MANAGER, "assigning-manager", ST_MARY)
    theirs = manager.get(f"/staff/people/employees/{other.id}")
    nobody = manager.get("/staff/people/employees/999999")
    wrong_section = manager.get(f"/staff/people/employees/{seeded(app, Kind.CLINICIAN).id}")
    assert theirs.status_code == nobody.status_code == wrong_section.status_code == 404
    # Byte for byte but the sign-out form's CSRF token, whose signature carries the second it was made.
    pages = [without_token(page.get_data(as_text=True)) for page in (theirs, nobody, wrong_section)]
    assert pages[0] == pages[1] == pages[2]
    listed = manager.get("/staff/people/employees?organization=north-clinic").get_data(as_text=True)
    assert other.username not in listed
    assert "not_found" not in [r.outcome for r in rows(app, "record_view")]
    assert [r.outcome for r in rows(app, "record_view")][:3] == ["refused"] * 3


def test_a_manager_cannot_create_a_clinician_by_any_path(app: Flask, slapd: Slapd) -> None:
    manager = agent(app, MANAGER, "assigning-manager", ST_MARY)
    assert manager.get("/staff/people/clinicians/new").status_code == 403
    token = csrf_token(manager.get("/staff/people/employees/new").get_data(as_text=True))
    forced = manager.post("/staff/people/clinicians/new", {"csrf_token": token, **clinician(manager="")})
    assert forced.status_code == 403
    # Nor an employee in another organization, by editing the page's list.
    elsewhere = manager.post(
        "/staff/people/employees/new", {"csrf_token": token, **employee(organization=NORTH_CLINIC, manager="")}
    )
    assert elsewhere.status_code == 422
    assert reason_in(app, "organization_refused") in elsewhere.get_data(as_text=True)
    assert all_records(app) == []
    assert directory_entry(slapd, "zaero") is None and directory_entry(slapd, "jdupont") is None


def test_a_staff_member_changes_no_record_of_their_own_nor_of_a_higher_role(app: Flask) -> None:
    own = seeded(app, given_name="Ada", family_name="Admin", work_email="ada.record@partners.example")
    the = services_of(app)
    # The record's account is made an Admin's: a manager may read it but not change it.
    account = the.directory.get_account(own.account_id or "")
    assert account is not None
    from sspm.account import staff

    staff.grant(the.store, OPERATOR, account=account, role="admin", organization=ST_MARY)
    manager = agent(app, MANAGER, "assigning-manager", ST_MARY)
    assert manager.get(f"/staff/people/employees/{own.id}").status_code == 200
    assert manager.get(f"/staff/people/employees/{own.id}/edit").status_code == 404
    assert manager.get(f"/staff/people/employees/{own.id}/end").status_code == 404


# -- DN injection -----------------------------------------------------------------------------------------

HOSTILE = ["*", "a,ou=Services", "Dupont+sn=x", "equals=sign", "back\\slash", "#hash", ")(uid=*"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_a_name_in_its_own_entry_and_widens_nothing(app: Flask, slapd: Slapd, name: str) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    with as_directory_admin(slapd) as conn:
        conn.search(PEOPLE_DN, "(objectClass=*)", attributes=["1.1"])
        before = {e["dn"] for e in conn.response}
    created = submit(admin, "/staff/people/employees/new", employee(given_name=name, family_name=name, manager=""))
    assert created.status_code == 303, created.get_data(as_text=True)
    record = stored(app, record_id_of(created))
    assert re.fullmatch(r"[a-z][a-z0-9]{0,19}", record.username)
    found = directory_entry(slapd, record.username)
    assert found is not None
    entry_dn, attributes = found
    assert dn.same(dn.parent(entry_dn), f"ou=Staff,{PEOPLE_DN}")
    assert (attributes["sn"], attributes["givenName"]) == ([name], [name])
    with as_directory_admin(slapd) as conn:
        conn.search(PEOPLE_DN, "(objectClass=*)", attributes=["1.1"])
        after = {e["dn"] for e in conn.response}
    assert after - before == {entry_dn}, "one entry, where it was asked, and nothing else"


@pytest.mark.parametrize("name", ["Je\x00an", "x" * 10_000, "esc\x1b[31m"])
def test_a_name_no_directory_should_be_given_creates_nothing(app: Flask, slapd: Slapd, name: str) -> None:
    admin = agent(app, ADMIN, "admin", ST_MARY)
    refused = submit(admin, "/staff/people/employees/new", employee(family_name=name, manager=""))
    assert refused.status_code == 422
    assert all_records(app) == []
    with as_directory_admin(slapd) as conn:
        conn.search(f"ou=Staff,{PEOPLE_DN}", "(objectClass=inetOrgPerson)", attributes=["1.1"])
        assert conn.response == [] or all(e.get("type") != "searchResEntry" for e in conn.response)


# -- changing, ending, re-activating -------------------------------------------------------------------


def edit_fields(record: PersonRecord, **changes: object) -> dict[str, str]:
    fields = employee(
        given_name=record.given_name,
        family_name=record.family_name,
        language=record.language,
        work_email=record.work_email,
        job_title=record.job_title,
        department=record.department,
        manager="",
        start_date=record.start_date.isoformat(),
        version=record.version,
    )
    fields.pop("organization")
    fields.update({k: str(v) for k, v in changes.items()})
    return fields


def test_a_save_writes_the_directory_and_two_staff_never_overwrite_each_other_unseen(app: Flask) -> None:
    record = seeded(app)
    first, second = agent(app, ADMIN, "admin", ST_MARY), agent(app, SUPER, "super-admin", None)
    path = f"/staff/people/employees/{record.id}/edit"
    token_1 = csrf_token(first.get(path).get_data(as_text=True))
    token_2 = csrf_token(second.get(path).get_data(as_text=True))
    saved = first.post(path, {"csrf_token": token_1, **edit_fields(record, job_title="Head nurse")})
    assert saved.status_code == 303
    stale = second.post(path, {"csrf_token": token_2, **edit_fields(record, department="Oncologie Générale")})
    assert stale.status_code == 409
    body = stale.get_data(as_text=True)
    assert reason_in(app, "record_changed") in body
    assert 'value="Oncologie Générale"' in body, "what was typed is still there"
    assert "Head nurse" in body, "beside what is saved now"
    now = stored(app, record.id)
    assert (now.job_title, now.department, now.version) == ("Head nurse", "Radiology", 2)
    details = services_of(app).directory.account_details(record.account_id or "")
    assert details is not None and (details.title, details.department) == ("Head nurse", "Radiology")

    # Saving again, having seen both, is a choice: it goes through.
    again = second.post(path, {"csrf_token": token_2, **edit_fields(now, department="Oncologie Générale")})
    assert again.status_code == 303
    details = services_of(app).directory.account_details(record.account_id or "")
    assert details is not None and (details.title, details.department) == ("Head nurse", "Oncologie Générale")


def test_a_new_email_is_not_used_to_sign_in_until_its_owner_confirms_it(app: Flask, backing: Backing) -> None:
    record = seeded(app)
    set_up(app, record)
    admin = agent(app, ADMIN, "admin", ST_MARY)
    changed = submit(
        admin, f"/staff/people/employees/{record.id}/edit", edit_fields(record, work_email="new.curie@partners.example")
    )
    assert changed.status_code == 303
    now = stored(app, record.id)
    assert (now.work_email, now.pending_email) == (record.work_email, "new.curie@partners.example")
    directory = services_of(app).directory
    assert directory.find_account("new.curie@partners.example") is None
    assert directory.verify_password(record.work_email, PASSWORD)[1].outcome is Outcome.OK
    run_jobs(app)
    assert mails_to(backing, "new.curie@partners.example"), "the new address gets its proof link"


def test_a_new_email_of_an_account_awaiting_set_up_gets_the_set_up_link_and_the_old_one_dies(
    app: Flask, backing: Backing
) -> None:
    record = seeded(app)
    run_jobs(app)
    first = SETUP_LINK.search(text_of(mails_to(backing, record.work_email)[0]))
    assert first
    admin = agent(app, ADMIN, "admin", ST_MARY)
    changed = submit(
        admin,
        f"/staff/people/employees/{record.id}/edit",
        edit_fields(record, work_email="typo.fixed@partners.example"),
    )
    assert changed.status_code == 303
    assert stored(app, record.id).work_email == "typo.fixed@partners.example"
    store = services_of(app).store
    assert tokens.find(store, tokens.digest(first.group(1)), SETUP_PURPOSE) is None
    run_jobs(app)
    second = SETUP_LINK.search(text_of(mails_to(backing, "typo.fixed@partners.example")[0]))
    assert second and tokens.find(store, tokens.digest(second.group(1)), SETUP_PURPOSE) == record.account_id


def test_staff_send_the_set_up_email_again_and_the_old_link_dies(app: Flask, backing: Backing) -> None:
    record = seeded(app)
    run_jobs(app)
    old = SETUP_LINK.search(text_of(mails_to(backing, record.work_email)[0]))
    assert old
    admin = agent(app, ADMIN, "admin", ST_MARY)
    page = admin.get(f"/staff/people/employees/{record.id}")
    token = csrf_token(page.get_data(as_text=True))
    again = admin.post(f"/staff/people/employees/{record.id}/setup-link", {"csrf_token": token})
    assert again.status_code == 303
    store = services_of(app).store
    assert tokens.find(store, tokens.digest(old.group(1)), SETUP_PURPOSE) is None
    run_jobs(app)
    new = SETUP_LINK.search(text_of(mails_to(backing, record.work_email)[-1]))
    assert new and new.group(1) != old.group(1)
    assert tokens.find(store, tokens.digest(new.group(1)), SETUP_PURPOSE) == record.account_id

    set_up(app, record)
    done = admin.post(f"/staff/people/employees/{record.id}/setup-link", {"csrf_token": token})
    assert done.status_code == 422
    assert reason_in(app, "already_set_up") in done.get_data(as_text=True)


def test_ending_disables_signs_out_voids_links_and_tells_the_manager_and_reactivating_undoes_it(
    app: Flask, backing: Backing
) -> None:
    manager_account = services_of(app).directory.find_account(MANAGER.uid)
    assert manager_account is not None
    record = seeded(app, manager=MANAGER.uid)
    set_up(app, record)
    directory = services_of(app).directory
    owner = Visitor(app)
    assert sign_in(owner, record.username, PASSWORD).status_code == 303
    assert owner.get("/enroll").status_code == 200, "signed in"
    admin = agent(app, ADMIN, "admin", ST_MARY)
    confirm = admin.get(f"/staff/people/employees/{record.id}/end")
    assert confirm.status_code == 200 and stored(app, record.id).status == "active", "GET only asks"
    ended = admin.post(
        f"/staff/people/employees/{record.id}/end", {"csrf_token": csrf_token(confirm.get_data(as_text=True))}
    )
    assert ended.status_code == 303
    assert stored(app, record.id).status == "ended"
    assert directory.verify_password(record.username, PASSWORD)[1].outcome is Outcome.DISABLED
    assert not still_to_set_up(services_of(app).store, record.account_id or "")
    assert [r.outcome for r in rows(app, "record_end")] == ["ok"]
    assert rows(app, "record_end")[0].details["sessions_ended"] >= 1
    assert owner.get("/enroll").status_code != 200, "signed out everywhere"
    run_jobs(app)
    notice = mails_to(backing, MANAGER.mail)
    assert len(notice) == 1 and record.username in text_of(notice[0])
    page = admin.get(f"/staff/people/employees/{record.id}")
    assert "Re-activate the record" in page.get_data(as_text=True)
    assert "Change the record" not in page.get_data(as_text=True), "no edit of an ended record, and no delete"

    again = admin.post(
        f"/staff/people/employees/{record.id}/reactivate", {"csrf_token": csrf_token(page.get_data(as_text=True))}
    )
    assert again.status_code == 303
    assert stored(app, record.id).status == "active" and stored(app, record.id).end_date is None
    assert directory.verify_password(record.username, PASSWORD)[1].outcome is Outcome.OK


def test_ending_or_reactivating_a_record_asks_for_the_staff_password_again_after_a_while(app: Flask) -> None:
    # Either disables or enables a directory account: a console left open on a ward desk must not do it.
    record = seeded(app)
    set_up(app, record)
    admin = agent(app, ADMIN, "admin", ST_MARY)
    confirm = admin.get(f"/staff/people/employees/{record.id}/end")
    assert confirm.status_code == 200
    handle = staff_handle(admin)
    assert handle is not None
    window = app.config["SSPM_SETTINGS"].staff_reauth_minutes * 60
    rewrite(app, staff_key(handle), reauthenticated_at=time.time() - window - 1)
    token = {"csrf_token": csrf_token(confirm.get_data(as_text=True))}
    for action in ("end", "reactivate"):
        sent = admin.post(f"/staff/people/employees/{record.id}/{action}", token)
        assert sent.status_code == 302 and "/staff/reauth" in sent.headers["Location"], action
    assert stored(app, record.id).status == "active", "untouched"
    assert directory_entry_enabled(app, record)
    assert rows(app, "record_end") == []


def directory_entry_enabled(app: Flask, record: PersonRecord) -> bool:
    return services_of(app).directory.verify_password(record.username, PASSWORD)[1].outcome is Outcome.OK


def test_a_record_whose_end_date_has_come_is_ended_by_the_scheduled_job_and_only_then(app: Flask) -> None:
    the = services_of(app)
    soon = date.today() + timedelta(days=3)
    leaving = seeded(app, end_date=soon)
    staying = seeded(app, given_name="Irène", work_email="i.curie@partners.example", end_date=soon + timedelta(days=1))
    set_up(app, leaving)
    job = Actor.job("people-end-dates")

    assert service.end_due_records(the, job, soon - timedelta(days=1)) == (0, 0), "not before the day"
    assert service.end_due_records(the, job, soon) == (1, 0)

    assert stored(app, leaving.id).status == "ended" and stored(app, staying.id).status == "active"
    assert the.directory.verify_password(leaving.username, PASSWORD)[1].outcome is Outcome.DISABLED
    (row,) = rows(app, "record_end")
    assert (row.actor_kind, row.actor_id, row.outcome) == ("job", "people-end-dates", "ok")
    assert service.end_due_records(the, job, soon) == (0, 0), "ended once"


def test_a_record_whose_account_was_changed_or_removed_outside_sspm_says_so(app: Flask, slapd: Slapd) -> None:
    record = seeded(app)
    admin = agent(app, ADMIN, "admin", ST_MARY)
    found = directory_entry(slapd, record.username)
    assert found is not None
    with as_directory_admin(slapd) as conn:
        conn.modify(found[0], {"sn": [(ldap3.MODIFY_REPLACE, ["Sklodowska"])]})
    page = admin.get(f"/staff/people/employees/{record.id}").get_data(as_text=True)
    assert "The directory account was changed outside SSPM. What differs from this record: family name." in page
    with as_directory_admin(slapd) as conn:
        conn.delete(found[0])
    gone = admin.get(f"/staff/people/employees/{record.id}")
    assert gone.status_code == 200
    assert "The directory account of this record is gone" in gone.get_data(as_text=True)


def test_lists_search_filter_and_page_within_reach_only(app: Flask) -> None:
    for number in range(22):
        seeded(app, given_name=f"Ana{number:02d}", family_name="Zéphyr", work_email=f"ana{number}@partners.example")
    seeded(app, organization=NORTH_CLINIC, given_name="Nord", family_name="Zéphyr", work_email="nord@partners.example")
    admin = agent(app, ADMIN, "admin", ST_MARY)
    first = admin.get("/staff/people/employees?q=zephyr").get_data(as_text=True)
    assert first.count("Zéphyr, Ana") == 20 and "Nord" not in first and "Next records" in first
    second = admin.get("/staff/people/employees?q=zephyr&page=2").get_data(as_text=True)
    assert second.count("Zéphyr, Ana") == 2 and "Next records" not in second
    super_admin = agent(app, SUPER, "super-admin", None)
    north = super_admin.get("/staff/people/employees?q=ZEPH&organization=north-clinic").get_data(as_text=True)
    assert "Zéphyr, Nord" in north and "Ana00" not in north
    assert "Ana00" not in super_admin.get("/staff/people/employees?status=ended").get_data(as_text=True)


def test_the_console_offers_people_to_every_role_that_reads_records(app: Flask) -> None:
    helpdesk = agent(app, HELPDESK, "helpdesk", ST_MARY)
    assert 'href="/staff/people"' in helpdesk.get("/staff/").get_data(as_text=True)
    assert helpdesk.get("/staff/people").status_code == 200


# -- the demo -------------------------------------------------------------------------------------------------


def test_the_demo_seeds_employees_and_clinicians_of_two_organizations_already_set_up(
    app: Flask, slapd: Slapd, backing: Backing
) -> None:
    environ = sspm_environ(slapd, redis_url=backing.redis_url, database_url=backing.database_url)
    shown = seed_demo_people(environ)
    assert [(p.uid, p.kind, p.organization, status) for p, status in shown] == [
        ("ndiallo", "employee", ST_MARY, "active"),
        ("pobrien", "employee", NORTH_CLINIC, "active"),
        ("ctremblay", "clinician", ST_MARY, "active"),
        ("akhan", "clinician", NORTH_CLINIC, "active"),
    ]
    assert seed_demo_people(environ) == shown, "a restart makes nothing twice"
    table = people_table(shown)
    directory = services_of(app).directory
    for person, _status in shown:
        assert f"{person.uid:<10} {person.password:<26}" in table
        assert directory.verify_password(person.uid, person.password)[1].outcome is Outcome.OK
    # As staff see them: the records are there, and nothing differs from the directory.
    admin = agent(app, ADMIN, "admin", ST_MARY)
    listed = admin.get("/staff/people/clinicians").get_data(as_text=True)
    assert "Tremblay, Chloé" in listed and "Khan" not in listed
    record = next(r for r in all_records(app) if r.username == "ctremblay")
    page = admin.get(f"/staff/people/clinicians/{record.id}").get_data(as_text=True)
    assert "changed outside SSPM" not in page and "waiting for its owner" not in page
