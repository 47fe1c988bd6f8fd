"""The settings an SSPM app needs to use a lab directory.

One mapping, used by the tests, the demo and the benchmarks, so all three
run the app exactly as an operator's .env would. Each lab directory
(:class:`lab.slapd.Slapd`, :class:`lab.samba.SambaDC`) says how SSPM
reaches it; the rest is the same whatever the directory.
"""

from __future__ import annotations

import secrets
from typing import Protocol


class LabDirectory(Protocol):
    """A running lab directory server."""

    def directory_environ(self) -> dict[str, str]:
        """``DIRECTORY_KIND`` and the ``LDAP_*`` settings that point SSPM at this server."""
        ...


def sspm_environ(
    directory: LabDirectory, *, redis_url: str, database_url: str, smtp_port: int = 25, **overrides: str
) -> dict[str, str]:
    environ = {
        "SSPM_REDIS_URL": redis_url,
        "SSPM_DATABASE_URL": database_url,
        # The lab's mail catcher listens on loopback without TLS.
        "SSPM_SMTP_HOST": "127.0.0.1",
        "SSPM_SMTP_PORT": str(smtp_port),
        "SSPM_SMTP_SECURITY": "none",
        "SSPM_SECRET_KEY": secrets.token_urlsafe(48),
        "SSPM_PUBLIC_BASE_URL": "https://sspm.partners.example",
        **directory.directory_environ(),
    }
    environ.update(overrides)
    return environ
