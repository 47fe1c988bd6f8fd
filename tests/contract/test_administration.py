"""AccountAdministration, against every real directory: what a helpdesk console may ask.

Search by what a helpdesk types, read one account in full, turn an account
off and on again. Unlock and reset (with must-change) are SelfService's,
reused; they are shown here only where disabling changes what they do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import connectors
from connectors.directory import AccountDetails, Directory, DirectoryMisconfigured, Outcome
from lab import SeedAccount, samba
from lab.seed import MAX_FAILURE as LOCK_AFTER
from tests.contract import labs
from tests.contract.labs import NEW_PASSWORD, TEMPORARY_PASSWORD, RoleLab, account_of

#: Terms an attacker types to list everyone, or to break the query. None of
#: them starts any seeded login, name or email.
HOSTILE_TERMS = [
    "*",
    "**",
    ")(",
    ")(uid=*",
    "*)(|(uid=*",
    "*)(objectClass=*",
    "\\",
    "\\2a",
    "\\00",
    "\x00",
    "j\x00",
    "jsmith\x00",
    "x" * 5000,
    "(",
    ",",
    "+",
    '"',
    "#",
    "uid=*",
    "cn=*,ou=people",
    "jsmith*",
    "smith)(sn=*",
]


@pytest.fixture(params=connectors.KINDS)
def role_lab(request: pytest.FixtureRequest, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    yield from labs.role_lab(request, accounts)


@pytest.fixture
def directory(role_lab: RoleLab) -> Directory:
    return role_lab.connect()


def logins(found: tuple[AccountDetails, ...]) -> list[str]:
    return [account.login for account in found]


def expected_for(term: str, people: list[SeedAccount]) -> list[str]:
    """The logins a prefix search must find, worked out in Python from the seed."""
    key = term.casefold()
    hits = [
        p.uid
        for p in people
        if any(
            field.casefold().startswith(key) for field in (p.uid, p.given_name, p.surname, p.display_name, p.mail or "")
        )
    ]
    return sorted(hits, key=str.casefold)


# -- search -------------------------------------------------------------------------


def test_a_term_finds_accounts_by_login_name_or_email_prefix_in_login_order(
    role_lab: RoleLab, directory: Directory
) -> None:
    people = list(role_lab.accounts.values())
    for term in ["jsm", "smi", "SMITH", "Laura", "lau", "eloise.cote@", "ÉLO", "Côt", "Kevin Lee", "r"]:
        found = directory.search_accounts(term)
        assert logins(found.accounts) == expected_for(term, people), term
        assert found.next_page is None
    assert logins(directory.search_accounts("smi").accounts) == ["jsmith", "lsmith"]


def test_a_long_answer_comes_in_pages_each_account_once_in_login_order(role_lab: RoleLab, directory: Directory) -> None:
    made = [f"pager{n:02d}" for n in (7, 3, 11, 1, 5, 9, 2)]
    for login in made:
        role_lab.add_person(login, "Page", f"Turner {login}")

    seen: list[str] = []
    page: str | None = None
    pages = 0
    while True:
        found = directory.search_accounts("pager", limit=3, page=page)
        assert len(found.accounts) <= 3
        seen += logins(found.accounts)
        pages += 1
        page = found.next_page
        if page is None:
            break
    assert pages == 3
    assert seen == sorted(made)
    # The same search without a limit to speak of gives the same, at once.
    assert logins(directory.search_accounts("page", limit=50).accounts) == sorted(made)


def test_a_page_token_is_only_ever_compared_never_sent(directory: Directory) -> None:
    for bogus in ["", "not base64 !", "e30=", "WyJhIl0=", "KSh1aWQ9KikK"]:
        with pytest.raises(ValueError, match="not a page"):
            directory.search_accounts("smi", page=bogus)


def test_a_hostile_term_never_widens_the_search_and_never_breaks_the_directory(
    role_lab: RoleLab, directory: Directory
) -> None:
    for term in HOSTILE_TERMS:
        assert directory.search_accounts(term).accounts == (), repr(term)
    assert directory.search_accounts("   ").accounts == ()
    # The connector is still healthy for the next, honest search.
    assert logins(directory.search_accounts("smi").accounts) == ["jsmith", "lsmith"]


# -- one account in full ---------------------------------------------------------------


def test_an_account_in_full_says_who_it_is_where_and_in_what_state(role_lab: RoleLab, directory: Directory) -> None:
    now = datetime.now(UTC)

    def details(state: str) -> AccountDetails:
        account = account_of(directory, role_lab.accounts[state])
        found = directory.account_details(account.id)
        assert found is not None
        assert found.id == account.id
        assert found.account == account
        return found

    john, person = details("normal"), role_lab.accounts["normal"]
    assert (john.login, john.given_name, john.surname, john.display_name, john.email) == (
        person.uid,
        person.given_name,
        person.surname,
        person.display_name,
        person.mail,
    )
    assert john.phone is None
    assert john.location.casefold() == role_lab.people_dn.casefold()
    assert not (john.locked or john.disabled or john.expired or john.must_change)
    assert john.password_set_at is not None
    # Set when the lab was seeded: a day before on OpenLDAP, at the snapshot on AD.
    assert now - timedelta(days=2) < john.password_set_at <= now

    assert details("locked").locked
    assert details("disabled").disabled
    assert not details("disabled").locked
    expired = details("expired")
    assert expired.expired
    assert expired.expires_at is not None
    assert expired.expires_at < now
    assert details("temporary").must_change

    role_lab.modify(john.dn, {"telephoneNumber": ["+33 1 23 45 67 89"]})
    assert directory.reset_password(john.account, TEMPORARY_PASSWORD, must_change=True) is Outcome.OK
    again = directory.account_details(john.id)
    assert again is not None
    assert again.phone == "+33 1 23 45 67 89"
    assert again.must_change


def test_the_lockout_insight_says_since_when_how_many_failures_and_when(
    role_lab: RoleLab, directory: Directory
) -> None:
    """What a helpdesk tells a caller: OpenLDAP keeps every failure's time, AD only the last one's."""
    kevin = directory.account_details(account_of(directory, role_lab.accounts["locked"]).id)
    assert kevin is not None
    assert kevin.locked
    assert kevin.locked_since is not None
    assert kevin.failures == LOCK_AFTER
    assert len(kevin.failure_times) == (LOCK_AFTER if role_lab.kind == "openldap" else 1)
    assert list(kevin.failure_times) == sorted(kevin.failure_times)
    # Seeded as five wrong passwords that ended in the lock.
    assert all(abs(t - kevin.locked_since) < timedelta(minutes=1) for t in kevin.failure_times)
    status = directory.status(kevin.account)
    assert (status.locked_since, status.failures, status.failure_times) == (
        kevin.locked_since,
        kevin.failures,
        kevin.failure_times,
    )

    john = role_lab.accounts["normal"]
    clean = directory.account_details(account_of(directory, john).id)
    assert clean is not None
    assert (clean.locked_since, clean.failures, clean.failure_times) == (None, 0, ())

    before = datetime.now(UTC) - timedelta(seconds=1)
    assert directory.verify_password(john.uid, "Wrong-Guess-0000")[1].outcome is Outcome.BAD_CREDENTIALS
    after = datetime.now(UTC) + timedelta(seconds=1)
    failed = directory.account_details(clean.id)
    assert failed is not None
    assert not failed.locked
    assert failed.locked_since is None
    assert failed.failures == 1
    assert len(failed.failure_times) == 1
    assert before <= failed.failure_times[0] <= after

    # Unlocking ends the count, and what it remembered, with the lock.
    assert directory.unlock(kevin.account) is Outcome.OK
    unlocked = directory.account_details(kevin.id)
    assert unlocked is not None
    assert (unlocked.locked, unlocked.locked_since, unlocked.failures, unlocked.failure_times) == (False, None, 0, ())


@pytest.mark.parametrize(
    "account_id", ["", "nobody", "00000000-0000-0000-0000-000000000000", "*", "*)(objectClass=*"], ids=repr
)
def test_an_id_that_names_no_account_gives_no_details(directory: Directory, account_id: str) -> None:
    assert directory.account_details(account_id) is None


# -- disable and enable ------------------------------------------------------------------


def test_a_disabled_account_cannot_sign_in_be_unlocked_reset_or_changed_until_enabled(
    role_lab: RoleLab, directory: Directory
) -> None:
    john = role_lab.accounts["normal"]
    account = account_of(directory, john)

    directory.disable_account(account)
    directory.disable_account(account)  # twice is once

    assert directory.verify_password(john.uid, john.password)[1].outcome is Outcome.DISABLED
    assert directory.status(account).disabled
    assert directory.unlock(account) is Outcome.DISABLED
    assert directory.reset_password(account, NEW_PASSWORD, must_change=True) is Outcome.DISABLED
    assert directory.change_password(account, john.password, NEW_PASSWORD) is Outcome.DISABLED
    assert directory.status(account).disabled  # none of them turned it back on
    details = directory.account_details(account.id)
    assert details is not None
    assert details.disabled

    assert directory.enable_account(account) is Outcome.OK
    assert directory.verify_password(john.uid, john.password)[1].outcome is Outcome.OK
    assert directory.verify_password(john.uid, NEW_PASSWORD)[1].outcome is Outcome.BAD_CREDENTIALS


def test_an_account_disabled_in_the_directory_itself_is_enabled_the_same_way(
    role_lab: RoleLab, directory: Directory
) -> None:
    ravi = role_lab.accounts["disabled"]
    account = account_of(directory, ravi)
    assert account.disabled
    assert directory.enable_account(account) is Outcome.OK
    assert directory.verify_password(ravi.uid, ravi.password)[1].outcome is Outcome.OK


def test_enabling_an_account_that_is_not_disabled_changes_nothing_a_lockout_stays(
    role_lab: RoleLab, directory: Directory
) -> None:
    kevin = role_lab.accounts["locked"]
    account = account_of(directory, kevin)
    assert directory.enable_account(account) is Outcome.OK
    assert directory.status(account).locked
    assert directory.verify_password(kevin.uid, kevin.password)[1].outcome is Outcome.LOCKED


def test_an_account_past_its_end_date_stays_disabled_when_enabled(role_lab: RoleLab, directory: Directory) -> None:
    john = role_lab.accounts["normal"]
    account = account_of(directory, john)
    if role_lab.kind == "openldap":
        role_lab.modify(account.dn, {"pwdEndTime": ["20120101000000Z"]})
    else:
        role_lab.modify(account.dn, {"accountExpires": ["130000000000000000"]})  # 2012
    assert directory.enable_account(account) is Outcome.DISABLED
    assert directory.verify_password(john.uid, john.password)[1].outcome is Outcome.DISABLED


@pytest.fixture
def ad(samba_dc: samba.SambaDC, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    lab = labs.ad_lab(samba_dc, accounts)
    yield lab
    lab.close()


def test_ad_without_a_provisioning_account_the_service_account_may_not_disable(ad: RoleLab) -> None:
    """On AD the account every page uses has no right on userAccountControl: said as a set-up error.

    (OpenLDAP's service account holds the pwd* attributes by design, the permanent lock among them.)
    """
    directory = ad.connect(provisioning_bind_dn="", provisioning_bind_password="")
    john = ad.accounts["normal"]
    account = account_of(directory, john)
    with pytest.raises(DirectoryMisconfigured, match="the service account may not disable"):
        directory.disable_account(account)
    assert directory.verify_password(john.uid, john.password)[1].outcome is Outcome.OK
