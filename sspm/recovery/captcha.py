"""Image CAPTCHAs (with an audio version of the same characters).

Each is bound to the browser that asked for it (its id lives only in that
browser's signed session), expires, and is used once: checking it deletes
it, right or wrong. Its audio is made at most once (captcha_audio.py makes
it in a helper process) and kept beside it until it expires: fetching the
audio again, as a user replaying it or as a flood, costs a Redis read.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from dataclasses import dataclass

from captcha.image import ImageCaptcha
from flask import session
from PIL import Image

from sspm.infra.state import State
from sspm.recovery import captcha_audio

#: No look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B): people misread them, on screen and spoken.
ALPHABET = "ACDEFHJKMNPRTUVWXY34679"
LENGTH = 6
TTL_SECONDS = 600
_KIND = "captcha"
_AUDIO = "captcha-audio"
#: The picture of a CAPTCHA, drawn once: every later request for it gets the same bytes.
_IMAGE = "captcha-image"
#: Taken by the request that makes a CAPTCHA's audio, so no other makes it too.
_MAKING = "captcha-audio-making"
_SESSION_KEY = "captcha"
#: WCAG asks 4.5:1 for text (7:1 at level AAA). The characters are thin, warped and
#: smoothed, so their ink is drawn at 7:1 or more to keep their edges above 4.5:1.
MIN_CONTRAST = 7.0
#: The ink's brightness as Pillow's "L" sees it: the character mask is made from it (see _Picture).
_MIN_INK_LUMA = 32

RGB = tuple[int, int, int]


class AudioBusy(Exception):
    """This app process is already making an audio clip: the caller tries again in a few seconds."""


@dataclass(frozen=True)
class Audio:
    wav: bytes
    #: The language its characters are spoken in.
    lang: str


def issue(state: State) -> None:
    """Draw new characters for this browser, replacing any earlier ones."""
    old = session.get(_SESSION_KEY)
    if isinstance(old, str):
        state.delete(_KIND, old)
        state.delete(_AUDIO, old)
        state.delete(_IMAGE, old)
    cid = secrets.token_urlsafe(16)
    text = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    state.put(_KIND, cid, {"text": text, "expires": time.time() + TTL_SECONDS}, TTL_SECONDS)
    session[_SESSION_KEY] = cid


def luminance(colour: RGB) -> float:
    """WCAG 2's relative luminance of an sRGB colour."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: RGB, other: RGB) -> float:
    """WCAG 2's contrast ratio, from 1 (same) to 21 (black on white)."""
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _luma(colour: RGB) -> int:
    return int(Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0)))  # type: ignore[arg-type]


def palette() -> tuple[RGB, RGB]:
    """A near-white background and an ink of any hue at MIN_CONTRAST or more against it.

    captcha's own drew the ink from 10-200 per channel whatever the
    background: a yellow such as (200, 200, 10) on near-white is 1.6:1.
    """
    background = (238 + secrets.randbelow(18), 238 + secrets.randbelow(18), 238 + secrets.randbelow(18))
    while True:
        ink = (secrets.randbelow(256), secrets.randbelow(256), secrets.randbelow(256))
        if contrast(ink, background) >= MIN_CONTRAST and _luma(ink) >= _MIN_INK_LUMA:
            return background, ink


class _Picture(ImageCaptcha):
    """ImageCaptcha with its characters pasted in their ink at full strength.

    captcha pastes each character through a mask made from the character's
    own brightness (times 1.97), so a dark ink came out faint, black not at
    all, and only light inks were pasted as drawn. Scaled to this ink, the
    mask is opaque inside the strokes and fades only at their edges.
    """

    def __init__(self, ink: RGB) -> None:
        super().__init__(width=280, height=90)
        luma = _luma(ink)
        self.lookup_table = [min(255, round(255 * value / luma)) for value in range(256)]


def image(state: State) -> bytes | None:
    """This browser's CAPTCHA as a PNG, drawn on the first request and kept while the CAPTCHA lives.

    Drawn once, not per request: a script fetching the same characters many
    times would otherwise get as many different distortions to average away
    (an easy OCR attack), and each drawing costs CPU a flood could spend.
    """
    cid = session.get(_SESSION_KEY)
    if not isinstance(cid, str):
        return None
    kept = state.get(_IMAGE, cid)
    if kept:
        return base64.b64decode(kept["png"])
    record = state.get(_KIND, cid)
    if record is None:
        return None
    background, ink = palette()
    png: bytes = _Picture(ink).generate(str(record["text"]), bg_color=background, fg_color=ink).getvalue()
    left = max(1, int(float(record.get("expires", time.time() + TTL_SECONDS)) - time.time()))
    state.put(_IMAGE, cid, {"png": base64.b64encode(png).decode("ascii")}, left)
    return png


def audio(state: State, lang: str) -> Audio | None:
    """This browser's CAPTCHA spoken in ``lang`` (made on the first request, then kept); None without one.

    Raises AudioBusy when it has to be made and this app process is already
    making one, or another request is making this one.
    """
    cid = session.get(_SESSION_KEY)
    if not isinstance(cid, str):
        return None
    kept = state.get(_AUDIO, cid)
    if kept:
        return Audio(base64.b64decode(kept["wav"]), str(kept["lang"]))
    record = state.get(_KIND, cid)
    if record is None:
        return None
    if captcha_audio.busy():  # said before counting anything: a flood meets this answer most
        raise AudioBusy
    if state.hit(_MAKING, cid, int(captcha_audio.WAIT_SECONDS) + 5) > 1:
        raise AudioBusy
    lang = captcha_audio.voice_for(lang)
    wav: bytes | None = None
    try:
        wav = captcha_audio.speak(str(record["text"]), lang)
    finally:
        if wav is None:  # not made: the next request may try
            state.delete(_MAKING, cid)
    if wav is None:
        raise AudioBusy
    # Kept no longer than its CAPTCHA (a second less, for the rounding).
    expires = float(record.get("expires", time.time() + TTL_SECONDS))
    state.put(_AUDIO, cid, {"wav": base64.b64encode(wav).decode(), "lang": lang}, int(expires - time.time()) - 1)
    return Audio(wav, lang)


def passes(state: State, typed: str) -> bool:
    """Check and spend this browser's CAPTCHA."""
    cid = session.pop(_SESSION_KEY, None)
    record = state.take(_KIND, cid) if isinstance(cid, str) else None
    if record is None:
        return False
    state.delete(_AUDIO, cid)
    state.delete(_IMAGE, cid)
    cleaned = "".join(typed.split()).upper()
    return hmac.compare_digest(cleaned.encode(), str(record["text"]).encode())
