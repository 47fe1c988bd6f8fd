"""Sending messages over SMTP, with TLS verified as configured.

Plain SMTP without TLS is accepted only to a loopback address (a local
relay or the demo's mail catcher); anywhere else it is STARTTLS or TLS,
verified against the system's CAs or SSPM_SMTP_CA_FILE.

``send`` opens a connection for one message (a reset link, a
notification). ``Connection`` keeps one open for many (a batch of
reminders): connecting, TLS and EHLO cost more than a message, on both
sides.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

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


#: The server answered about this one message (its sender, its recipient, its content) and
#: kept the connection: smtplib has reset the transaction, the next message can follow.
REFUSALS = (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)


class _Client(smtplib.SMTP):
    """Notes whether the current message's DATA was begun: before it, nothing of the message
    reached the server, so a failure may be tried again on a new connection."""

    data_begun = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_begun = True
        return super().data(msg)


class _TlsClient(_Client, smtplib.SMTP_SSL):
    pass


class ServerAway(OSError):
    """No connection to the SMTP server could be made (or it failed again at once): stop, try later."""


class Connection:
    """One SMTP connection for many messages: opened at the first, opened again after a failure.

    ``send`` raises for its own message only. A refusal (``REFUSALS``) leaves
    the connection open. A connection the server dropped while it sat idle,
    or a 421 at MAIL FROM, fails before the message's DATA: the message is
    tried once more on a new connection, which is safe (nothing of it
    was sent). A failure once DATA was begun is raised as is: whether the
    server kept the message is unknown, and the caller decides; the next
    message gets a new connection. ``ServerAway`` when no connection could be
    made: the server is away, and the messages after this one would fail too.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._client: _Client | None = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, message: bytes, sender: str, recipient: str) -> None:
        """Send ``message`` (as it goes on the wire, CRLF lines) from ``sender`` to ``recipient`` (bare addresses)."""
        for attempt in (1, 2):
            client = self._client or self._open()
            client.data_begun = False
            try:
                client.sendmail(sender, [recipient], message)
                return
            except REFUSALS:
                if client.sock is None:  # a 421 with it: the server closed the connection
                    self._client = None
                    if not client.data_begun and attempt == 1:
                        continue
                raise
            except (smtplib.SMTPException, OSError):
                self._drop()
                if client.data_begun or attempt == 2:
                    raise

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _open(self) -> _Client:
        settings = self._settings
        client: _Client | None = None
        try:
            if settings.security == "tls":
                client = _TlsClient(settings.host, settings.port, timeout=settings.timeout, context=_tls(settings))
            else:
                client = _Client(settings.host, settings.port, timeout=settings.timeout)
            if settings.security == "starttls":
                client.starttls(context=_tls(settings))
            if settings.user:
                client.login(settings.user, settings.password)
        except (smtplib.SMTPException, OSError) as exc:
            if client is not None:
                client.close()
            raise ServerAway(f"{type(exc).__name__}: {exc}") from exc
        self._client = client
        return client
