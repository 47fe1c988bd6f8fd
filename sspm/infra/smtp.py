"""Sending one message over SMTP, with TLS verified as configured.

Plain SMTP without TLS is accepted only to a loopback address (a local
relay or the demo's mail catcher); anywhere else it is STARTTLS or TLS,
verified against the system's CAs or SSPM_SMTP_CA_FILE.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    ca_file: Path | None
    user: str
    password: str
    timeout: int
    sender: str

    def problems(self) -> list[str]:
        found = []
        if self.security not in SECURITY:
            found.append(f"SSPM_SMTP_SECURITY must be one of {', '.join(SECURITY)} (got {self.security!r})")
        if self.security == "none" and not _loopback(self.host):
            found.append("SSPM_SMTP_SECURITY=none is only allowed to a loopback SSPM_SMTP_HOST")
        if self.ca_file is not None and not self.ca_file.is_file():
            found.append(f"SSPM_SMTP_CA_FILE {self.ca_file} does not exist")
        if not self.sender:
            found.append("SSPM_MAIL_FROM is not set")
        return found


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand the message to the server; raises smtplib.SMTPException or OSError on failure."""
    client: smtplib.SMTP
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=_tls(settings))
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.security == "starttls":
            client.starttls(context=_tls(settings))
        if settings.user:
            client.login(settings.user, settings.password)
        client.send_message(message)
