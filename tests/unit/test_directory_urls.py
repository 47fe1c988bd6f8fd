"""LDAP_URL as a list of replicas: how it is read, and what is refused before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.settings import DirectorySettings, split_urls

FILTER = "(uid={login})"


def settings(url: str, **changes: object) -> DirectorySettings:
    values: dict[str, object] = {
        "url": url,
        "bind_dn": "cn=sspm,dc=example",
        "bind_password": "secret",
        "base_dn": "dc=example",
        "user_filter": FILTER,
        "ca_file": Path(__file__),
    }
    values.update(changes)
    return DirectorySettings(**values)  # type: ignore[arg-type]


def test_one_url_stays_one_server() -> None:
    one = settings("ldaps://ldap.example:6361")
    assert one.urls == ("ldaps://ldap.example:6361",)
    assert (one.host, one.port, one.use_ssl) == ("ldap.example", 6361, True)
    assert one.problems() == []


@pytest.mark.parametrize(
    "value",
    [
        "ldaps://127.0.0.1:6361 ldaps://127.0.0.1:6362",
        "  ldaps://127.0.0.1:6361\tldaps://127.0.0.1:6362  ",
        "ldaps://127.0.0.1:6361, ldaps://127.0.0.1:6362",
    ],
)
def test_a_list_keeps_its_order(value: str) -> None:
    assert split_urls(value) == ("ldaps://127.0.0.1:6361", "ldaps://127.0.0.1:6362")
    assert settings(value).problems() == []


def test_each_server_keeps_its_own_host_port_and_scheme() -> None:
    pair = settings("ldaps://dc1.example ldap://dc2.example:3890", starttls=True)
    assert [(e.host, e.port, e.use_ssl) for e in pair.endpoints] == [
        ("dc1.example", 636, True),
        ("dc2.example", 3890, False),
    ]
    # The preferred server speaks for the whole list where one value is wanted.
    assert (pair.host, pair.port) == ("dc1.example", 636)


def test_every_url_of_the_list_is_checked() -> None:
    problems = settings("ldaps://good.example http://bad.example ldap://clear.example").problems()
    assert any("'http://bad.example'" in problem for problem in problems)
    assert any("ldap://clear.example is ldap:// without LDAP_STARTTLS" in problem for problem in problems)
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("", "LDAP_URL is not set"),
        ("ldaps://", "ldaps://host[:port]"),
        ("ldaps://a.example ldaps://a.example", "the same server twice"),
    ],
)
def test_refused_lists(value: str, said: str) -> None:
    assert any(said in problem for problem in settings(value).problems())


def test_prefer_after_must_be_positive() -> None:
    assert any("LDAP_PREFER_AFTER" in p for p in settings("ldaps://a.example", prefer_after=0).problems())
