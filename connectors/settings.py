"""How to reach a directory: plain values, no Flask, no environment.

The app builds this from its own configuration; tests and benchmarks build
it from the servers they start. Every network wait has a bound here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from connectors import dn


@dataclass(frozen=True)
class Endpoint:
    """One directory server of the list: where it is, and the name its certificate must carry."""

    url: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def use_ssl(self) -> bool:
        return urlsplit(self.url).scheme == "ldaps"

    @property
    def port(self) -> int:
        parsed = urlsplit(self.url)
        return parsed.port or (636 if parsed.scheme == "ldaps" else 389)


def split_urls(value: str) -> tuple[str, ...]:
    """LDAP_URL's servers, preferred first: separated by spaces (or commas, as some write lists)."""
    return tuple(part for part in value.replace(",", " ").split() if part)


@dataclass(frozen=True)
class DirectorySettings:
    #: One URL, or several separated by spaces, preferred first: replicas of
    #: one directory (OpenLDAP providers, AD domain controllers) sharing the
    #: scheme rules, CA file and accounts below.
    url: str
    bind_dn: str
    bind_password: str
    base_dn: str
    #: Filter template; ``{login}`` is replaced by the escaped user name.
    user_filter: str
    #: DN of the password policy entry users are under (OpenLDAP ppolicy).
    policy_dn: str = ""
    ca_file: Path | None = None
    starttls: bool = False
    #: Longest wait to open a connection: TCP connect and TLS handshake together.
    connect_timeout: int = 3
    #: Longest wait for one operation, from its request to the end of its
    #: answer, so a slow directory cannot hold a request (and a web worker) for ever.
    timeout: int = 5
    #: Idle service-account connections kept open.
    pool_size: int = 4
    #: Directory calls in flight at once in one process (connectors/guard.py):
    #: below the web server's threads per process, the rest serve other pages.
    max_calls: int = 2
    #: Longest wait for one of those ``max_calls`` slots.
    queue_timeout: int = 1
    #: After a call got no answer in time, how long every call fails at once
    #: before one tries again.
    retry_after: int = 5
    #: Where :class:`~connectors.directory.Provisioning` creates accounts, and
    #: the only subtree it changes, moves into or deletes from; at or under
    #: ``base_dn``. Empty: provisioning is off.
    provision_base_dn: str = ""
    #: A second account for account lifecycle (create, change, move, delete,
    #: enable, disable), so the service account that serves every page never
    #: holds those rights. Empty: the service account is used.
    provisioning_bind_dn: str = ""
    provisioning_bind_password: str = ""
    #: An attribute that names each account's organization (``o``, ``company``,
    #: ``department``), read into ``AccountDetails.organization``; empty: none read.
    organization_attribute: str = ""
    #: With several servers in ``url``: how long one that failed is skipped,
    #: and how often the preferred one is tried again while another serves.
    prefer_after: int = 60

    @property
    def urls(self) -> tuple[str, ...]:
        """The servers of ``url``, preferred first."""
        return split_urls(self.url)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(Endpoint(url) for url in self.urls)

    @property
    def host(self) -> str:
        """The preferred server's host."""
        return self.endpoints[0].host if self.urls else ""

    @property
    def use_ssl(self) -> bool:
        return bool(self.urls) and self.endpoints[0].use_ssl

    @property
    def port(self) -> int:
        """The preferred server's port."""
        return self.endpoints[0].port if self.urls else 636

    def problems(self) -> list[str]:
        """Say what is wrong with these settings, before any connection."""
        found: list[str] = []
        if not self.urls:
            found.append("LDAP_URL is not set")
        for url in self.urls:
            parsed = urlsplit(url)
            if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
                found.append(f"LDAP_URL must hold ldaps://host[:port] or ldap://host[:port] URLs (got {url!r})")
            elif parsed.scheme == "ldap" and not self.starttls:
                found.append(
                    f"LDAP_URL {url} is ldap:// without LDAP_STARTTLS=true: passwords would cross the network in clear"
                )
        if len(set(self.urls)) != len(self.urls):
            found.append("LDAP_URL names the same server twice")
        if self.prefer_after < 1:
            found.append("LDAP_PREFER_AFTER must be at least 1 second")
        if self.ca_file is None:
            found.append("LDAP_CA_FILE is not set: the directory's certificate cannot be verified")
        elif not self.ca_file.is_file():
            found.append(f"LDAP_CA_FILE {self.ca_file} does not exist")
        if not self.bind_dn:
            found.append("LDAP_BIND_DN (the service account) is not set")
        if not self.bind_password:
            found.append("LDAP_BIND_PASSWORD (the service account's password) is not set")
        if not self.base_dn:
            found.append("LDAP_BASE_DN is not set")
        if "{login}" not in self.user_filter:
            found.append("LDAP_USER_FILTER must contain {login}")
        if self.connect_timeout < 1 or self.timeout < 1:
            found.append("LDAP_CONNECT_TIMEOUT and LDAP_TIMEOUT must be at least 1 second: 0 would wait for ever")
        if self.max_calls < 1:
            found.append("LDAP_MAX_CALLS must be at least 1: with 0 no request could reach the directory")
        if self.provision_base_dn and self.base_dn and not dn.within(self.provision_base_dn, self.base_dn):
            found.append(
                "LDAP_PROVISION_BASE_DN must be at or under LDAP_BASE_DN: accounts created elsewhere could not sign in"
            )
        if bool(self.provisioning_bind_dn) != bool(self.provisioning_bind_password):
            found.append("LDAP_PROVISIONING_BIND_DN and LDAP_PROVISIONING_BIND_PASSWORD go together")
        return found
