"""Image CAPTCHAs (with an audio version of the same characters).

Each is bound to the browser that asked for it (its id lives only in that
browser's signed session), expires, and is used once: checking it deletes
it, right or wrong.
"""

from __future__ import annotations

import hmac
import secrets

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha
from flask import session

from sspm.state import State

#: No look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B): people misread them, on screen and spoken.
ALPHABET = "ACDEFHJKMNPRTUVWXY34679"
LENGTH = 6
TTL_SECONDS = 600
_KIND = "captcha"
_SESSION_KEY = "captcha"


def issue(state: State) -> None:
    """Draw new characters for this browser, replacing any earlier ones."""
    old = session.get(_SESSION_KEY)
    if isinstance(old, str):
        state.delete(_KIND, old)
    cid = secrets.token_urlsafe(16)
    text = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    state.put(_KIND, cid, {"text": text}, TTL_SECONDS)
    session[_SESSION_KEY] = cid


def _text(state: State) -> str | None:
    cid = session.get(_SESSION_KEY)
    record = state.get(_KIND, cid) if isinstance(cid, str) else None
    return str(record["text"]) if record else None


def image(state: State) -> bytes | None:
    text = _text(state)
    return ImageCaptcha(width=280, height=90).generate(text).getvalue() if text else None


def audio(state: State) -> bytes | None:
    text = _text(state)
    return bytes(AudioCaptcha().generate(text)) if text else None


def passes(state: State, typed: str) -> bool:
    """Check and spend this browser's CAPTCHA."""
    cid = session.pop(_SESSION_KEY, None)
    record = state.take(_KIND, cid) if isinstance(cid, str) else None
    if record is None:
        return False
    cleaned = "".join(typed.split()).upper()
    return hmac.compare_digest(cleaned.encode(), str(record["text"]).encode())
