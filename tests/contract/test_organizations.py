"""Which organization an account is in, read from each real directory (SSPM_ORGANIZATION_FROM).

By an attribute (the lab seeds OpenLDAP's ``o`` and AD's ``company``), or
by the OU directly under the base that holds the account; the same rule
(sspm.policy.organizations) over what either connector reads.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import connectors
from connectors.directory import Person
from lab import SeedAccount
from sspm.policy.organizations import OrganizationSource, organization_of
from tests.contract import labs
from tests.contract.labs import TEMPORARY_PASSWORD, RoleLab, account_of


@pytest.fixture(params=connectors.KINDS)
def role_lab(request: pytest.FixtureRequest, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    yield from labs.role_lab(request, accounts)


def test_every_way_of_reading_an_account_says_its_organization_attribute(role_lab: RoleLab) -> None:
    directory = role_lab.connect()
    by_attribute = OrganizationSource.parse(f"attribute:{role_lab.settings.organization_attribute}")
    seeded = {p.uid: p.organization for p in role_lab.accounts.values()}
    assert set(seeded.values()) == {"st-mary", "north-clinic"}
    for person in role_lab.accounts.values():
        details = directory.account_details(account_of(directory, person).id)
        assert details is not None and details.organization == person.organization, person.uid
        assert organization_of(details, by_attribute, role_lab.people_dn) == person.organization
    assert {d.login: d.organization for d in directory.all_accounts(page_size=3)} == seeded
    assert {d.login: d.organization for d in directory.search_accounts("smi").accounts} == {
        "jsmith": "st-mary",
        "lsmith": "north-clinic",
    }


def test_with_no_attribute_configured_none_is_read(role_lab: RoleLab) -> None:
    directory = role_lab.connect(organization_attribute="")
    john = account_of(directory, role_lab.accounts["normal"])
    details = directory.account_details(john.id)
    assert details is not None and details.organization is None


def test_an_account_missing_the_attribute_is_in_no_organization(role_lab: RoleLab) -> None:
    directory = role_lab.connect()
    role_lab.add_person("nobody", "No", "Body")
    found = directory.search_accounts("nobody").accounts
    assert [(d.login, d.organization) for d in found] == [("nobody", None)]


def test_by_ou_the_organization_is_the_ou_directly_under_the_base(role_lab: RoleLab) -> None:
    directory = role_lab.connect()
    by_ou = OrganizationSource.parse("ou")
    ward = f"{role_lab.ou}=Ward 3,{role_lab.ou}=Staff,{role_lab.people_dn}"
    conn = role_lab.admin()
    try:
        assert conn.add(ward, "organizationalUnit"), conn.result
    finally:
        conn.unbind()
    made = {}
    for login, place in (("wardnurse", ("Staff", "Ward 3")), ("contractor", ("Contractors",)), ("atbase", ())):
        person = Person("Test", login.title())
        outcome, account = directory.create_account(login, person, TEMPORARY_PASSWORD, location=place)
        assert account is not None, outcome
        details = directory.account_details(account.id)
        assert details is not None
        made[login] = organization_of(details, by_ou, role_lab.people_dn)
    assert made == {"wardnurse": "staff", "contractor": "contractors", "atbase": None}
