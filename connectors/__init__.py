"""Directory connectors: the contract, and one module per directory kind.

This package is the only place that speaks LDAP. The app asks for a
directory by kind and gets something that fulfils
:class:`connectors.directory.Directory`: every role at once (self-service,
administration, provisioning, sync reading); each part of the app types
what it holds as the one role it uses.
"""

from __future__ import annotations

from connectors.directory import Directory
from connectors.settings import DirectorySettings

KINDS = ("openldap", "ad")


def open_directory(kind: str, settings: DirectorySettings) -> Directory:
    """Build the connector for ``kind``; nothing is contacted yet."""
    if kind == "openldap":
        from connectors.openldap import OpenLdapDirectory

        return OpenLdapDirectory(settings)
    if kind == "ad":
        from connectors.activedirectory import ActiveDirectory

        return ActiveDirectory(settings)
    raise ValueError(f"DIRECTORY_KIND must be one of {', '.join(KINDS)} (got {kind!r})")
