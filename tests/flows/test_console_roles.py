"""The roles page: who may give which role where, through the app, against the real slapd, Redis and store.

Staff are the lab's staff accounts (super1, admin1, manager1, helpdesk1 of
st-mary, helpdesk2 of north-clinic), granted by an operator as ``python -m
sspm staff grant`` does, and signed in the way the staff sign-in leaves
them (``open_staff``: a session past its second factor). Every attack
posts what an edited page or a replaying browser would send, and every
story ends in the store: which grants exist, and what the audit trail says.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from connectors.directory import Account
from lab import DEMO_ACCOUNTS, Pki, Slapd, start_slapd
from lab.seed import NORTH_CLINIC, ST_MARY, STAFF_ACCOUNTS
from sspm.account import staff
from sspm.account.audit import Action
from sspm.infra.store import AuditEvent
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.reasons import Reason
from sspm.policy.roles import Grant, Role
from tests.flows.test_realms import open_staff, rewrite, staff_key, turned_to, with_probes
from tests.support import services_of
from tests.support.flows import AppFactory, Visitor, csrf_token, reason_in, says, without_echo, without_token

OPERATOR = Actor.operator("test-operator")
PEOPLE = {a.uid: a for a in (*DEMO_ACCOUNTS, *STAFF_ACCOUNTS)}
_OPTIONS = re.compile(r'<select[^>]*name="(\w+)"[^>]*>(.*?)</select>', re.S)
_VALUE = re.compile(r'<option[^>]*value="([^"]*)"')


def start_staff_slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    """The lab's directory with its staff accounts too (the ``slapd`` of the console's tests)."""
    server = start_slapd(tmp_path / "slapd", (*DEMO_ACCOUNTS, *STAFF_ACCOUNTS), pki=pki)
    yield server
    server.stop()


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return with_probes(build_app(slapd))


# -- helpers shared with test_console_audit -----------------------------------------------------------


def account_of(app: Flask, uid: str) -> Account:
    found = services_of(app).directory.find_account(uid)
    assert found is not None, uid
    return found


def make_staff(app: Flask, uid: str, role: str, organization: str | None = ST_MARY) -> Account:
    """Grant a role as an operator at the command line does."""
    account = account_of(app, uid)
    changed = staff.grant(services_of(app).store, OPERATOR, account=account, role=role, organization=organization)
    assert changed.value == "granted"
    return account


def as_staff(app: Flask, uid: str) -> Visitor:
    """A browser of ``uid`` past the staff sign-in's second factor, the password given just now."""
    member = staff.staff_of(services_of(app).store, account_of(app, uid).id)
    assert member is not None, f"{uid} is not staff"
    visitor = Visitor(app)
    top = member.highest_role
    assert top is not None
    open_staff(visitor, member.account_id, top.value, orgs=" ".join(member.grants.organizations))
    return visitor


def grants_of(app: Flask, uid: str) -> set[Grant]:
    member = staff.staff_of(services_of(app).store, account_of(app, uid).id)
    return set(member.grants) if member else set()


def rows(app: Flask, action: Action) -> list[tuple[str, str | None, str | None, dict[str, str]]]:
    """(outcome, account id, actor id, details) of each row of ``action``, oldest first."""
    with services_of(app).store.session() as session:
        found = session.execute(
            select(AuditEvent.outcome, AuditEvent.account_id, AuditEvent.actor_id, AuditEvent.details)
            .where(AuditEvent.action == action.value)
            .order_by(AuditEvent.seq)
        )
        return [(r.outcome, r.account_id, r.actor_id, r.details) for r in found]


def options(page: TestResponse) -> dict[str, list[str]]:
    """The values each <select> of a page offers."""
    html = page.get_data(as_text=True)
    return {name: _VALUE.findall(body) for name, body in _OPTIONS.findall(html)}


