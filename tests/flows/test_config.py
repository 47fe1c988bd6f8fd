"""Starting SSPM with a wrong configuration stops it with one line that names the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from lab import Pki, samba
from lab import slapd as slapd_lab
from sspm.infra.settings import ROOT, ConfigError, Settings, load

NO_ENV_FILE = Path("/nonexistent/.env")


@pytest.fixture
def environ(pki: Pki) -> dict[str, str]:
    """What an operator's environment holds for a working SSPM."""
    return {
        "SSPM_SECRET_KEY": "a-test-secret-that-is-long-enough-0123456789",
        "SSPM_PUBLIC_BASE_URL": "https://sspm.partners.example",
        "LDAP_URL": "ldaps://ldap.partners.example:636",
        "LDAP_CA_FILE": str(pki.ca_file),
        "LDAP_BIND_DN": "cn=sspm,ou=services,dc=partners,dc=example",
        "LDAP_BIND_PASSWORD": "Service-Secret-1",
        "LDAP_BASE_DN": "ou=people,dc=partners,dc=example",
        "LDAP_POLICY_DN": "cn=default,ou=policies,dc=partners,dc=example",
    }


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as refused:
        load(env_file=NO_ENV_FILE, environ=environ)
    message = str(refused.value)
    assert "\n" not in message, "a configuration error is one line"
    return message


def test_a_complete_configuration_loads(environ: dict[str, str]) -> None:
    settings = load(env_file=NO_ENV_FILE, environ=environ)
    assert isinstance(settings, Settings)
    assert settings.https
    assert settings.directory.use_ssl


def test_without_a_secret_key_sspm_refuses_to_start(environ: dict[str, str]) -> None:
    del environ["SSPM_SECRET_KEY"]
    assert "SSPM_SECRET_KEY" in refusal(environ)


def test_a_short_secret_key_is_refused_too(environ: dict[str, str]) -> None:
    environ["SSPM_SECRET_KEY"] = "short"
    assert "SSPM_SECRET_KEY" in refusal(environ)


def test_plain_ldap_without_starttls_is_refused(environ: dict[str, str]) -> None:
    environ["LDAP_URL"] = "ldap://ldap.partners.example:389"
    message = refusal(environ)
    assert "LDAP_URL" in message
    assert "LDAP_STARTTLS" in message


def test_plain_ldap_with_starttls_is_accepted(environ: dict[str, str]) -> None:
    environ["LDAP_URL"] = "ldap://ldap.partners.example:389"
    environ["LDAP_STARTTLS"] = "true"
    settings = load(env_file=NO_ENV_FILE, environ=environ)
    assert settings.directory.starttls


def test_a_ca_file_that_does_not_exist_is_refused(environ: dict[str, str], tmp_path: Path) -> None:
    environ["LDAP_CA_FILE"] = str(tmp_path / "missing-ca.pem")
    assert "LDAP_CA_FILE" in refusal(environ)


def test_no_ca_file_at_all_is_refused(environ: dict[str, str]) -> None:
    del environ["LDAP_CA_FILE"]
    assert "LDAP_CA_FILE" in refusal(environ)


def test_a_missing_service_password_is_refused(environ: dict[str, str]) -> None:
    del environ["LDAP_BIND_PASSWORD"]
    assert "LDAP_BIND_PASSWORD" in refusal(environ)


def test_the_service_password_may_come_from_a_file(environ: dict[str, str], tmp_path: Path) -> None:
    del environ["LDAP_BIND_PASSWORD"]
    secret = tmp_path / "sspm-ldap"
    secret.write_text("From-A-File-7\n")
    environ["LDAP_BIND_PASSWORD_FILE"] = str(secret)
    assert load(env_file=NO_ENV_FILE, environ=environ).directory.bind_password == "From-A-File-7"


def test_an_unreadable_service_password_file_is_refused(environ: dict[str, str], tmp_path: Path) -> None:
    environ["LDAP_BIND_PASSWORD_FILE"] = str(tmp_path / "missing")
    assert "LDAP_BIND_PASSWORD_FILE" in refusal(environ)


def test_every_documented_key_is_in_the_example_and_the_example_has_no_other() -> None:
    documented = set(dotenv_values(ROOT / "config" / "defaults.env"))
    example = set(dotenv_values(ROOT / "config" / "example.env"))
    assert documented - example == set(), "keys missing from config/example.env"
    assert example - documented == set(), "keys in config/example.env that config/defaults.env does not document"


def test_a_directory_kind_sspm_does_not_know_is_refused(environ: dict[str, str]) -> None:
    environ["DIRECTORY_KIND"] = "edirectory"
    message = refusal(environ)
    assert "DIRECTORY_KIND" in message
    assert "openldap" in message and "ad" in message


def test_active_directory_needs_no_policy_entry(environ: dict[str, str]) -> None:
    del environ["LDAP_POLICY_DN"]
    environ.update(DIRECTORY_KIND="ad", LDAP_USER_FILTER=samba.USER_FILTER)
    settings = load(env_file=NO_ENV_FILE, environ=environ)
    assert settings.directory_kind == "ad"
    assert settings.directory.policy_dn == ""


@pytest.mark.parametrize("name", ["defaults.env", "example.env"])
def test_the_documented_ad_user_filter_is_the_one_tested_against_a_real_dc(name: str) -> None:
    text = (ROOT / "config" / name).read_text()
    documented = re.findall(r"^#\s*LDAP_USER_FILTER=(.*sAMAccountName.*)$", text, re.MULTILINE)
    assert documented == [samba.USER_FILTER]


def test_the_example_openldap_user_filter_is_the_one_the_tests_use() -> None:
    text = (ROOT / "config" / "example.env").read_text()
    assert re.findall(r"^LDAP_USER_FILTER=(.*)$", text, re.MULTILINE) == [slapd_lab.USER_FILTER]


@pytest.mark.parametrize("days", ["", "seven", "7,0", "14;7"])
def test_reminder_days_that_are_not_days_stop_the_start_with_one_line(environ: dict[str, str], days: str) -> None:
    assert "SSPM_REMINDER_DAYS" in refusal({**environ, "SSPM_REMINDER_DAYS": days})


def test_reminder_days_are_read_largest_first(environ: dict[str, str]) -> None:
    settings = load(env_file=NO_ENV_FILE, environ={**environ, "SSPM_REMINDER_DAYS": "1, 7,14,7"})
    assert settings.reminder_days == (14, 7, 1)
