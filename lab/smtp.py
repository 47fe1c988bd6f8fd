"""A real SMTP server (aiosmtpd) that keeps what it receives, for the demo and tests.

Messages are written as .eml files into a folder (the demo prints it) and
kept in memory for tests to read. It can be told to refuse the next N
messages with a temporary error, to show that SSPM retries.
"""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from lab.slapd import free_port


@dataclass
class Mailbox:
    """What the catcher received; ``refuse_next`` makes it answer 451 that many times."""

    folder: Path | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    refuse_next: int = 0
    #: Set to hold each message until released (to kill a worker mid-send).
    hold: threading.Event | None = None
    received: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return "451 4.3.0 Try again later"
            message = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                name = f"{len(list(self.folder.glob('*.eml'))) + 1:05d}.eml"
                (self.folder / name).write_bytes(envelope.original_content or b"")
        self.received.set()
        if self.hold is not None:
            self.hold.wait(30)
        return "250 2.0.0 OK"


class SmtpCatcher:
    def __init__(self, mailbox: Mailbox, port: int | None = None) -> None:
        self.mailbox = mailbox
        self.port = port or free_port()
        handler: Any = mailbox
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def start_smtp(folder: Path | None = None, port: int | None = None) -> SmtpCatcher:
    return SmtpCatcher(Mailbox(folder=folder), port).start()