def grant_post(visitor: Visitor, account: str, role: str, organization: str) -> TestResponse:
    """Post the grant form as an edited page could: any values, with the page's real token."""
    token = csrf_token(visitor.get("/staff/roles/grant").get_data(as_text=True))
    fields = {"csrf_token": token, "account": account, "role": role, "organization": organization}
    return visitor.post("/staff/roles/grant", fields)


def revoke_post(visitor: Visitor, account_id: str, role: str, organization: str) -> TestResponse:
    token = csrf_token(visitor.get("/staff/roles").get_data(as_text=True))
    fields = {"csrf_token": token, "account": account_id, "role": role, "organization": organization}
    return visitor.post("/staff/roles/revoke", fields)


# -- the way it is meant to be used ----------------------------------------------------------------------


def test_a_super_admin_grants_helpdesk_for_one_organization_then_takes_it_back(app: Flask) -> None:
    super1 = make_staff(app, "super1", "super-admin")
    jsmith = account_of(app, "jsmith")
    boss = as_staff(app, "super1")

    form = boss.get("/staff/roles/grant")
    assert form.status_code == 200
    assert options(form) == {"role": ["super-admin", "admin", "assigning-manager", "helpdesk"]}
    typed = re.search(r'<input[^>]*name="organization"[^>]*type="text"', form.get_data(as_text=True))
    assert typed, "a Super Admin types any organization"

    done = grant_post(boss, "jsmith@partners.example", "helpdesk", "St-Mary")
    assert done.status_code == 303 and done.headers["Location"].endswith("/staff/roles")
    listed = boss.follow(done)
    assert says(listed, "jsmith now has the role Helpdesk (st-mary).")
    assert grants_of(app, "jsmith") == {Grant(Role.HELPDESK, ST_MARY)}
    assert rows(app, Action.STAFF_GRANT)[-1] == (
        "granted",
        jsmith.id,
        super1.id,
        {"role": "helpdesk", "organization": ST_MARY},
    )

    asked = f"/staff/roles/revoke?account={jsmith.id}&role=helpdesk&organization={ST_MARY}"
    confirm = boss.get(asked)
    assert confirm.status_code == 200
    taken = boss.post("/staff/roles/revoke", _hidden_fields(confirm))
    assert taken.status_code == 303
    assert grants_of(app, "jsmith") == set()
    assert rows(app, Action.STAFF_REVOKE)[-1][:3] == ("revoked", jsmith.id, super1.id)


def _hidden_fields(page: TestResponse) -> dict[str, str]:
    """What the confirmation page's form sends: its hidden fields as the page wrote them."""
    form = page.get_data(as_text=True).split('action="/staff/roles/revoke"', 1)[1].split("</form>", 1)[0]
    return {
        name: html.unescape(value) for name, value in re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', form)
    }


def test_an_admin_is_offered_only_helpdesk_and_assigning_manager_in_their_own_organizations(app: Flask) -> None:
    make_staff(app, "admin1", "admin", ST_MARY)
    make_staff(app, "admin1", "helpdesk", NORTH_CLINIC)  # no GRANT_ROLES there
    form = as_staff(app, "admin1").get("/staff/roles/grant")
    assert form.status_code == 200
    assert options(form) == {"role": ["assigning-manager", "helpdesk"], "organization": [ST_MARY]}


def test_an_admin_sees_and_may_take_back_only_the_grants_of_their_organizations(app: Flask) -> None:
    make_staff(app, "super1", "super-admin")
    make_staff(app, "admin1", "admin", ST_MARY)
    helpdesk1 = make_staff(app, "helpdesk1", "helpdesk", ST_MARY)
    make_staff(app, "helpdesk2", "helpdesk", NORTH_CLINIC)
    make_staff(app, "manager1", "admin", NORTH_CLINIC)
    page = as_staff(app, "admin1").get("/staff/roles")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "helpdesk1@partners.example" in html and "admin1@partners.example" in html
    assert "helpdesk2@" not in html and "manager1@" not in html and "super1@" not in html
    revocable = set(re.findall(r"/staff/roles/revoke\?account=([^&]+)&amp;role=([\w-]+)", html))
    assert revocable == {(helpdesk1.id, "helpdesk")}, "never one's own grant"


