"""The audit trail viewer: each role's reach, the filter, keyset pages, the chain's verification, the CSV export.

A morning's trail is written by the one audit writer (``audit.record``)
about accounts of st-mary and north-clinic, a name that is nobody, and
a Helpdesk agent's work; what each viewer may see is then worked out
from the lab's seed (which organization each person is in), not from the
code under test, and compared with the rows the pages show.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from lab import Pki, Slapd
from lab.seed import NORTH_CLINIC, ST_MARY
from sspm.account import audit
from sspm.account.audit import Action
from sspm.account.audit_query import Filter, Organizations, Viewer, chain_status, page
from sspm.console.service import CSV_COLUMNS, spreadsheet_safe
from sspm.infra.store import AuditEvent
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.roles import Grants, Permission, reach
from tests.flows.test_console_roles import PEOPLE, account_of, as_staff, make_staff, rows, start_staff_slapd
from tests.flows.test_realms import with_probes
from tests.support import services_of
from tests.support.flows import AppFactory, Visitor, csrf_token, says

IP = "198.51.100.7"
_SEQ = re.compile(r'<tr data-seq="(\d+)">')
_OLDER = re.compile(r'<a href="([^"]*before=\d+[^"]*)">Older rows</a>')
#: What a spreadsheet would take for a formula, typed where a user name goes.
INJECTIONS = ['=HYPERLINK("http://evil.example","x")', "+41 55", "-2+3", "@SUM(A1)", "\tpadded", "\rreturned"]


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probes(build_app(slapd))


def morning(app: Flask) -> dict[str, str]:
    """Staff granted, then a morning's rows; the ids of the people in it by user name."""
    make_staff(app, "super1", "super-admin", None)
    make_staff(app, "admin1", "admin", ST_MARY)
    make_staff(app, "manager1", "assigning-manager", ST_MARY)
    helpdesk1 = make_staff(app, "helpdesk1", "helpdesk", ST_MARY)
    store = services_of(app).store
    ids = {uid: account_of(app, uid).id for uid in ("jsmith", "lsmith", "klee", "achen", "mdubois", "helpdesk1")}
    visitor = Actor.anonymous(IP)
    agent = Actor(ActorKind.STAFF, id=helpdesk1.id, role="helpdesk", client_address=IP)
    for action, outcome, who, by in [
        (Action.SIGN_IN, "ok", "jsmith", visitor),
        (Action.SIGN_IN, "bad_credentials", "lsmith", visitor),
        (Action.SIGN_IN, "locked", "klee", visitor),
        (Action.CHANGE, "ok", "achen", visitor),
        (Action.SIGN_IN, "ok", "mdubois", visitor),
        (Action.HELPDESK_VIEW, "shown", "klee", agent),
        (Action.HELPDESK_UNLOCK, "ok", "klee", agent),
        # Refused: opening nothing, so mdubois's other rows stay out of the agent's reach.
        (Action.HELPDESK_VIEW, "refused", "mdubois", agent),
        (Action.SIGN_IN, "ok", "klee", visitor),
    ]:
        audit.record(store, action, outcome, actor=by, account_id=ids[who], username=who)
    audit.record(store, Action.SIGN_IN, "bad_credentials", actor=visitor, typed="nobody-at-all")
    return ids


def trail(app: Flask) -> list[AuditEvent]:
    with services_of(app).store.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())))


def organization_in_seed(subject: str) -> str | None:
    person = PEOPLE.get(subject)
    return person.organization if person else None


def shown(visitor: Visitor, query: str = "") -> list[int]:
    """Every row the viewer is shown for ``query``, following "Older rows" to the end."""
    seen: list[int] = []
    path = "/staff/audit" + (f"?{query}" if query else "")
    while True:
        page_ = visitor.get(path)
        assert page_.status_code == 200, page_.status
        html = page_.get_data(as_text=True)
        seen += [int(s) for s in _SEQ.findall(html)]
        older = _OLDER.search(html)
        if older is None:
            return seen
        path = older.group(1).replace("&amp;", "&")


def export(visitor: Visitor, **fields: str) -> list[dict[str, str]]:
    token = csrf_token(visitor.get("/staff/audit").get_data(as_text=True))
    answer = visitor.post("/staff/audit/export", {"csrf_token": token, **fields})
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv" and answer.headers["Content-Disposition"].startswith("attachment;")
    text = answer.get_data().decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


# -- who sees what --------------------------------------------------------------------------------------


def test_a_super_admin_sees_every_row(app: Flask) -> None:
    morning(app)
    assert shown(as_staff(app, "super1")) == [r.seq for r in trail(app)]


def test_an_admin_sees_the_rows_about_accounts_of_their_organizations_only(app: Flask) -> None:
    morning(app)
    expected = [r.seq for r in trail(app) if r.account_id and organization_in_seed(r.subject) == ST_MARY]
    got = shown(as_staff(app, "admin1"))
    assert got == expected
    subjects = {r.subject for r in trail(app) if r.seq in got}
    assert {"jsmith", "klee", "achen"} <= subjects and not subjects & {"lsmith", "mdubois", "super1"}


