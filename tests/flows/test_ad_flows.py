"""Change Password on Active Directory reads exactly as on OpenLDAP.

Each story is told twice, to two apps built the same way: one on a lab
slapd, one on a Samba AD DC of the test's own. The pages that come back
must be the same page (the CSRF token aside): same status, same sentence,
same user name kept in the form, in English and in French. Then the DC
itself says what is true: nothing was changed.

Beyond OpenLDAP's refusals, AD has a rule of its own that SSPM's checks do
not repeat (complexity: three kinds of character out of four); a password
that passes SSPM's checks but breaks it must read as "too easy to guess".
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd, samba
from sspm.policy.passwords import Rules, first_problem
from sspm.web.context import services
from tests.flows.test_change_password import REFUSALS, Refusal, verdict
from tests.support.flows import NEW_PASSWORD, AppFactory, Visitor, reason_in, says, without_token

LANGUAGES = ("en", "fr")
#: Long and unguessable to zxcvbn, free of any name, but only lower case and
#: hyphens: two of AD's four kinds of character, where complexity wants three.
NOT_COMPLEX = "orchard-kettle-lantern-zephyr"


def same_page(left: TestResponse, right: TestResponse) -> str:
    """The page ``left`` shows, after checking ``right`` shows the very same one."""
    assert left.status_code == right.status_code
    assert left.headers["Content-Type"] == right.headers["Content-Type"]
    pages = [without_token(page.get_data(as_text=True)) for page in (left, right)]
    assert pages[0] == pages[1], "OpenLDAP and Active Directory should answer with the same page"
    return pages[0]


def visitor_in(app: Flask, lang: str) -> Visitor:
    """Someone who chose ``lang`` on the first page."""
    visitor = Visitor(app)
    assert visitor.get(f"/change?lang={lang}").status_code == 200
    return visitor


@pytest.fixture
def both(build_app: AppFactory, slapd: Slapd, samba_dc: samba.SambaDC) -> tuple[Flask, Flask]:
    """(an app on OpenLDAP, the same app on Active Directory), sharing this test's Redis and database."""
    return build_app(slapd), build_app(samba_dc)


@pytest.fixture
def ad_directory(both: tuple[Flask, Flask]) -> Directory:
    """The DC, through the connector the AD app uses."""
    with both[1].app_context():
        return services().directory


def test_the_change_form_shows_the_same_rules_read_from_the_domain(both: tuple[Flask, Flask]) -> None:
    for lang in LANGUAGES:
        openldap, ad = (Visitor(app) for app in both)
        page = same_page(openldap.get(f"/change?lang={lang}"), ad.get(f"/change?lang={lang}"))
        assert f'<html lang="{lang}">' in page


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: r.story)
def test_a_refused_change_reads_the_same_on_both_directories(
    both: tuple[Flask, Flask], ad_directory: Directory, accounts: dict[str, SeedAccount], refusal: Refusal
) -> None:
    person = accounts[refusal.state] if refusal.state else None
    username = person.uid if person else "nobody-here"
    current = refusal.current or (person.password if person else "")

    for lang in LANGUAGES:
        pages = [visitor_in(app, lang).change_password(username, current, refusal.new, refusal.confirm) for app in both]

        page = same_page(*pages)
        assert pages[1].status_code == 422
        assert says(pages[1], reason_in(both[1], refusal.reason, lang))
        assert f'<html lang="{lang}">' in page
        assert re.search(rf'name="username"[^>]*value="{re.escape(username)}"', page)
    if person is not None:
        assert verdict(ad_directory, person.uid, person.password) is refusal.still
        if refusal.new != person.password:
            assert not ad_directory.verify_password(person.uid, refusal.new)[1].password_proven


def test_going_back_to_a_recent_password_reads_the_same_on_both_directories(
    both: tuple[Flask, Flask], ad_directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    for app in both:
        assert Visitor(app).change_password(john.uid, john.password, NEW_PASSWORD).status_code == 303

    for lang in LANGUAGES:
        pages = [visitor_in(app, lang).change_password(john.uid, NEW_PASSWORD, john.password) for app in both]

        same_page(*pages)
        assert pages[1].status_code == 422
        assert says(pages[1], reason_in(both[1], "in_history", lang))
    assert verdict(ad_directory, john.uid, NEW_PASSWORD) is Outcome.OK
    assert verdict(ad_directory, john.uid, john.password) is Outcome.BAD_CREDENTIALS


def test_a_password_breaking_ads_complexity_rule_is_too_easy_to_guess(
    both: tuple[Flask, Flask], ad_directory: Directory, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    ad = both[1]
    # SSPM's own checks let it through: the refusal below is the DC's.
    account = ad_directory.find_account(john.uid)
    rules = Rules.from_policy(ad_directory.policy(), ad.config["SSPM_SETTINGS"].min_strength)
    assert first_problem(NOT_COMPLEX, NOT_COMPLEX, john.password, rules, account) is None

    for lang in LANGUAGES:
        page = visitor_in(ad, lang).change_password(john.uid, john.password, NOT_COMPLEX)

        assert page.status_code == 422
        assert says(page, reason_in(ad, "too_weak", lang))
        assert f'<html lang="{lang}">' in page.get_data(as_text=True)
    assert verdict(ad_directory, john.uid, john.password) is Outcome.OK
    assert verdict(ad_directory, john.uid, NOT_COMPLEX) is Outcome.BAD_CREDENTIALS


def test_the_ad_app_is_configured_without_an_openldap_policy_entry(both: tuple[Flask, Flask]) -> None:
    settings = both[1].config["SSPM_SETTINGS"]
    assert settings.directory_kind == "ad"
    assert settings.directory.policy_dn == ""
    assert settings.directory.user_filter == samba.USER_FILTER
