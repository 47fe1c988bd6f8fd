"""The browser stories on Active Directory: the app in front of a real Samba AD DC.

The same keyboard-only stories as on OpenLDAP (test_change_password_browser,
test_recovery_browser), a spread of them rather than every combination:
English at 1280 px and French on a 360 px phone at /m. Each ends by asking
the DC itself, with a plain LDAPS bind of its own rather than through SSPM,
whether the password works now.
"""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Callable

import ldap3
import pytest
from playwright.sync_api import Page, expect

from lab import SeedAccount, samba
from tests.support.browser import LiveServer, assert_no_horizontal_scroll, enroll_seeded, refusal, say, tab_until

from .test_accessibility import axe_violations, describe
from .test_change_password_browser import NEW_PASSWORD, change_by_keyboard
from .test_recovery_browser import TYPED_ANSWERS, answer, start, submit_with_enter

pytestmark = pytest.mark.browser

#: Long, unguessable to zxcvbn and free of any name, so SSPM's own checks let it
#: through; but only lower case and hyphens, where AD's complexity wants three
#: kinds of character out of four. The refusal is the DC's.
NOT_COMPLEX = "orchard-kettle-lantern-zephyr"


def bind_message(dc: samba.SambaDC, person: SeedAccount, password: str) -> str | None:
    """None if ``password`` binds as ``person`` on the DC, else the DC's refusal."""
    tls = ldap3.Tls(ca_certs_file=str(dc.ca_file), validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(dc.address, port=636, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=samba.person_dn(person), password=password, receive_timeout=5)
    try:
        return None if conn.bind() else str(conn.result["message"])
    finally:
        conn.unbind()


def object_guid(dc: samba.SambaDC, person: SeedAccount) -> str:
    """The account's objectGUID as Samba itself prints it."""
    found = subprocess.run(
        ["ldbsearch", "-H", str(dc.sam_ldb), "-b", samba.person_dn(person), "-s", "base", "objectGUID"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^objectGUID: ([0-9a-f-]{36})$", found, re.MULTILINE)
    assert match, found
    return match.group(1)


@pytest.mark.parametrize(
    ("state", "refused_before", "lang", "device", "entry"),
    [
        # What the DC says to the seeded password before: 773 must change, 532 expired.
        pytest.param("temporary", "data 773", "en", "desktop", "", id="temporary-en-1280"),
        pytest.param("expired", "data 532", "fr", "phone", "/m", id="expired-fr-360-m"),
        pytest.param("normal", None, "fr", "phone", "/m", id="current-fr-360-m"),
    ],
)
def test_a_user_changes_their_password_on_active_directory(
    serve_ad: Callable[..., LiveServer],
    samba_dc: samba.SambaDC,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    state: str,
    refused_before: str | None,
    lang: str,
    device: str,
    entry: str,
) -> None:
    server = serve_ad()
    person = accounts[state]
    before = bind_message(samba_dc, person, person.password)
    assert before is None if refused_before is None else refused_before in str(before)
    page = open_page(server, device=device, lang=lang)
    page.goto(f"{entry}/change")

    change_by_keyboard(page, person.uid, person.password, NEW_PASSWORD)

    expect(page).to_have_url(f"{server.url}{entry}/change/done")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Your password has been changed"))
    expect(page.get_by_role("status")).to_contain_text(person.display_name)
    if device == "phone":
        assert_no_horizontal_scroll(page)
    assert bind_message(samba_dc, person, NEW_PASSWORD) is None
    assert "data 52e" in str(bind_message(samba_dc, person, person.password))


def test_forgot_password_on_active_directory_sets_a_password_the_dc_accepts(
    serve_ad: Callable[..., LiveServer],
    samba_dc: samba.SambaDC,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
) -> None:
    server = serve_ad()
    laura = accounts["other"]
    # Enrolled under the id AD gives the account for ever: its objectGUID.
    assert enroll_seeded(server, laura.uid) == object_guid(samba_dc, laura)
    page = open_page(server)

    start(page, server, "forgot", laura.uid)
    answer(page, server, TYPED_ANSWERS)
    expect(page).to_have_url(f"{server.url}/recovery/new-password")
    tab_until(page, "#new")
    page.keyboard.type(NEW_PASSWORD)
    tab_until(page, "#confirm")
    page.keyboard.type(NEW_PASSWORD)
    submit_with_enter(page)

    expect(page).to_have_url(f"{server.url}/recovery/done")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(server, "en", "Your password has been reset successfully.")
    )
    assert bind_message(samba_dc, laura, NEW_PASSWORD) is None
    assert "data 52e" in str(bind_message(samba_dc, laura, laura.password))


def test_the_seeded_locked_account_unlocks_on_active_directory_and_its_password_works(
    serve_ad: Callable[..., LiveServer],
    samba_dc: samba.SambaDC,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
) -> None:
    server = serve_ad()
    kevin = accounts["locked"]
    assert "data 775" in str(bind_message(samba_dc, kevin, kevin.password)), "the seeded account should be locked"
    enroll_seeded(server, kevin.uid)
    page = open_page(server, device="phone", lang="fr")

    start(page, server, "unlock", kevin.uid, entry="/m")
    answer(page, server, TYPED_ANSWERS)

    expect(page).to_have_url(f"{server.url}/m/recovery/done")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        say(server, "fr", "The account unlock has been done successfully.")
    )
    assert_no_horizontal_scroll(page)
    assert bind_message(samba_dc, kevin, kevin.password) is None


@pytest.mark.parametrize(
    ("lang", "device", "entry"),
    [pytest.param("en", "desktop", "", id="en-1280"), pytest.param("fr", "phone", "/m", id="fr-360-m")],
)
def test_the_change_form_with_the_dcs_refusal_has_no_axe_violations(
    serve_ad: Callable[..., LiveServer],
    samba_dc: samba.SambaDC,
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    lang: str,
    device: str,
    entry: str,
) -> None:
    server = serve_ad()
    john = accounts["normal"]
    page = open_page(server, device=device, lang=lang)
    page.goto(f"{entry}/change")

    change_by_keyboard(page, john.uid, john.password, NOT_COMPLEX)

    expect(page.get_by_role("alert")).to_contain_text(refusal(server, lang, "too_weak"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    problems = [describe(v) for v in axe_violations(page)]
    assert not problems, "accessibility problems:\n" + "\n".join(problems)
    assert bind_message(samba_dc, john, john.password) is None
