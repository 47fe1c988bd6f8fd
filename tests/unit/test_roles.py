"""The staff permission table, cell by cell, and the rules no table row can override.

``EXPECTED`` is issue 12's table written out again by hand, not read from
sspm.policy.roles: a cell changed in the code fails here until the issue's
table is changed too.
"""

from __future__ import annotations

import pytest

from connectors.directory import AccountDetails
from sspm.policy.organizations import BadOrganizationSource, OrganizationSource, key, organization_of
from sspm.policy.roles import (
    BadGrant,
    Grant,
    Grants,
    Permission,
    Role,
    Scope,
    highest_role,
    may,
    may_act_on,
    may_grant,
    may_grant_to,
    reach,
    scope,
)

OWN, OTHER = "st-mary", "north-clinic"
P = Permission

#: all: every organization · own: the organizations granted in · work: own actions and accounts opened · -: no
_COLUMNS = (
    P.GRANT_ROLES,
    P.HELPDESK,
    P.AUDIT_VIEW,
    P.RECORDS_EMPLOYEES,
    P.RECORDS_CLINICIANS,
    P.RECORDS_READ,
    P.JOBS_VIEW,
)
_TABLE = """
super-admin        all all  all  all all all all
admin              own own  own  own own own own
assigning-manager  -   -    -    own -   -   -
helpdesk           -   own  work -   -   own -
"""
EXPECTED = {
    (Role(line.split()[0]), permission): cell
    for line in _TABLE.strip().splitlines()
    for permission, cell in zip(_COLUMNS, line.split()[1:], strict=True)
}


def test_the_expected_table_has_every_cell() -> None:
    assert set(EXPECTED) == {(r, p) for r in Role for p in Permission}


def _one(role: Role) -> Grants:
    return Grants.of([Grant.of(role, OWN)])


@pytest.mark.parametrize(("role", "permission"), sorted(EXPECTED))
@pytest.mark.parametrize("where", ["own", "other", "none"])
def test_each_cell(role: Role, permission: Permission, where: str) -> None:
    cell = EXPECTED[role, permission]
    organization = {"own": OWN, "other": OTHER, "none": None}[where]
    allowed = cell == "all" or (cell == "own" and where == "own")
    assert may(_one(role), permission, organization) is allowed
    wanted = {"all": Scope.EVERY_ORGANIZATION, "own": Scope.OWN_ORGANIZATIONS, "work": Scope.OWN_WORK}
    expected_scope = wanted.get(cell, Scope.NONE) if (cell == "all" or where == "own") else Scope.NONE
    assert scope(_one(role), permission, organization) is expected_scope
    reached = reach(_one(role), permission)
    assert reached.covers(organization) is allowed
    assert reached.own_work is (cell == "work")


@pytest.mark.parametrize("where", [OWN, OTHER, None])
def test_no_grant_no_permission(where: str | None) -> None:
    for permission in Permission:
        assert not may(Grants(), permission, where)
        assert reach(Grants(), permission).nothing


def test_organizations_compare_as_the_directory_does() -> None:
    grants = Grants.of([(Role.HELPDESK, "St-Mary")])
    assert may(grants, P.HELPDESK, "ST-MARY")
    assert may(grants, P.HELPDESK, " st-mary ")
    assert reach(grants, P.HELPDESK).organizations == {"st-mary"}


# --- who may act on whom -------------------------------------------------------------------------------------


def _act(grants: Grants, target_role: Role | None, *, org: str | None = OWN, target: str = "them") -> bool:
    return may_act_on(
        grants,
        P.HELPDESK,
        target_organization=org,
        target_account_id=target,
        own_account_id="me",
        target_highest_role=target_role,
    )


@pytest.mark.parametrize("role", list(Role))
def test_nobody_acts_on_their_own_account(role: Role) -> None:
    assert not _act(_one(role), None, target="me")


@pytest.mark.parametrize("actor", [Role.SUPER_ADMIN, Role.ADMIN, Role.HELPDESK])
@pytest.mark.parametrize("target", list(Role))
def test_only_on_holders_of_lower_roles(actor: Role, target: Role) -> None:
    assert _act(_one(actor), target) is (target.rank < actor.rank)
    assert _act(_one(actor), None)


def test_a_helpdesk_agent_cannot_reset_an_admin_nor_a_super_admin_by_id() -> None:
    agent = _one(Role.HELPDESK)
    assert not _act(agent, Role.ADMIN)
    assert not _act(agent, Role.SUPER_ADMIN, org=None)
    assert not _act(agent, Role.SUPER_ADMIN, org=OWN)


def test_outside_scope_is_refused_like_any_other() -> None:
    assert not _act(_one(Role.HELPDESK), None, org=OTHER)
    assert not _act(_one(Role.ADMIN), None, org=None)
    assert _act(_one(Role.SUPER_ADMIN), None, org=None)


def test_the_role_that_gives_the_permission_there_is_what_must_outrank() -> None:
    """An Admin of one organization who is Helpdesk in another is only Helpdesk there."""
    mixed = Grants.of([(Role.ADMIN, OWN), (Role.HELPDESK, OTHER)])
    assert highest_role(mixed) is Role.ADMIN
    assert _act(mixed, Role.ASSIGNING_MANAGER, org=OWN)
    assert not _act(mixed, Role.ASSIGNING_MANAGER, org=OTHER)
    assert _act(mixed, None, org=OTHER)


def test_a_holder_of_a_higher_role_elsewhere_is_still_out_of_reach() -> None:
    """Joining a scope: an Admin of north-clinic whose account is in st-mary is out of st-mary's Helpdesk's reach."""
    assert not _act(_one(Role.HELPDESK), Role.ADMIN, org=OWN)


