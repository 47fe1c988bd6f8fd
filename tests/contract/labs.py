"""A lab per directory kind for the role contracts (administration, provisioning, sync).

Each :class:`RoleLab` is a real server of its own for one test (the root
conftest's ``slapd`` or ``samba_dc``), reached through DirectorySettings
built here, provisioning account included: these roles are the connectors'
alone, and no app is needed to drive them. A test module takes one with::

    @pytest.fixture(params=connectors.KINDS)
    def role_lab(request, accounts): yield from labs.role_lab(request, accounts)
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
import pytest

from connectors import open_directory
from connectors.directory import Account, Directory
from connectors.settings import DirectorySettings
from lab import SeedAccount, Slapd, samba
from lab.seed import ORGANIZATION_ATTRIBUTES
from lab.seed import PEOPLE_DN as OPENLDAP_PEOPLE_DN
from lab.slapd import USER_FILTER as OPENLDAP_USER_FILTER

#: Passwords chosen to pass any directory's quality rules and never to be seeded.
NEW_PASSWORD = "Orchard-Kettle-Lantern-58"
TEMPORARY_PASSWORD = "Temp-Glacier-Pepper-19"


@dataclass
class RoleLab:
    """One running directory, how to reach it, and an administrator's way in to check what SSPM did."""

    kind: str
    accounts: dict[str, SeedAccount]
    settings: DirectorySettings
    #: Host and port of the server, for raw connections.
    host: str
    port: int
    admin_dn: str
    admin_password: str
    _opened: list[Directory] = field(default_factory=list)

    @property
    def people_dn(self) -> str:
        return self.settings.base_dn

    @property
    def ou(self) -> str:
        """How this kind spells an OU's RDN type (as the lab wrote them)."""
        return "ou" if self.kind == "openldap" else "OU"

    def connect(self, **changes: str) -> Directory:
        """A connector on this server, with some settings changed."""
        connector = open_directory(self.kind, dataclasses.replace(self.settings, **changes))
        self._opened.append(connector)
        return connector

    def raw(self, dn: str, password: str) -> ldap3.Connection:
        """A plain ldap3 connection over verified TLS, bound as ``dn``."""
        tls = ldap3.Tls(ca_certs_file=str(self.settings.ca_file), validate=ssl.CERT_REQUIRED)
        server = ldap3.Server(self.host, port=self.port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
        conn = ldap3.Connection(server, user=dn, password=password, receive_timeout=5)
        assert conn.bind(), conn.result
        return conn

    def admin(self) -> ldap3.Connection:
        """Bound as the directory's own administrator (rootdn, Administrator): never SSPM's accounts."""
        return self.raw(self.admin_dn, self.admin_password)

    def entry(self, dn: str, *attributes: str) -> dict[str, list[str]] | None:
        """An entry's attributes as the administrator reads them; None if there is no such entry."""
        conn = self.admin()
        try:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes) or ["*"])
            if conn.result["result"] == 32:
                return None
            assert conn.result["result"] == 0, conn.result
            found = conn.entries[0].entry_attributes_as_dict.items()
            return {name: [str(value) for value in values] for name, values in found}
        finally:
            conn.unbind()

    def subtree(self, base: str, query: str = "(objectClass=*)") -> list[str]:
        """Every DN under ``base`` (itself included) matching ``query``, as the administrator sees them."""
        conn = self.admin()
        try:
            conn.search(base, query, ldap3.SUBTREE, attributes=["1.1"])
            return [e["dn"] for e in conn.response or [] if e.get("type") == "searchResEntry"]
        finally:
            conn.unbind()

    def add_person(self, login: str, given: str, surname: str, *, under: str = "") -> str:
        """Add a person as the directory's own administrator would (no SSPM code); her DN."""
        parent = under or self.people_dn
        display = f"{given} {surname}"
        attributes: dict[str, object]
        if self.kind == "openldap":
            entry_dn = f"uid={login},{parent}"
            attributes = {"objectClass": ["inetOrgPerson"], "uid": login, "cn": display, "sn": surname}
        else:
            entry_dn = f"CN={display},{parent}"
            attributes = {"objectClass": ["user"], "sAMAccountName": login, "sn": surname}
        attributes |= {"givenName": given, "displayName": display, "mail": f"{login}@partners.example"}
        conn = self.admin()
        try:
            assert conn.add(entry_dn, attributes=attributes), conn.result
        finally:
            conn.unbind()
        return entry_dn

    def modify(self, dn: str, changes: dict[str, list[str]]) -> None:
        """Replace attributes as the directory's own administrator would."""
        conn = self.admin()
        try:
            assert conn.modify(dn, {name: [(ldap3.MODIFY_REPLACE, values)] for name, values in changes.items()}), (
                conn.result
            )
        finally:
            conn.unbind()

    def close(self) -> None:
        for connector in self._opened:
            connector.close()


def openldap_lab(slapd: Slapd, accounts: dict[str, SeedAccount]) -> RoleLab:
    settings = DirectorySettings(
        url=slapd.ldaps_url,
        bind_dn=slapd.service_dn,
        bind_password=slapd.service_password,
        base_dn=OPENLDAP_PEOPLE_DN,
        user_filter=OPENLDAP_USER_FILTER,
        policy_dn=slapd.policy_dn,
        ca_file=slapd.ca_file,
        provision_base_dn=OPENLDAP_PEOPLE_DN,
        provisioning_bind_dn=slapd.provisioning_dn,
        provisioning_bind_password=slapd.provisioning_password,
        organization_attribute=ORGANIZATION_ATTRIBUTES["openldap"],
    )
    port = int(slapd.ldaps_url.rsplit(":", 1)[1])
    return RoleLab("openldap", accounts, settings, "127.0.0.1", port, slapd.root_dn, slapd.root_password)


def ad_lab(dc: samba.SambaDC, accounts: dict[str, SeedAccount]) -> RoleLab:
    settings = DirectorySettings(
        url=dc.ldaps_url,
        bind_dn=dc.service_dn,
        bind_password=dc.service_password,
        base_dn=dc.people_dn,
        user_filter=samba.USER_FILTER,
        ca_file=dc.ca_file,
        provision_base_dn=dc.people_dn,
        provisioning_bind_dn=dc.provisioning_dn,
        provisioning_bind_password=dc.provisioning_password,
        organization_attribute=ORGANIZATION_ATTRIBUTES["ad"],
    )
    return RoleLab("ad", accounts, settings, dc.address, 636, dc.admin_dn, dc.admin_password)


def role_lab(request: pytest.FixtureRequest, accounts: dict[str, SeedAccount]) -> Iterator[RoleLab]:
    """The body of a ``role_lab`` fixture parametrised by kind: a fresh server of that kind."""
    if request.param == "openldap":
        lab = openldap_lab(request.getfixturevalue("slapd"), accounts)
    else:
        lab = ad_lab(request.getfixturevalue("samba_dc"), accounts)
    yield lab
    lab.close()


def established_connections_to(port: int) -> int:
    """This process's TCP connections to ``port`` that are open right now (Linux)."""
    own = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            own.add(target[len("socket:[") : -1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if remote_port == port and fields[3] == "01" and fields[9] in own:  # 01 = ESTABLISHED
            count += 1
    return count


def account_of(directory: Directory, person: SeedAccount) -> Account:
    account = directory.find_account(person.uid)
    assert account is not None, f"{person.uid} should be in the directory"
    return account
