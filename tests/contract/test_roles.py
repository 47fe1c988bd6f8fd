"""The directory contract's shape: four roles, no method in two, every connector all four.

Nothing here needs a server: a connector contacts nothing until it is used.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

import connectors
from connectors import open_directory
from connectors.directory import AccountAdministration, Directory, Provisioning, SelfService, SyncReader
from connectors.settings import DirectorySettings

ROLES = (SelfService, AccountAdministration, Provisioning, SyncReader)

SETTINGS = DirectorySettings(
    url="ldaps://127.0.0.1:636",
    bind_dn="cn=sspm,ou=services,dc=partners,dc=example",
    bind_password="Not-Used-Here-1",
    base_dn="ou=people,dc=partners,dc=example",
    user_filter="(uid={login})",
    # Any file passes problems(), which only asks whether it is there; connectors read it when built.
    ca_file=Path(__file__),
)


def methods(protocol: type) -> set[str]:
    """The public methods a Protocol declares itself (its bases' not included)."""
    return {name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")}


def test_self_service_is_exactly_what_the_pages_have_always_asked_for() -> None:
    assert methods(SelfService) == {
        "check",
        "find_account",
        "get_account",
        "verify_password",
        "change_password",
        "reset_password",
        "status",
        "unlock",
        "policy",
        "close",
    }


@pytest.mark.parametrize(("one", "other"), list(itertools.combinations(ROLES, 2)), ids=lambda r: r.__name__)
def test_no_method_belongs_to_two_roles(one: type, other: type) -> None:
    assert methods(one)
    assert not methods(one) & methods(other)


def test_directory_is_every_role_and_adds_nothing_of_its_own() -> None:
    assert not methods(Directory)
    assert all(issubclass(Directory, role) for role in ROLES)


@pytest.mark.parametrize("role", [*ROLES, Directory], ids=lambda r: r.__name__)
@pytest.mark.parametrize("kind", connectors.KINDS)
def test_every_connector_plays_every_role(kind: str, role: type) -> None:
    connector = open_directory(kind, dataclasses.replace(SETTINGS, ca_file=None))
    try:
        assert isinstance(connector, role)
    finally:
        connector.close()


# -- the settings the roles add ------------------------------------------------------


def test_provisioning_settings_that_hold_together_raise_no_problem() -> None:
    settings = dataclasses.replace(
        SETTINGS,
        provision_base_dn="OU=Staff, OU=People,DC=partners,dc=example",
        provisioning_bind_dn="cn=sspm-provisioning,ou=services,dc=partners,dc=example",
        provisioning_bind_password="Not-Used-Here-2",
    )
    assert settings.problems() == []


@pytest.mark.parametrize(
    "outside",
    [
        "ou=services,dc=partners,dc=example",
        "dc=partners,dc=example",
        "ou=people\\,dc=partners\\,dc=example,dc=evil",
        "ou=peoplex,dc=partners,dc=example",
        "not a DN",
    ],
)
def test_a_provisioning_base_outside_the_base_is_a_problem(outside: str) -> None:
    settings = dataclasses.replace(SETTINGS, provision_base_dn=outside)
    assert any("LDAP_PROVISION_BASE_DN" in problem for problem in settings.problems())


def test_a_provisioning_account_without_its_password_is_a_problem() -> None:
    settings = dataclasses.replace(SETTINGS, provisioning_bind_dn="cn=p,dc=partners,dc=example")
    assert any("LDAP_PROVISIONING_BIND_PASSWORD" in problem for problem in settings.problems())