def test_a_role_without_the_permission_gives_no_rank() -> None:
    manager = _one(Role.ASSIGNING_MANAGER)
    assert not _act(manager, None)
    assert may_act_on(
        manager,
        P.RECORDS_EMPLOYEES,
        target_organization=OWN,
        target_account_id="them",
        own_account_id="me",
        target_highest_role=Role.HELPDESK,
    )


# --- who may grant what ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("where", [OWN, OTHER])
def test_grants_each_role_may_give(role: Role, where: str) -> None:
    assert may_grant(_one(Role.SUPER_ADMIN), role, where)
    admin_may = role in (Role.HELPDESK, Role.ASSIGNING_MANAGER) and where == OWN
    assert may_grant(_one(Role.ADMIN), role, where) is admin_may
    assert not may_grant(_one(Role.ASSIGNING_MANAGER), role, where)
    assert not may_grant(_one(Role.HELPDESK), role, where)


def test_nobody_grants_a_role_above_their_own() -> None:
    for role in Role:
        above = [r for r in Role if r.rank > role.rank]
        for higher in above:
            assert not may_grant(_one(role), higher, OWN)


def test_only_super_admin_is_for_every_organization() -> None:
    everyone = _one(Role.SUPER_ADMIN)
    assert not may_grant(everyone, Role.ADMIN, "*")
    assert not may_grant(everyone, Role.ADMIN, None)
    assert not may_grant(everyone, Role.ADMIN, "  ")
    assert may_grant(everyone, Role.SUPER_ADMIN, None)
    assert not may_grant(_one(Role.ADMIN), Role.HELPDESK, "*")


def test_granting_to_a_person() -> None:
    admin = _one(Role.ADMIN)

    def to(target_role: Role | None, target: str = "them", role: Role = Role.HELPDESK) -> bool:
        return may_grant_to(
            admin, role, OWN, target_account_id=target, own_account_id="me", target_highest_role=target_role
        )

    assert to(None)
    assert to(Role.HELPDESK, role=Role.ASSIGNING_MANAGER)
    assert not to(None, target="me")
    assert not to(Role.ADMIN)
    assert not to(Role.SUPER_ADMIN)
    super_admin = _one(Role.SUPER_ADMIN)
    assert not may_grant_to(
        super_admin,
        Role.HELPDESK,
        OWN,
        target_account_id="other-super",
        own_account_id="me",
        target_highest_role=Role.SUPER_ADMIN,
    )


# --- the values themselves -------------------------------------------------------------------------------------


def test_grant_values() -> None:
    assert Grant.of(Role.SUPER_ADMIN, "st-mary") == Grant(Role.SUPER_ADMIN, "*")
    assert Grant.of("helpdesk", " St-Mary ") == Grant(Role.HELPDESK, "st-mary")
    for bad in (lambda: Grant(Role.ADMIN, "*"), lambda: Grant(Role.SUPER_ADMIN, OWN), lambda: Grant.of("admin")):
        with pytest.raises(BadGrant):
            bad()
    with pytest.raises(ValueError, match="'root'"):
        Grant.of("root", OWN)
    assert highest_role(Grants()) is None
    assert highest_role(Grants.of([(Role.HELPDESK, OWN), (Role.ASSIGNING_MANAGER, OTHER)])) is Role.ASSIGNING_MANAGER
    assert [r.rank for r in (Role.SUPER_ADMIN, Role.ADMIN, Role.ASSIGNING_MANAGER, Role.HELPDESK)] == [4, 3, 2, 1]


# --- organizations ----------------------------------------------------------------------------------------------

BASE = "ou=people,dc=partners,dc=example"


def _details(location: str, organization: str | None = None) -> AccountDetails:
    return AccountDetails(
        id="1",
        dn=f"uid=x,{location}",
        login="x",
        display_name="X",
        given_name="",
        surname="X",
        email=None,
        phone=None,
        location=location,
        locked=False,
        disabled=False,
        expired=False,
        must_change=False,
        password_set_at=None,
        expires_at=None,
        organization=organization,
    )


def test_organization_from_the_ou_under_the_base() -> None:
    by_ou = OrganizationSource.parse("ou")
    assert organization_of(_details(f"OU=St-Mary,{BASE}"), by_ou, BASE) == "st-mary"
    assert organization_of(_details(f"ou=Ward 3,ou=St-Mary,{BASE}"), by_ou, BASE) == "st-mary"
    assert organization_of(_details(BASE), by_ou, BASE) is None
    assert organization_of(_details("ou=elsewhere,dc=partners,dc=example"), by_ou, BASE) is None
    assert organization_of(_details("cn=Users,dc=partners,dc=example"), by_ou, "dc=partners,dc=example") is None


def test_organization_from_an_attribute() -> None:
    by_o = OrganizationSource.parse(" attribute:o ")
    assert by_o.attribute == "o" and str(by_o) == "attribute:o"
    assert organization_of(_details(BASE, "North-Clinic"), by_o, BASE) == "north-clinic"
    assert organization_of(_details(f"ou=St-Mary,{BASE}", None), by_o, BASE) is None
    assert organization_of(_details(BASE, " "), by_o, BASE) is None
    # Nobody's organization can be "every organization".
    assert organization_of(_details(BASE, "*"), by_o, BASE) is None


@pytest.mark.parametrize("bad", ["", "o", "attribute:", "attribute:(o=x)", "attribute:1o", "dn"])
def test_bad_sources_are_refused(bad: str) -> None:
    with pytest.raises(BadOrganizationSource):
        OrganizationSource.parse(bad)


def test_key() -> None:
    assert key("  Ｓｔ-Mary   Hospital ") == "st-mary hospital"
