"""The console's reports: each scoped by role, filtered, paged, exported to CSV (guarded and audited).

The demo's directory on a real slapd (st-mary and north-clinic people,
achen expiring in ~5 days, mdubois expired, rpatel disabled), copied into
the synced table by the sync use case itself (``sync_all``). What each
viewer should see is worked out from the table's rows and the lab's seed
(which organization each person is in), not from the code under test.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from lab import Pki, Slapd
from lab.seed import NORTH_CLINIC, ST_MARY
from sspm.account import audit
from sspm.account.audit import Action
from sspm.account.sync import organization_for, sync_all
from sspm.infra.store import DirectoryAccount, utcnow
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.organizations import key
from sspm.policy.roles import Grants, Permission, reach
from sspm.reports import service
from sspm.reports.service import ACCOUNT_COLUMNS, RECOVERY_COLUMNS, Kind, Query
from tests.flows.test_console_roles import account_of, as_staff, make_staff, rows, start_staff_slapd
from tests.flows.test_realms import with_probes
from tests.support import services_of
from tests.support.flows import AppFactory, Visitor, csrf_token

_ROW = re.compile(r'<tr data-row="([^"]*)">')
_NEXT = re.compile(r'<a href="([^"]*after_id=[^"]*)">Next page</a>')
IP = "198.51.100.9"
#: What a spreadsheet would take for a formula, as a display name in the directory's copy.
FORMULA = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    app = with_probes(build_app(slapd))
    make_staff(app, "super1", "super-admin", None)
    make_staff(app, "admin1", "admin", ST_MARY)
    make_staff(app, "helpdesk1", "helpdesk", NORTH_CLINIC)
    make_staff(app, "manager1", "assigning-manager", ST_MARY)
    the = services_of(app)
    sync_all(the.store, the.directory, organization_for(the))
    return app


def table(app: Flask) -> list[DirectoryAccount]:
    with services_of(app).store.session() as session:
        found = list(session.scalars(select(DirectoryAccount)))
        session.expunge_all()
        return found


def shown(visitor: Visitor, path: str) -> list[str]:
    """Every row the viewer is shown, following "Next page" to the end."""
    seen: list[str] = []
    while True:
        page = visitor.get(path)
        assert page.status_code == 200, page.status
        html = page.get_data(as_text=True)
        seen += _ROW.findall(html)
        following = _NEXT.search(html)
        if following is None:
            return seen
        path = following.group(1).replace("&amp;", "&")


def export(visitor: Visitor, kind: Kind, **fields: str) -> list[dict[str, str]]:
    token = csrf_token(visitor.get(f"/staff/reports/{kind.value}").get_data(as_text=True))
    answer = visitor.post(f"/staff/reports/{kind.value}/export", {"csrf_token": token, **fields})
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv" and answer.headers["Content-Disposition"].startswith("attachment;")
    text = answer.get_data().decode("utf-8-sig")
    columns = RECOVERY_COLUMNS if kind is Kind.RECOVERIES else ACCOUNT_COLUMNS
    assert text.splitlines()[0] == ",".join(columns)
    return list(csv.DictReader(io.StringIO(text)))


VIEWERS = {"super1": None, "admin1": ST_MARY, "helpdesk1": NORTH_CLINIC}


def reachable(app: Flask, viewer: str) -> list[DirectoryAccount]:
    organization = VIEWERS[viewer]
    return [r for r in table(app) if organization is None or r.organization == key(organization)]


@pytest.mark.both_databases
@pytest.mark.parametrize("viewer", sorted(VIEWERS))
def test_each_account_report_shows_exactly_the_accounts_in_the_viewers_reach(app: Flask, viewer: str) -> None:
    now = utcnow()
    with services_of(app).store.session() as session:
        session.execute(update(DirectoryAccount).values(locked=True, locked_since=now))  # every account, for this story
        awaiting = [account_of(app, uid).id for uid in ("klee", "mdubois")]
        session.execute(update(DirectoryAccount).where(DirectoryAccount.account_id.in_(awaiting)).values(set_up=False))
    visitor = as_staff(app, viewer)
    mine = reachable(app, viewer)
    assert mine, "the seed puts someone in every viewer's reach"
    assert sorted(shown(visitor, "/staff/reports/locked")) == sorted(r.login for r in mine)

    def expires(r: DirectoryAccount) -> float | None:
        return (r.expires_at.replace(tzinfo=now.tzinfo) - now).total_seconds() if r.expires_at else None

    expiring = sorted(r.login for r in mine if (s := expires(r)) is not None and 0 < s <= 14 * 86400)
    expired = sorted(r.login for r in mine if (s := expires(r)) is not None and s <= 0)
    assert sorted(shown(visitor, "/staff/reports/expiring?days=14")) == expiring
    assert sorted(shown(visitor, "/staff/reports/expired")) == expired
    not_enrolled = sorted(r.login for r in mine if not r.enrolled and r.set_up and not r.disabled)
    assert sorted(shown(visitor, "/staff/reports/not-enrolled")) == not_enrolled
    assert sorted(shown(visitor, "/staff/reports/not-set-up")) == sorted(r.login for r in mine if not r.set_up)
    if viewer == "super1":
        assert "achen" in expiring and "mdubois" in expired


def test_the_seed_gives_each_organization_its_own_people(app: Flask) -> None:
    """The scope test above means something only if the organizations differ."""
    organizations = {r.organization for r in table(app)}
    assert {key(ST_MARY), key(NORTH_CLINIC)} <= organizations


def test_an_organization_out_of_reach_is_never_offered_nor_shown(app: Flask) -> None:
    visitor = as_staff(app, "admin1")
    page = visitor.get("/staff/reports/locked")
    assert key(NORTH_CLINIC) not in page.get_data(as_text=True)
    edited = visitor.get(f"/staff/reports/locked?organization={key(NORTH_CLINIC)}")
    assert edited.status_code == 422
    assert _ROW.findall(edited.get_data(as_text=True)) == []
    assert "Choose one of the organizations in the list." in edited.get_data(as_text=True)


def test_a_manager_without_the_helpdesk_permission_is_refused_and_it_is_audited(app: Flask) -> None:
    visitor = as_staff(app, "manager1")
    assert visitor.get("/staff/reports/locked").status_code == 403
    assert visitor.get("/staff/reports/").status_code == 403
    assert [r for r in rows(app, Action.REQUEST) if r[0] == "not_permitted"]


@pytest.mark.both_databases
def test_pages_are_keyset_and_each_row_comes_once(app: Flask) -> None:
    with services_of(app).store.session() as session:
        for i in range(123):
            session.add(
                DirectoryAccount(
                    account_id=f"bulk-{i:04d}",
                    login=f"bulk{i:04d}",
                    display_name=f"Bulk {i}",
                    organization=key(ST_MARY),
                    locked=True,
                    last_seen_at=utcnow(),
                )
            )
    seen = shown(as_staff(app, "admin1"), "/staff/reports/locked")
    assert len(seen) == len(set(seen)) and {f"bulk{i:04d}" for i in range(123)} <= set(seen)


@pytest.mark.both_databases
def test_recent_resets_and_unlocks_by_method_within_reach(app: Flask) -> None:
    store = services_of(app).store
    ids = {uid: account_of(app, uid).id for uid in ("jsmith", "mdubois", "achen", "klee")}
    organization = {r.login: r.organization for r in table(app)}
    user = Actor.anonymous(IP)
    agent = Actor(ActorKind.STAFF, id=account_of(app, "helpdesk1").id, role="helpdesk", client_address=IP)
    for action, who, by, outcome in [
        (Action.FORGOT_RESET, "jsmith", user, "ok"),
        (Action.RESET_BY_EMAIL, "mdubois", user, "ok"),
        (Action.HELPDESK_RESET, "mdubois", agent, "ok"),
        (Action.UNLOCK, "achen", user, "ok"),
        (Action.HELPDESK_UNLOCK, "klee", agent, "ok"),
        (Action.FORGOT_RESET, "klee", user, "bad_answers"),  # not done: not counted
    ]:
        audit.record(store, action, outcome, actor=by, account_id=ids[who], username=who)
    audit.record(store, Action.FORGOT_RESET, "ok", actor=user, account_id=ids["achen"], username="achen")
    audit.record(store, Action.HELPDESK_RESET, "ok", actor=agent, account_id=ids["jsmith"], username="jsmith")
    for viewer in VIEWERS:
        got = export(as_staff(app, viewer), Kind.RECOVERIES, days="30")
        wanted_org = VIEWERS[viewer]
        for r in got:
            assert wanted_org is None or r["organization"] == key(wanted_org)
        logins = sorted(r["login"] for r in got)
        expected = sorted(
            who
            for who in ["jsmith", "mdubois", "mdubois", "achen", "klee", "achen", "jsmith"]
            if wanted_org is None or organization[who] == key(wanted_org)
        )
        assert logins == expected, viewer
    every = {(r["login"], r["method"], r["what"]) for r in export(as_staff(app, "super1"), Kind.RECOVERIES)}
    assert {
        ("jsmith", "questions", "reset"),
        ("mdubois", "email-link", "reset"),
        ("mdubois", "helpdesk", "reset"),
        ("achen", "questions", "unlock"),
        ("klee", "helpdesk", "unlock"),
    } <= every
    # Seen from 31 days on, none of them is within the last 30 days.
    later = service.page(
        store,
        Query(Kind.RECOVERIES, days=30),
        reach(Grants.of([("super-admin", "*")]), Permission.HELPDESK),
        now=utcnow() + timedelta(days=31),
    )
    assert later.rows == []


def test_the_csv_is_guarded_against_formulas_and_each_export_is_audited(app: Flask) -> None:
    jsmith = account_of(app, "jsmith")
    with services_of(app).store.session() as session:
        session.execute(
            update(DirectoryAccount)
            .where(DirectoryAccount.account_id == jsmith.id)
            .values(display_name=FORMULA, locked=True, locked_since=utcnow() - timedelta(minutes=3), failures=5)
        )
    got = export(as_staff(app, "admin1"), Kind.LOCKED, organization=key(ST_MARY))
    row = next(r for r in got if r["login"] == "jsmith")
    assert row["display_name"] == "'" + FORMULA
    assert row["failures"] == "5" and row["locked_since_utc"].endswith("Z")
    exported = rows(app, Action.REPORT_EXPORT)
    assert [(o, d) for o, _a, _b, d in exported] == [
        ("exported", {"report": "locked", "organization": key(ST_MARY)}),
    ]
    assert exported[0][2] == account_of(app, "admin1").id


def test_an_export_without_its_token_is_refused_and_not_audited(app: Flask) -> None:
    visitor = as_staff(app, "super1")
    answer = visitor.post("/staff/reports/locked/export", {})
    assert answer.status_code in (303, 400)
    assert "text/csv" not in (answer.mimetype or "")
    assert rows(app, Action.REPORT_EXPORT) == []
