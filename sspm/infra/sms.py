"""Text messages (SMS): one small Protocol, and the two ways SSPM sends one.

A phone number is proved the way an address is: something only its holder
can read. SSPM does not speak to a phone network; a deployment's SMS
gateway does. So the sender is pluggable (``SSPM_SMS_SENDER``):

- ``http``: POST ``{"id", "to", "text"}`` as JSON to ``SSPM_SMS_GATEWAY_URL``
  with ``Authorization: Bearer <SSPM_SMS_GATEWAY_TOKEN>`` (or the content of
  ``SSPM_SMS_GATEWAY_TOKEN_FILE``, to keep it out of the environment); any
  2xx means the gateway took it. HTTPS is verified against the system CAs;
  plain HTTP only to a loopback gateway, as for SMTP.
- ``catcher``: each message becomes a file in ``SSPM_SMS_DIR``, as the lab's
  mail catcher keeps ``.eml`` files: for the demo and the tests, where a
  person (or a test) reads the code off the disk. Never for production:
  nobody's phone gets anything.

A sender either took the message or raises :class:`SmsUnavailable`: the
caller says "not sent, try again" and changes nothing. Sending happens in
the request (a person is waiting for the code), bounded by
``SSPM_SMS_TIMEOUT``; the text never goes through a job queue, since a code
is a secret and a job sits in Redis long after it ran.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import ssl
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

#: SSPM_SMS_SENDER's values.
SENDERS = ("catcher", "http")
#: The extension the catcher gives each message (lab/sms.py reads them back).
SUFFIX = ".sms"


class SmsUnavailable(Exception):
    """The message was not taken (gateway away, refused, timed out): nothing was sent."""


class SmsSender(Protocol):
    """Hands one text to whatever delivers it; raises :class:`SmsUnavailable` if it was not taken."""

    def send(self, to: str, text: str) -> None: ...


@dataclass(frozen=True)
class SmsSettings:
    sender: str = "catcher"
    #: Where the catcher writes (``catcher`` only).
    directory: Path = Path("tmp/sms")
    gateway_url: str = ""
    gateway_token: str = ""
    #: Seconds the gateway has to take a message.
    timeout: int = 10

    def problems(self) -> list[str]:
        found = []
        if self.sender not in SENDERS:
            found.append(f"SSPM_SMS_SENDER must be one of {', '.join(SENDERS)} (got {self.sender!r})")
        if self.sender == "http":
            where = urlsplit(self.gateway_url)
            if where.scheme not in ("http", "https") or not where.hostname:
                found.append(f"SSPM_SMS_GATEWAY_URL must be an absolute http(s) URL (got {self.gateway_url!r})")
            elif where.scheme == "http" and not _loopback(where.hostname):
                found.append("SSPM_SMS_GATEWAY_URL may use plain http only to a loopback gateway: use https")
            if not self.gateway_token:
                found.append("SSPM_SMS_GATEWAY_TOKEN (or SSPM_SMS_GATEWAY_TOKEN_FILE) is not set")
        if self.timeout < 1:
            found.append("SSPM_SMS_TIMEOUT must be at least 1")
        return found


def open_sender(settings: SmsSettings) -> SmsSender:
    if settings.sender == "http":
        return HttpSender(settings.gateway_url, settings.gateway_token, settings.timeout)
    return CatcherSender(settings.directory)


class CatcherSender:
    """Writes each message as a file: ``To:`` and ``Date:`` lines, a blank line, the text.

    Files are named by the time they were written, so listing the folder in
    name order reads them in order; each appears whole (written aside, then
    renamed), so a reader never sees half a message.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, to: str, text: str) -> None:
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        content = f"To: {to}\nDate: {format_datetime(datetime.now(UTC))}\n\n{text}\n"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f".{name}.part"
            partial.write_text(content, encoding="utf-8")
            os.replace(partial, self.folder / f"{name}{SUFFIX}")
        except OSError as exc:
            raise SmsUnavailable(f"cannot write to {self.folder}: {exc.strerror}") from None


class HttpSender:
    """Posts each message to an SMS gateway as JSON, with a bearer token.

    The body carries an ``id`` of its own, so a gateway that deduplicates can
    tell a retry from a second message.
    """

    def __init__(self, url: str, token: str, timeout: int) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout
        self._context = ssl.create_default_context()

    def send(self, to: str, text: str) -> None:
        body = json.dumps({"id": uuid.uuid4().hex, "to": to, "text": text}).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked at start: http(s) only)
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._token}",
                "User-Agent": "sspm",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise SmsUnavailable(f"the SMS gateway refused the message ({exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SmsUnavailable(f"the SMS gateway could not be reached: {exc}") from None
        if not 200 <= status < 300:
            raise SmsUnavailable(f"the SMS gateway answered {status}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