def test_a_helpdesk_agent_sees_their_own_actions_and_the_accounts_they_opened(database_url: str, app: Flask) -> None:
    """On SQLite and PostgreSQL: "opened" is a subquery over the trail itself."""
    ids = morning(app)
    expected = [
        r.seq
        for r in trail(app)
        if (r.actor_kind == "staff" and r.actor_id == ids["helpdesk1"]) or r.account_id == ids["klee"]
    ]
    got = shown(as_staff(app, "helpdesk1"))
    assert got == expected
    mine = {(r.action, r.subject) for r in trail(app) if r.seq in got}
    assert (Action.SIGN_IN.value, "klee") in mine, "what happened to an account they opened, before and after"
    assert (Action.HELPDESK_VIEW.value, "mdubois") in mine, "their own refused attempt"
    assert (Action.SIGN_IN.value, "mdubois") not in mine and (Action.SIGN_IN.value, "jsmith") not in mine


def test_an_assigning_manager_has_no_audit_trail_nor_export(app: Flask) -> None:
    morning(app)
    manager = as_staff(app, "manager1")
    assert manager.get("/staff/audit").status_code == 403
    token = csrf_token(manager.get("/staff/roles").get_data(as_text=True))  # any console page's token
    assert manager.post("/staff/audit/export", {"csrf_token": token}).status_code == 403
    assert rows(app, Action.AUDIT_EXPORT) == []


def test_an_admins_page_reads_a_bounded_number_of_rows_and_goes_on_where_it_stopped(app: Flask) -> None:
    """Rows outside reach cost reading but are never shown; a page that ran out of budget says where to go on."""
    morning(app)
    the = services_of(app)
    admin = account_of(app, "admin1")
    viewer = Viewer(admin.id, reach(Grants.of([("admin", ST_MARY)]), Permission.AUDIT_VIEW))
    found = Organizations(the.directory, the.settings.organization_from, the.settings.directory.base_dn)
    expected = [r.seq for r in trail(app) if r.account_id and organization_in_seed(r.subject) == ST_MARY]
    collected: list[int] = []
    before = None
    pages = 0
    while True:
        one = page(the.store, viewer, Filter(), found, before=before, size=2, scan_limit=3)
        assert one.scanned <= 3 and len(one.events) <= 2
        collected += [e.seq for e in one.events]
        pages += 1
        if one.older is None:
            break
        before = one.older
    assert collected == expected and pages > len(expected) // 2


# -- the filter ----------------------------------------------------------------------------------------


def test_the_filter_by_account_actor_action_outcome_and_dates(database_url: str, app: Flask) -> None:
    """On SQLite and PostgreSQL (whose session speaks another time zone): whole days in SSPM's time zone."""
    ids = morning(app)
    boss = as_staff(app, "super1")
    every = trail(app)
    zone = ZoneInfo(app.config["SSPM_SETTINGS"].timezone)
    today = datetime.now(zone).date()
    about = {r.seq for r in every if r.account_id == ids["klee"]}

    assert set(shown(boss, "account=klee")) == about
    assert set(shown(boss, f"account={ids['klee']}")) == about
    assert set(shown(boss, "actor=helpdesk1")) == {r.seq for r in every if r.actor_id == ids["helpdesk1"]}
    assert set(shown(boss, "action=sign_in")) == {r.seq for r in every if r.action == "sign_in"}
    assert set(shown(boss, "outcome=locked")) == {r.seq for r in every if r.outcome == "locked"}
    assert set(shown(boss, "action=sign_in&outcome=ok&account=klee")) == {
        r.seq for r in every if r.action == "sign_in" and r.outcome == "ok" and r.account_id == ids["klee"]
    }
    assert shown(boss, f"since={today}&until={today}") == [r.seq for r in every]
    assert shown(boss, f"since={today + timedelta(days=1)}") == []
    assert shown(boss, f"until={today - timedelta(days=1)}") == []

    backwards = boss.get(f"/staff/audit?since={today}&until={today - timedelta(days=1)}")
    assert backwards.status_code == 422 and says(backwards, "The end date is before the start date.")
    assert boss.get("/staff/audit?action=drop_table").status_code == 422


def test_a_filter_never_widens_the_reach(app: Flask) -> None:
    ids = morning(app)
    admin = as_staff(app, "admin1")
    assert shown(admin, "account=lsmith") == [] and shown(admin, f"account={ids['lsmith']}") == []
    assert shown(as_staff(app, "helpdesk1"), "account=jsmith") == []


def test_viewing_changes_no_row(app: Flask) -> None:
    morning(app)
    before = [(r.seq, r.digest) for r in trail(app)]
    boss = as_staff(app, "super1")
    for query in ("", "account=klee", "action=sign_in&before=5", "since=2020-01-01&until=2030-01-01", "before=x"):
        assert boss.get(f"/staff/audit?{query}").status_code == 200, query
    assert [(r.seq, r.digest) for r in trail(app)] == before


