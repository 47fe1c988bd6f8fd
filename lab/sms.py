"""Reading what SSPM's SMS catcher wrote (sspm.infra.sms.CatcherSender), as the lab's mail catcher keeps .eml files.

The demo prints the folder; a person reads the code off the newest file.
Tests read them here, as a phone's owner reads a text message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The extension the catcher gives each message.
SUFFIX = ".sms"


@dataclass(frozen=True)
class TextMessage:
    to: str
    text: str
    path: Path


def read_messages(folder: Path) -> list[TextMessage]:
    """Every message in ``folder``, oldest first (their names start with the time they were written)."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        headers = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        found.append(TextMessage(to=headers.get("To", ""), text=body.rstrip("\n"), path=path))
    return found