@pytest.mark.parametrize(
    ("role", "roles_page", "audit_page"),
    [
        ("super-admin", 200, 200),
        ("admin", 200, 200),
        ("assigning-manager", 403, 403),
        ("helpdesk", 403, 200),
    ],
)
def test_which_roles_open_the_roles_page_and_the_audit_trail(
    app: Flask, role: str, roles_page: int, audit_page: int
) -> None:
    """The table's GRANT_ROLES and AUDIT_VIEW columns at the page boundary; a refusal says where to go."""
    make_staff(app, "admin1", role, None if role == "super-admin" else ST_MARY)
    member = as_staff(app, "admin1")
    for path, expected in (
        ("/staff/roles", roles_page),
        ("/staff/roles/grant", roles_page),
        ("/staff/audit", audit_page),
    ):
        seen = member.get(path)
        assert seen.status_code == expected, path
        if expected == 403:
            assert says(seen, reason_in(app, Reason.NOT_IN_ROLE))
    refused = [r for r in rows(app, Action.REQUEST) if r[0] == "not_permitted"]
    assert len(refused) == [roles_page, roles_page, audit_page].count(403), "every refusal is on the trail"


# -- escalation --------------------------------------------------------------------------------------


def test_an_admin_cannot_grant_super_admin_nor_admin_nor_outside_their_organizations(app: Flask) -> None:
    make_staff(app, "admin1", "admin", ST_MARY)
    make_staff(app, "admin1", "helpdesk", NORTH_CLINIC)
    admin = as_staff(app, "admin1")
    for role, organization in [
        ("super-admin", ""),
        ("super-admin", ST_MARY),
        ("admin", ST_MARY),
        # Joining a scope through a role held there that does not grant: Helpdesk in north-clinic.
        ("helpdesk", NORTH_CLINIC),
        ("assigning-manager", "an-organization-nobody-granted"),
        ("owner", ST_MARY),
    ]:
        refused = grant_post(admin, "jsmith", role, organization)
        assert refused.status_code == 422, (role, organization)
    assert grants_of(app, "jsmith") == set()


def test_a_grant_the_form_did_not_offer_is_refused_by_the_use_case_too(app: Flask) -> None:
    """Past the form (the lists), the service checks the grants in the store and audits the refusal."""
    from sspm.account.audit_query import Organizations
    from sspm.console import service

    admin = make_staff(app, "admin1", "admin", ST_MARY)
    the = services_of(app)
    member = staff.staff_of(the.store, admin.id)
    assert member is not None
    found = Organizations(the.directory, the.settings.organization_from, the.settings.directory.base_dn)
    result = service.grant_role(
        the.directory, the.store, found, Actor(ActorKind.STAFF, id=admin.id), member,
        login="jsmith", role="super-admin", organization=None,
    )  # fmt: skip
    assert result.reason is Reason.NOT_GRANTABLE and grants_of(app, "jsmith") == set()
    assert rows(app, Action.STAFF_GRANT)[-1][0] == "refused"
    assert rows(app, Action.STAFF_GRANT)[-1][3]["why"] == "not_grantable"


