"""The settings an SSPM app needs to use a lab directory.

One mapping, used by the tests, the demo and the benchmarks, so all three
run the app exactly as an operator's .env would.
"""

from __future__ import annotations

import secrets

from lab.seed import BASE_DN, DEFAULT_POLICY_DN
from lab.slapd import Slapd


def sspm_environ(
    slapd: Slapd, *, redis_url: str, database_url: str, smtp_port: int = 25, **overrides: str
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
        "DIRECTORY_KIND": "openldap",
        "LDAP_URL": slapd.ldaps_url,
        "LDAP_CA_FILE": str(slapd.ca_file),
        "LDAP_BIND_DN": slapd.service_dn,
        "LDAP_BIND_PASSWORD": slapd.service_password,
        "LDAP_BASE_DN": "ou=people," + BASE_DN,
        "LDAP_POLICY_DN": DEFAULT_POLICY_DN,
    }
    environ.update(overrides)
    return environ