def test_pages_are_keyset_so_rows_written_meanwhile_never_shift_a_page(app: Flask) -> None:
    ids = morning(app)
    store = services_of(app).store
    for n in range(110):
        audit.record(store, Action.SIGN_IN, "ok", actor=Actor.anonymous(IP), account_id=ids["jsmith"],
                     username="jsmith", details={"n": n})  # fmt: skip
    boss = as_staff(app, "super1")
    first = boss.get("/staff/audit?account=jsmith")
    html = first.get_data(as_text=True)
    older = _OLDER.search(html)
    assert older is not None and len(_SEQ.findall(html)) == 50
    second_before = boss.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    for _ in range(5):
        audit.record(
            store, Action.SIGN_IN, "ok", actor=Actor.anonymous(IP), account_id=ids["jsmith"], username="jsmith"
        )
    second_after = boss.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert _SEQ.findall(second_before) == _SEQ.findall(second_after)
    expected = [r.seq for r in trail(app) if r.account_id == ids["jsmith"]]
    assert shown(boss, "account=jsmith") == expected and len(expected) == 116


# -- the chain -----------------------------------------------------------------------------------------


def test_a_row_changed_in_the_database_shows_as_a_broken_chain(app: Flask) -> None:
    morning(app)
    store = services_of(app).store
    victim = trail(app)[-3]
    with store.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == victim.seq).values(outcome="ok"))
    page_ = as_staff(app, "admin1").get("/staff/audit")
    assert page_.status_code == 200
    assert says(page_, "The trail does not verify")
    assert says(page_, f"The chain of rows is broken at row {victim.seq}")


def test_an_intact_chain_says_so_and_its_check_is_kept_for_a_while(app: Flask) -> None:
    morning(app)
    store = services_of(app).store
    page_ = as_staff(app, "helpdesk1").get("/staff/audit")
    count = len(trail(app))
    assert says(page_, f"The trail verifies ({count} rows): no row was changed, removed or inserted.")
    kept = chain_status(store, max_age=3600)
    with store.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="edited"))
    assert chain_status(store, max_age=3600) is kept, "within its age, the last walk is shown"
    walked = chain_status(store, max_age=0)
    assert not walked.intact and walked.broken is not None and walked.broken.seq == 2


# -- the export ----------------------------------------------------------------------------------------


def test_the_export_holds_the_rows_of_the_filter_in_reach_and_is_itself_audited(app: Flask) -> None:
    ids = morning(app)
    boss = as_staff(app, "super1")
    got = export(boss, account="klee", action="sign_in")
    assert list(got[0]) == list(CSV_COLUMNS)
    expected = [r for r in trail(app) if r.account_id == ids["klee"] and r.action == "sign_in"]
    assert [int(r["seq"]) for r in got] == [r.seq for r in expected]
    assert got[0]["subject"] == "klee" and got[0]["account_id"] == ids["klee"] and got[0]["at_utc"].endswith("Z")
    super1 = account_of(app, "super1")
    assert rows(app, Action.AUDIT_EXPORT) == [
        ("exported", None, super1.id, {"filter": {"account": "klee", "action": "sign_in"}})
    ]

    admin_rows = export(as_staff(app, "admin1"))
    in_reach = {r.seq for r in trail(app) if r.account_id and organization_in_seed(r.subject) == ST_MARY}
    assert {int(r["seq"]) for r in admin_rows} == in_reach, "the export's reach is the pages' reach"
    assert not {r["subject"] for r in admin_rows} & {"lsmith", "mdubois"}


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(app: Flask) -> None:
    morning(app)
    store = services_of(app).store
    for n, typed in enumerate(INJECTIONS):
        audit.record(store, Action.SIGN_IN, "bad_credentials", actor=Actor.anonymous(IP), account_id=f"inj-{n}",
                     username=typed, details={"note": typed})  # fmt: skip
    got = export(as_staff(app, "super1"), action="sign_in", outcome="bad_credentials")
    subjects = {r["subject"] for r in got if r["account_id"].startswith("inj-")}
    assert subjects == {"'" + typed for typed in INJECTIONS}
    every_cell = [cell for r in got for cell in r.values()]
    assert not [c for c in every_cell if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_each_formula_start_is_guarded_and_ordinary_text_left_alone(start: str) -> None:
    assert spreadsheet_safe(f"{start}1+1") == f"'{start}1+1"
    assert spreadsheet_safe(f"jsmith{start}") == f"jsmith{start}"


def test_an_export_of_nothing_is_still_a_csv_with_its_header(app: Flask) -> None:
    morning(app)
    got = export(as_staff(app, "helpdesk1"), account="jsmith")
    assert got == []
    with services_of(app).store.session() as session:
        exported = session.scalar(select(func.count()).where(AuditEvent.action == Action.AUDIT_EXPORT.value))
    assert exported == 1


def test_north_clinic_is_someone_elses_organization_here() -> None:
    """The seed this file's expectations rest on: if it moves, these tests must be read again."""
    assert PEOPLE["lsmith"].organization == NORTH_CLINIC and PEOPLE["klee"].organization == ST_MARY
    assert PEOPLE["super1"].organization is None