def test_a_person_outside_reach_gets_the_answer_an_unknown_name_gets(app: Flask) -> None:
    """Outside the admin's organizations, or of the admin's rank anywhere: "nobody by that name"."""
    make_staff(app, "admin1", "admin", ST_MARY)
    make_staff(app, "manager1", "admin", NORTH_CLINIC)  # an account of st-mary holding Admin elsewhere
    admin = as_staff(app, "admin1")
    unknown = grant_post(admin, "nobody-here", "helpdesk", ST_MARY)
    for outside in ("lsmith", "manager1"):
        refused = grant_post(admin, outside, "helpdesk", ST_MARY)
        assert refused.status_code == unknown.status_code == 422
        assert without_echo(refused.get_data(as_text=True), outside) == without_echo(
            unknown.get_data(as_text=True), "nobody-here"
        )
    assert says(unknown, reason_in(app, Reason.NO_SUCH_STAFF_TARGET))
    assert grants_of(app, "lsmith") == set() and grants_of(app, "manager1") == {Grant(Role.ADMIN, NORTH_CLINIC)}
    assert [r[3]["why"] for r in rows(app, Action.STAFF_GRANT)[-3:]] == [
        "no_such_account",
        "out_of_reach",
        "out_of_reach",
    ]


def test_nobody_changes_their_own_grants(app: Flask) -> None:
    me = make_staff(app, "admin1", "admin", ST_MARY)
    admin = as_staff(app, "admin1")
    refused = grant_post(admin, "admin1", "helpdesk", ST_MARY)
    assert refused.status_code == 422 and says(refused, reason_in(app, Reason.OWN_GRANTS))
    assert admin.get(f"/staff/roles/revoke?account={me.id}&role=admin&organization={ST_MARY}").status_code == 404
    assert revoke_post(admin, me.id, "admin", ST_MARY).status_code == 404
    assert grants_of(app, "admin1") == {Grant(Role.ADMIN, ST_MARY)}


def test_an_admin_cannot_take_back_a_super_admin_nor_a_grant_of_another_organization(app: Flask) -> None:
    """The confirmation page and the POST, with hidden fields edited: the answer a grant that is not there gets."""
    super1 = make_staff(app, "super1", "super-admin")
    make_staff(app, "admin1", "admin", ST_MARY)
    helpdesk2 = make_staff(app, "helpdesk2", "helpdesk", NORTH_CLINIC)
    jsmith = account_of(app, "jsmith")
    admin = as_staff(app, "admin1")
    missing = revoke_post(admin, jsmith.id, "helpdesk", ST_MARY)
    assert missing.status_code == 404
    for account_id, role, organization in [
        (super1.id, "super-admin", "*"),
        (helpdesk2.id, "helpdesk", NORTH_CLINIC),
        # The grant exists, in north-clinic: naming st-mary instead does not make it st-mary's.
        (helpdesk2.id, "helpdesk", ST_MARY),
    ]:
        confirm = admin.get(f"/staff/roles/revoke?account={account_id}&role={role}&organization={organization}")
        posted = revoke_post(admin, account_id, role, organization)
        assert confirm.status_code == posted.status_code == 404
        # Byte for byte but the sign-out form's CSRF token, whose signature carries the second it was made.
        pages = [without_token(page.get_data(as_text=True)) for page in (posted, missing, confirm)]
        assert pages[0] == pages[1] == pages[2]
    assert grants_of(app, "super1") == {Grant(Role.SUPER_ADMIN, "*")}
    assert grants_of(app, "helpdesk2") == {Grant(Role.HELPDESK, NORTH_CLINIC)}
    assert {r[3]["why"] for r in rows(app, Action.STAFF_REVOKE)} == {"no_such_grant"}


def test_a_replayed_grant_or_revoke_changes_nothing_twice(app: Flask) -> None:
    make_staff(app, "admin1", "admin", ST_MARY)
    jsmith = account_of(app, "jsmith")
    admin = as_staff(app, "admin1")
    token = csrf_token(admin.get("/staff/roles/grant").get_data(as_text=True))
    fields = {"csrf_token": token, "account": "jsmith", "role": "helpdesk", "organization": ST_MARY}
    first, again = admin.post("/staff/roles/grant", fields), admin.post("/staff/roles/grant", fields)
    assert first.status_code == again.status_code == 303
    assert says(admin.follow(again), "jsmith already had the role Helpdesk (st-mary): nothing changed.")
    assert grants_of(app, "jsmith") == {Grant(Role.HELPDESK, ST_MARY)}
    assert [r[0] for r in rows(app, Action.STAFF_GRANT)][-2:] == ["granted", "unchanged"]

    revoke = {"csrf_token": token, "account": jsmith.id, "role": "helpdesk", "organization": ST_MARY}
    assert admin.post("/staff/roles/revoke", revoke).status_code == 303
    assert admin.post("/staff/roles/revoke", revoke).status_code == 404
    assert grants_of(app, "jsmith") == set()


