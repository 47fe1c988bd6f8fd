"""Passwords with any character a person types, on both directories.

ldap3 runs every password through SASLprep and raises where SASLprep has no
answer: a password mixing Hebrew and Latin letters, or holding a tab, used
to read as "we could not reach the directory" (a 503, and a false outage in
the operator's log). Now what the directory itself holds decides: such a
password signs in and proves a change wherever the directory accepts it,
and a new password holding a character no directory should be given (a
control character) is refused next to the new-password field, in plain
words, as any other rule is.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

import ldap3
import pytest
from flask import Flask
from markupsafe import escape

from connectors.directory import Outcome
from lab import SeedAccount, Slapd, samba
from lab.env import LabDirectory
from tests.support import services_of
from tests.support.flows import NEW_PASSWORD, AppFactory, Visitor, reason_in, says, sign_in

#: Hebrew between Latin words and digits: SASLprep refuses it, both directories hold it.
MIXED_SCRIPTS = "Lantern-שלום-Orbit-2024"
#: What a paste from a spreadsheet cell brings along.
WITH_A_TAB = "Orchard\tKettle-Lantern-58"


@pytest.fixture(params=["openldap", "ad"])
def lab_directory(request: pytest.FixtureRequest) -> LabDirectory:
    server: LabDirectory = request.getfixturevalue("slapd" if request.param == "openldap" else "samba_dc")
    return server


@pytest.fixture
def app(build_app: AppFactory, lab_directory: LabDirectory) -> Flask:
    return build_app(lab_directory)


@pytest.fixture
def watched_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level("DEBUG")
    yield caplog


def no_outage_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return not any("unavailable" in record.getMessage() for record in caplog.records)


def set_by_administrator(directory: LabDirectory, dn: str, password: str) -> None:
    """The password set with the directory's own tools, as a helpdesk would, not through SSPM."""
    if isinstance(directory, Slapd):
        tls = ldap3.Tls(ca_certs_file=str(directory.ca_file), validate=ssl.CERT_REQUIRED)
        server = ldap3.Server(directory.ldaps_url, use_ssl=True, tls=tls)
        conn = ldap3.Connection(server, directory.root_dn, directory.root_password)
        assert conn.bind(), conn.result
        try:
            # ldappasswd's way (the bytes as typed), and not a temporary password.
            assert conn.extend.standard.modify_password(user=dn, new_password=password.encode()), conn.result
            assert conn.modify(dn, {"pwdReset": [(ldap3.MODIFY_DELETE, [])]}), conn.result
        finally:
            conn.unbind()
        return
    assert isinstance(directory, samba.SambaDC)
    tls = ldap3.Tls(ca_certs_file=str(directory.ca_file), validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(directory.address, port=636, use_ssl=True, tls=tls)
    conn = ldap3.Connection(server, directory.admin_dn, directory.admin_password)
    assert conn.bind(), conn.result
    try:
        value = f'"{password}"'.encode("utf-16-le")
        assert conn.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]}), conn.result
    finally:
        conn.unbind()


def verdict(app: Flask, login: str, password: str) -> Outcome:
    return services_of(app).directory.verify_password(login, password)[1].outcome


def test_someone_whose_password_mixes_hebrew_and_latin_letters_signs_in_and_changes_it(
    app: Flask, lab_directory: LabDirectory, accounts: dict[str, SeedAccount], watched_log: pytest.LogCaptureFixture
) -> None:
    john = accounts["normal"]
    account = services_of(app).directory.find_account(john.uid)
    assert account is not None
    set_by_administrator(lab_directory, account.dn, MIXED_SCRIPTS)

    assert sign_in(Visitor(app), john.uid, MIXED_SCRIPTS).status_code == 303
    changed = Visitor(app).change_password(john.uid, MIXED_SCRIPTS, NEW_PASSWORD)

    assert changed.status_code == 303
    assert verdict(app, john.uid, NEW_PASSWORD) is Outcome.OK
    assert no_outage_logged(watched_log)


def test_a_user_chooses_a_new_password_mixing_right_to_left_and_latin_letters(
    app: Flask, accounts: dict[str, SeedAccount], watched_log: pytest.LogCaptureFixture
) -> None:
    john = accounts["normal"]

    assert Visitor(app).change_password(john.uid, john.password, MIXED_SCRIPTS).status_code == 303

    assert sign_in(Visitor(app), john.uid, MIXED_SCRIPTS).status_code == 303
    assert verdict(app, john.uid, john.password) is Outcome.BAD_CREDENTIALS
    assert no_outage_logged(watched_log)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_new_password_with_a_tab_is_refused_next_to_its_field_and_nothing_changes(
    app: Flask, accounts: dict[str, SeedAccount], watched_log: pytest.LogCaptureFixture, lang: str
) -> None:
    john = accounts["normal"]
    visitor = Visitor(app)
    assert visitor.get(f"/change?lang={lang}").status_code == 200

    page = visitor.change_password(john.uid, john.password, WITH_A_TAB)

    assert page.status_code == 422
    sentence = reason_in(app, "unusable_characters", lang)
    assert says(page, sentence)
    html = page.get_data(as_text=True)
    # Said next to the new password, and that box marked as the one to fix.
    next_to_field = re.search(r'<p class="error" id="new-error">(.*?)</p>', html)
    assert next_to_field is not None
    assert next_to_field.group(1) == str(escape(sentence))
    new_box = re.search(r'<input[^>]*\bid="new"[^>]*>', html)
    assert new_box is not None
    assert 'aria-invalid="true"' in new_box.group(0)
    assert verdict(app, john.uid, john.password) is Outcome.OK
    assert verdict(app, john.uid, WITH_A_TAB) is Outcome.BAD_CREDENTIALS
    assert no_outage_logged(watched_log)
