"""Which organization an account belongs to: configuration, read from what the directory said.

One domain serves many organizations (hospitals, clinics, practitioners),
and staff roles other than Super Admin are granted per organization. How
an account belongs to one differs between deployments, so it is a setting,
``SSPM_ORGANIZATION_FROM``:

- ``ou``: the name of the OU directly under ``LDAP_BASE_DN`` that holds the
  account (``uid=x,ou=St-Mary,ou=people,...`` under ``ou=people,...``: St-Mary);
- ``attribute:<name>``: an attribute of the account (``o``, ``company``,
  ``department``), which the connector reads into ``AccountDetails.organization``.

Names are compared as the directory compares them, ignoring case, so a grant
typed ``st-mary`` covers an OU written ``St-Mary``: :func:`key` is the one form
grants are stored in and accounts' organizations are compared in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from connectors import dn
from connectors.directory import AccountDetails

#: The organization of every organization: only a Super Admin's grant names it.
EVERY = "*"
#: The longest organization name a grant may be given, wherever it is typed.
MAX_LENGTH = 256


class BadOrganizationSource(ValueError):
    """``SSPM_ORGANIZATION_FROM`` is neither ``ou`` nor ``attribute:<name>``."""


@dataclass(frozen=True)
class OrganizationSource:
    """Where an account's organization is read: the OU under the base (``attribute`` empty) or an attribute."""

    attribute: str = ""

    @property
    def from_ou(self) -> bool:
        return not self.attribute

    @classmethod
    def parse(cls, text: str) -> OrganizationSource:
        """``ou`` or ``attribute:<name>`` (an LDAP attribute name: letters, digits, hyphens)."""
        text = text.strip()
        if text.casefold() == "ou":
            return cls()
        kind, _, name = text.partition(":")
        name = name.strip()
        if kind.strip().casefold() != "attribute" or not name:
            raise BadOrganizationSource(f"expected ou or attribute:<name>, got {text!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", name):
            raise BadOrganizationSource(f"{name!r} is not an LDAP attribute name")
        return cls(attribute=name)

    def __str__(self) -> str:
        return f"attribute:{self.attribute}" if self.attribute else "ou"


def key(name: str) -> str:
    """The one form an organization's name is stored and compared in: NFKC, case folded, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def organization_of(details: AccountDetails, source: OrganizationSource, base_dn: str) -> str | None:
    """The account's organization (as :func:`key`), or None when it has none.

    None for an account directly under the base, outside it, or without the
    attribute: such an account is in no organization, so only a Super Admin
    reaches it.
    """
    if source.from_ou:
        path = dn.path_below(details.location, base_dn)
        name = path[0] if path else ""
    else:
        name = details.organization or ""
    found = key(name)
    return found if found and found != EVERY else None