def test_a_post_replayed_after_the_granter_lost_their_role_is_refused(app: Flask) -> None:
    admin1 = make_staff(app, "admin1", "admin", ST_MARY)
    make_staff(app, "admin1", "helpdesk", ST_MARY)
    admin = as_staff(app, "admin1")
    token = csrf_token(admin.get("/staff/roles/grant").get_data(as_text=True))
    the = services_of(app)
    assert staff.revoke(the.store, OPERATOR, account=admin1, role="admin", organization=ST_MARY).value == "revoked"
    fields = {"csrf_token": token, "account": "jsmith", "role": "helpdesk", "organization": ST_MARY}
    assert admin.post("/staff/roles/grant", fields).status_code == 403
    assert grants_of(app, "jsmith") == set()


# -- the guards ----------------------------------------------------------------------------------------


def test_granting_and_revoking_need_the_password_given_within_the_last_minutes(app: Flask) -> None:
    make_staff(app, "super1", "super-admin")
    boss = as_staff(app, "super1")
    handle = boss.client.get_cookie("sspm_staff", domain="sspm.partners.example", path="/staff")
    assert handle is not None
    token = csrf_token(boss.get("/staff/roles/grant").get_data(as_text=True))
    window = app.config["SSPM_SETTINGS"].staff_reauth_minutes * 60
    rewrite(app, staff_key(handle.value), reauthenticated_at=time.time() - window - 1)

    assert boss.get("/staff/roles").status_code == 200, "looking needs no fresh password"
    assert turned_to(app, boss.get("/staff/roles/grant"), "staff.reauthenticate", "console.grant")
    fields = {"csrf_token": token, "account": "jsmith", "role": "helpdesk", "organization": ST_MARY}
    assert turned_to(app, boss.post("/staff/roles/grant", fields), "staff.reauthenticate", "console.grant")
    jsmith = account_of(app, "jsmith")
    revoke = {"csrf_token": token, "account": jsmith.id, "role": "helpdesk", "organization": ST_MARY}
    assert turned_to(app, boss.post("/staff/roles/revoke", revoke), "staff.reauthenticate", "console.revoke")
    assert grants_of(app, "jsmith") == set()


def test_every_console_form_refuses_a_post_without_its_token(app: Flask) -> None:
    make_staff(app, "super1", "super-admin")
    make_staff(app, "jsmith", "helpdesk", ST_MARY)
    jsmith = account_of(app, "jsmith")
    boss = as_staff(app, "super1")
    for path, fields in [
        ("/staff/roles/grant", {"account": "tnguyen", "role": "helpdesk", "organization": ST_MARY}),
        ("/staff/roles/revoke", {"account": jsmith.id, "role": "helpdesk", "organization": ST_MARY}),
        ("/staff/audit/export", {}),
    ]:
        assert boss.post(path, fields).status_code == 400, path
        assert boss.post(path, {**fields, "csrf_token": "forged"}).status_code == 400, path
    assert grants_of(app, "tnguyen") == set() and grants_of(app, "jsmith") == {Grant(Role.HELPDESK, ST_MARY)}
    assert rows(app, Action.AUDIT_EXPORT) == []


def test_without_a_staff_session_the_pages_send_to_sign_in(app: Flask) -> None:
    stranger = Visitor(app)
    for path in ("/staff/roles", "/staff/roles/grant", "/staff/audit"):
        assert stranger.get(path).status_code in (302, 303), path
