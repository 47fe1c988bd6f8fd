"""Provisioning, against every real directory: create, change, move and delete, under one base only.

Every write is made as the lab's provisioning account, which holds only the
rights these need (lab/slapd.py's ACL, lab/samba.py's delegation); what it
did is checked as the directory's own administrator sees it.
"""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest

import connectors
from connectors import dn
from connectors.directory import (
    Account,
    Directory,
    DirectoryMisconfigured,
    LoginTaken,
    NoSuchLocation,
    Outcome,
    Person,
)
from lab import SeedAccount
from tests.contract import labs
from tests.contract.labs import NEW_PASSWORD, TEMPORARY_PASSWORD, RoleLab, account_of

JEAN = Person("Jean", "Dupont", "jean.dupont@partners.example", "+33 1 23 45 67 89")

#: Names an attacker gives a new person, to break the DN or reach another place.
HOSTILE_NAMES = [
    "*",
    ")(uid=*",
    "Smith, John",
    "a,OU=Services",
    "Dupont+sn=x",
    'Jean "JD" Dupont',
    "back\\slash",
    "#hash",
    " leading space",
    "trailing space ",
    "semi;colon<angle>",
    "equals=sign",
    "Zoë Ærø",
]


@pytest.fixture(params=connectors.KINDS)
def role_lab(request: pytest.FixtureRequest, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    yield from labs.role_lab(request, accounts)


@pytest.fixture
def directory(role_lab: RoleLab) -> Directory:
    return role_lab.connect()


def place(role_lab: RoleLab, *names: str) -> str:
    """The DN of a place under the people's OU, as the lab wrote it."""
    return ",".join([*(f"{role_lab.ou}={name}" for name in reversed(names)), role_lab.people_dn])


def create(directory: Directory, login: str, person: Person = JEAN, location: tuple[str, ...] = ("Staff",)) -> Account:
    outcome, account = directory.create_account(login, person, TEMPORARY_PASSWORD, location=location)
    assert outcome is Outcome.OK
    assert account is not None
    return account


def nothing_named(role_lab: RoleLab, login: str) -> bool:
    attribute = "uid" if role_lab.kind == "openldap" else "sAMAccountName"
    return role_lab.subtree(role_lab.people_dn, f"({attribute}={login})") == []


# -- create ----------------------------------------------------------------------------


def test_a_new_account_is_where_it_was_asked_and_its_password_is_only_good_for_choosing_another(
    role_lab: RoleLab, directory: Directory
) -> None:
    account = create(directory, "jdupont")

    assert dn.same(dn.parent(account.dn), place(role_lab, "Staff"))
    details = directory.account_details(account.id)
    assert details is not None
    assert (details.login, details.given_name, details.surname, details.display_name) == (
        "jdupont",
        "Jean",
        "Dupont",
        "Jean Dupont",
    )
    assert (details.email, details.phone) == (JEAN.email, JEAN.phone)
    assert details.must_change
    assert not (details.disabled or details.locked)

    assert directory.verify_password("jdupont", TEMPORARY_PASSWORD)[1].outcome is Outcome.MUST_CHANGE
    assert directory.verify_password(JEAN.email or "", TEMPORARY_PASSWORD)[1].outcome is Outcome.MUST_CHANGE
    # SelfService takes it from there, as for any other account.
    assert directory.change_password(account, TEMPORARY_PASSWORD, NEW_PASSWORD) is Outcome.OK
    assert directory.verify_password("jdupont", NEW_PASSWORD)[1].outcome is Outcome.OK


def test_a_password_the_policy_refuses_creates_nothing(role_lab: RoleLab, directory: Directory) -> None:
    before = role_lab.subtree(role_lab.people_dn)
    for password, refusal in [("Ab1-xyz", Outcome.TOO_SHORT), ("tab\tbed-Password-1", Outcome.UNUSABLE_CHARACTERS)]:
        assert directory.create_account("jdupont", JEAN, password, location=("Staff",)) == (refusal, None)
    assert role_lab.subtree(role_lab.people_dn) == before


@pytest.mark.parametrize("taken", ["jsmith", "JSMITH", "lsmith@partners.example"])
def test_a_login_or_email_someone_signs_in_with_is_refused(role_lab: RoleLab, directory: Directory, taken: str) -> None:
    before = role_lab.subtree(role_lab.people_dn)
    with pytest.raises(LoginTaken):
        if "@" in taken:
            directory.create_account("jdupont", Person("Jean", "Dupont", taken), TEMPORARY_PASSWORD)
        else:
            directory.create_account(taken, JEAN, TEMPORARY_PASSWORD)
    assert role_lab.subtree(role_lab.people_dn) == before


def test_two_people_of_one_name_in_one_place_each_get_a_dn_of_their_own(
    role_lab: RoleLab, directory: Directory
) -> None:
    first = create(directory, "jdupont", Person("Jean", "Dupont"))
    second = create(directory, "jdupont2", Person("Jean", "Dupont"))
    assert not dn.same(first.dn, second.dn)
    for account in (first, second):
        assert dn.same(dn.parent(account.dn), place(role_lab, "Staff"))
        assert directory.verify_password(account.username, TEMPORARY_PASSWORD)[1].outcome is Outcome.MUST_CHANGE


def test_a_hostile_name_is_text_in_its_own_rdn_and_never_another_place(role_lab: RoleLab, directory: Directory) -> None:
    staff = place(role_lab, "Staff")
    for number, name in enumerate(HOSTILE_NAMES):
        login = f"hostile{number}"
        account = create(directory, login, Person(name, name))
        assert dn.same(dn.parent(account.dn), staff), (name, account.dn)
        details = directory.account_details(account.id)
        assert details is not None
        assert (details.given_name, details.surname) == (name, name), name
        # Found by what it is called, as typed, and only it.
        assert [found.login for found in directory.search_accounts(name).accounts] == [login], name
    # A login may start with what an RDN may not: escaped, it is one more person in the same place.
    hash_login = create(directory, "#lead", Person("Hash", "Lead"))
    assert dn.same(dn.parent(hash_login.dn), staff)
    assert directory.verify_password("#lead", TEMPORARY_PASSWORD)[1].outcome is Outcome.MUST_CHANGE
    assert len(role_lab.subtree(staff)) == len(HOSTILE_NAMES) + 2
    # Nothing appeared anywhere else.
    assert role_lab.subtree(place(role_lab, "Contractors")) == [place(role_lab, "Contractors")]


def test_a_place_whose_name_looks_like_dn_syntax_is_that_place_and_no_other(
    role_lab: RoleLab, directory: Directory
) -> None:
    odd = "Sales, Paris+Lyon #1"
    conn = role_lab.admin()
    try:
        odd_dn = f"{role_lab.ou}={dn.escape_value(odd)},{role_lab.people_dn}"
        assert conn.add(odd_dn, attributes={"objectClass": ["organizationalUnit"]}), conn.result
    finally:
        conn.unbind()
    assert (odd,) in directory.locations()

    account = create(directory, "jdupont", location=(odd,))
    assert dn.same(dn.parent(account.dn), odd_dn)
    inside = role_lab.subtree(odd_dn)  # each directory escapes a DN its own way: compared parsed
    assert len(inside) == 2
    assert any(dn.same(entry, account.dn) for entry in inside)
    moved = directory.move_account(account, ("Staff",))
    assert dn.same(dn.parent(moved.dn), place(role_lab, "Staff"))
    assert len(role_lab.subtree(odd_dn)) == 1
    assert dn.same(directory.move_account(moved, (odd,)).dn, account.dn)


@pytest.mark.parametrize(
    "login",
    ["", "*", "j*", "a,b", "a)(uid=*", "a=b", "a+b", 'a"b', "a\\b", " a", "a ", "a@b", "a\x00", "x" * 65],
    ids=repr,
)
def test_a_login_no_directory_should_be_given_is_refused_before_anything_is_written(
    role_lab: RoleLab, directory: Directory, login: str
) -> None:
    before = role_lab.subtree(role_lab.people_dn)
    with pytest.raises(ValueError, match="login"):
        directory.create_account(login, JEAN, TEMPORARY_PASSWORD)
    assert role_lab.subtree(role_lab.people_dn) == before


@pytest.mark.parametrize(
    "person",
    [
        Person("Je\x00an", "Dupont"),
        Person("Jean", "Du\npont"),
        Person("Jean", "x" * 65),
        Person("Jean", ""),
        Person("Jean", "Dupont", email="jean dupont@partners.example"),
        Person("Jean", "Dupont", email="jean@a@b"),
        Person("Jean", "Dupont", phone="+33 (1) 23*"),
    ],
    ids=repr,
)
def test_a_name_or_contact_no_directory_should_be_given_is_refused_before_anything_is_written(
    role_lab: RoleLab, directory: Directory, person: Person
) -> None:
    before = role_lab.subtree(role_lab.people_dn)
    with pytest.raises(ValueError):
        directory.create_account("jdupont", person, TEMPORARY_PASSWORD)
    assert role_lab.subtree(role_lab.people_dn) == before


@pytest.mark.parametrize(
    "location", [("Nowhere",), ("Staff,OU=Contractors",), ("Staff", "Deeper"), ("Staff\\",)], ids=repr
)
def test_a_place_that_does_not_exist_is_never_made_up(
    role_lab: RoleLab, directory: Directory, location: tuple[str, ...]
) -> None:
    before = role_lab.subtree(role_lab.people_dn)
    with pytest.raises(NoSuchLocation):
        directory.create_account("jdupont", JEAN, TEMPORARY_PASSWORD, location=location)
    assert role_lab.subtree(role_lab.people_dn) == before


def test_the_places_are_the_base_and_the_ous_below_it(directory: Directory) -> None:
    assert directory.locations() == [(), ("Contractors",), ("Staff",)]


# -- awaiting set-up, then activated -----------------------------------------------------


def awaiting(directory: Directory, login: str = "jdupont", person: Person = JEAN) -> Account:
    outcome, account = directory.create_account(login, person, None, location=("Staff",))
    assert outcome is Outcome.OK
    assert account is not None
    return account


def test_an_account_awaiting_set_up_has_no_password_and_nothing_signs_it_in_or_resets_it(
    role_lab: RoleLab, directory: Directory
) -> None:
    account = awaiting(directory)
    assert dn.same(dn.parent(account.dn), place(role_lab, "Staff"))
    entry = role_lab.entry(account.dn, "userPassword" if role_lab.kind == "openldap" else "userAccountControl")
    assert entry is not None
    if role_lab.kind == "openldap":
        assert entry.get("userPassword", []) == []
    details = directory.account_details(account.id)
    assert details is not None
    assert details.disabled
    for login in ("jdupont", JEAN.email or ""):
        for password in (TEMPORARY_PASSWORD, NEW_PASSWORD):
            assert directory.verify_password(login, password)[1].outcome in (Outcome.DISABLED, Outcome.BAD_CREDENTIALS)
    assert directory.reset_password(account, NEW_PASSWORD, must_change=False) is Outcome.DISABLED
    assert directory.reset_password(account, NEW_PASSWORD, must_change=True) is Outcome.DISABLED
    assert directory.unlock(account) is Outcome.DISABLED
    assert directory.verify_password("jdupont", NEW_PASSWORD)[1].outcome is not Outcome.OK


def test_activating_sets_the_owners_password_under_the_policy_and_enables_the_account(
    role_lab: RoleLab, directory: Directory
) -> None:
    account = awaiting(directory)
    before = role_lab.entry(account.dn)
    for password, refusal in [("Ab1-xyz", Outcome.TOO_SHORT), ("tab\tbed-Password-1", Outcome.UNUSABLE_CHARACTERS)]:
        assert directory.activate_account(account, password) is refusal
    assert role_lab.entry(account.dn) == before  # a refusal changes nothing
    assert directory.verify_password("jdupont", NEW_PASSWORD)[1].outcome is not Outcome.OK

    assert directory.activate_account(account, NEW_PASSWORD) is Outcome.OK
    found, verdict = directory.verify_password("jdupont", NEW_PASSWORD)
    assert verdict.outcome is Outcome.OK  # not temporary: chosen by its owner
    assert found is not None and found.id == account.id
    details = directory.account_details(account.id)
    assert details is not None
    assert not (details.disabled or details.locked or details.must_change)
    assert details.password_set_at is not None


def test_activation_is_no_reset_and_enables_nothing_an_administrator_turned_off(
    role_lab: RoleLab, directory: Directory
) -> None:
    account = awaiting(directory)
    assert directory.activate_account(account, NEW_PASSWORD) is Outcome.OK
    # A second use (a stale link) neither replaces the password...
    assert directory.activate_account(account, "Another-Garden-Window-71") is Outcome.DISABLED
    assert directory.verify_password("jdupont", NEW_PASSWORD)[1].outcome is Outcome.OK
    # ...nor enables the account once disabled.
    directory.disable_account(account)
    assert directory.activate_account(account, "Another-Garden-Window-71") is Outcome.DISABLED
    assert directory.verify_password("jdupont", NEW_PASSWORD)[1].outcome is Outcome.DISABLED
    # An account made with a temporary password was never awaiting set-up.
    temporary = create(directory, "mcurie", Person("Marie", "Curie"))
    assert directory.activate_account(temporary, NEW_PASSWORD) is Outcome.DISABLED
    assert directory.verify_password("mcurie", TEMPORARY_PASSWORD)[1].outcome is Outcome.MUST_CHANGE
    # Nor anything outside the provisioning base.
    john = account_of(directory, role_lab.accounts["normal"])
    with pytest.raises(ValueError, match="LDAP_PROVISION_BASE_DN"):
        role_lab.connect(provision_base_dn=place(role_lab, "Staff")).activate_account(john, NEW_PASSWORD)


def test_title_department_and_mobile_are_written_read_and_cleared(role_lab: RoleLab, directory: Directory) -> None:
    person = Person("Zoë", "Ærø", "zoe@partners.example", title="Nurse", department="Cardio", mobile="+15145550123")
    account = awaiting(directory, "zaero", person)
    details = directory.account_details(account.id)
    assert details is not None
    assert (details.title, details.department, details.mobile) == ("Nurse", "Cardio", "+15145550123")
    directory.update_account(account, Person("Zoë", "Ærø", "zoe@partners.example", title="Head nurse"))
    details = directory.account_details(account.id)
    assert details is not None
    assert (details.title, details.department, details.mobile) == ("Head nurse", None, None)


def test_the_organization_is_written_where_the_deployment_reads_it_and_kept_by_an_update(
    role_lab: RoleLab, directory: Directory
) -> None:
    account = awaiting(directory, "mcurie", Person("Marie", "Curie", organization="north-clinic"))
    details = directory.account_details(account.id)
    assert details is not None
    assert details.organization == "north-clinic"
    directory.update_account(account, Person("Marie", "Curie-Sklodowska"))
    details = directory.account_details(account.id)
    assert details is not None
    assert (details.surname, details.organization) == ("Curie-Sklodowska", "north-clinic")


# -- change, move, delete ---------------------------------------------------------------


def test_names_email_and_phone_are_replaced_and_the_dn_stays(role_lab: RoleLab, directory: Directory) -> None:
    account = create(directory, "jdupont")
    changed = directory.update_account(account, Person("Jeanne", "Dupont-Martin", "jeanne@partners.example"))
    assert changed.dn == account.dn
    details = directory.account_details(account.id)
    assert details is not None
    assert (details.given_name, details.surname, details.display_name) == (
        "Jeanne",
        "Dupont-Martin",
        "Jeanne Dupont-Martin",
    )
    assert (details.email, details.phone) == ("jeanne@partners.example", None)
    assert directory.verify_password("jeanne@partners.example", TEMPORARY_PASSWORD)[0] == changed

    with pytest.raises(LoginTaken):
        directory.update_account(account, Person("Jeanne", "Dupont", "lsmith@partners.example"))
    again = directory.account_details(account.id)
    assert again is not None
    assert again.email == "jeanne@partners.example"


def test_a_moved_account_keeps_its_id_its_password_and_its_self_service(
    role_lab: RoleLab, directory: Directory
) -> None:
    account = create(directory, "jdupont")
    moved = directory.move_account(account, ("Contractors",))
    assert moved.id == account.id
    assert dn.same(dn.parent(moved.dn), place(role_lab, "Contractors"))
    assert role_lab.entry(account.dn) is None
    assert directory.change_password(moved, TEMPORARY_PASSWORD, NEW_PASSWORD) is Outcome.OK

    back = directory.move_account(moved, ())
    assert dn.same(dn.parent(back.dn), role_lab.people_dn)
    with pytest.raises(NoSuchLocation):
        directory.move_account(back, ("Services",))
    assert directory.verify_password("jdupont", NEW_PASSWORD)[1].outcome is Outcome.OK


def test_a_deleted_account_is_gone_and_deleting_it_again_is_nothing(role_lab: RoleLab, directory: Directory) -> None:
    account = create(directory, "jdupont")
    directory.delete_account(account)
    assert directory.get_account(account.id) is None
    assert role_lab.entry(account.dn) is None
    directory.delete_account(account)


def test_nothing_outside_the_provisioning_base_is_changed_moved_or_deleted(role_lab: RoleLab) -> None:
    directory = role_lab.connect(provision_base_dn=place(role_lab, "Staff"))
    john = account_of(directory, role_lab.accounts["normal"])
    with pytest.raises(ValueError, match="LDAP_PROVISION_BASE_DN"):
        directory.update_account(john, Person("Evil", "Twin"))
    with pytest.raises(ValueError, match="LDAP_PROVISION_BASE_DN"):
        directory.move_account(john, ())
    with pytest.raises(ValueError, match="LDAP_PROVISION_BASE_DN"):
        directory.delete_account(john)
    # A DN handed in is never trusted: the account is found again by its id.
    forged = Account(john.id, place(role_lab, "Staff"), john.username, john.display_name)
    with pytest.raises(ValueError, match="LDAP_PROVISION_BASE_DN"):
        directory.delete_account(forged)
    assert directory.get_account(john.id) == john
    assert directory.locations() == [()]


def test_provisioning_is_off_without_a_base(role_lab: RoleLab) -> None:
    directory = role_lab.connect(provision_base_dn="")
    with pytest.raises(DirectoryMisconfigured, match="LDAP_PROVISION_BASE_DN"):
        directory.create_account("jdupont", JEAN, TEMPORARY_PASSWORD)


def test_a_wrong_provisioning_password_stops_the_start_up_check(role_lab: RoleLab) -> None:
    directory = role_lab.connect(provisioning_bind_password="Not-The-Provisioning-Password-1")
    with pytest.raises(DirectoryMisconfigured, match="LDAP_PROVISIONING_BIND_PASSWORD"):
        directory.check()


# -- the provisioning account holds nothing more than that -----------------------------


def test_the_provisioning_account_can_touch_no_ou_and_nothing_outside_the_people(role_lab: RoleLab) -> None:
    settings = role_lab.settings
    conn = role_lab.raw(settings.provisioning_bind_dn, settings.provisioning_bind_password)
    try:
        contractors = place(role_lab, "Contractors")
        assert not conn.delete(contractors)
        assert not conn.modify(contractors, {"description": [(ldap3.MODIFY_REPLACE, ["taken over"])]})
        assert not conn.add(place(role_lab, "Staff", "Annex"), attributes={"objectClass": ["organizationalUnit"]})
        services = dn.parent(settings.bind_dn)
        person = {"objectClass": ["inetOrgPerson"], "sn": "x", "cn": "x"}
        if role_lab.kind == "ad":
            person = {"objectClass": ["user"], "sAMAccountName": "intruder"}
        assert not conn.add(f"cn=intruder,{services}", attributes=person)
        assert not conn.modify(settings.bind_dn, {"description": [(ldap3.MODIFY_REPLACE, ["taken over"])]})
        assert not conn.delete(settings.bind_dn)
    finally:
        conn.unbind()
    assert role_lab.entry(place(role_lab, "Contractors")) is not None
    assert role_lab.entry(settings.bind_dn) is not None
