"""The CAPTCHA's image and audio, as the people who need them and an attacker who floods them meet them.

The audio is the costly half: an attacker who fetches it in a loop must
neither make the server speak the same characters again and again, nor get
past the per-address limit, nor hold up the pages everyone else is loading.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from PIL import Image
from werkzeug.test import TestResponse

from lab import Slapd
from sspm.recovery import captcha, captcha_audio
from tests.support.flows import AppFactory, Visitor, app_redis, browser_session, says, text_in

AUDIO = "/captcha/audio.wav"
BUSY_TITLE = "Please try again in a few seconds"


def listens(visitor: Visitor, lang: str | None = None) -> TestResponse:
    """Choose "Listen to the characters" on the page last shown."""
    return visitor.get(AUDIO, headers={"Accept-Language": lang} if lang else {})


def seconds_of(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as clip:
        return clip.getnframes() / clip.getframerate()


# -- made once -------------------------------------------------------------------------------------


def test_the_audio_of_one_captcha_is_made_once_however_often_it_is_fetched(app: Flask) -> None:
    visitor = Visitor(app)
    visitor.get("/forgot")
    made = captcha_audio.clips_made()

    first, again, once_more = listens(visitor), listens(visitor), listens(visitor)

    assert first.status_code == 200 and first.mimetype == "audio/wav"
    assert 3 < seconds_of(first.data) < 30, "six characters, each after a pause"
    assert again.data == first.data == once_more.data, "the same clip, kept"
    assert captcha_audio.clips_made() == made + 1, "made once, for the three requests"
    # Kept no longer than the CAPTCHA it speaks.
    cid = browser_session(visitor)["captcha"]
    kept, record = (app_redis(app).pttl(f"sspm:{kind}:{cid}") for kind in ("captcha-audio", "captcha"))
    assert 0 < kept < record

    # A new image is new characters, so a new clip; the old one is gone with its CAPTCHA.
    visitor.get("/forgot")
    fresh = listens(visitor)
    assert fresh.status_code == 200 and fresh.data != first.data
    assert captcha_audio.clips_made() == made + 2
    assert app_redis(app).exists(f"sspm:captcha-audio:{cid}") == 0


def test_one_captcha_is_one_picture_however_often_it_is_fetched(app: Flask) -> None:
    """Drawn once: a script fetching the same characters again gets the same bytes, not a new
    distortion to average away, and costs no new drawing."""
    visitor = Visitor(app)
    visitor.get("/forgot")

    first, again = (visitor.get("/captcha/image.png") for _ in range(2))

    assert first.status_code == again.status_code == 200 and first.mimetype == "image/png"
    assert again.data == first.data
    cid = browser_session(visitor)["captcha"]
    kept, record = (app_redis(app).pttl(f"sspm:{kind}:{cid}") for kind in ("captcha-image", "captcha"))
    assert 0 < kept <= record
    visitor.get("/forgot")
    assert visitor.get("/captcha/image.png").data != first.data, "new characters, a new picture"
    assert app_redis(app).exists(f"sspm:captcha-image:{cid}") == 0, "gone with its CAPTCHA"


def test_there_is_no_audio_without_a_captcha_on_the_page(app: Flask) -> None:
    made = captcha_audio.clips_made()
    assert Visitor(app).get(AUDIO).status_code == 404
    assert captcha_audio.clips_made() == made


# -- limited per address ------------------------------------------------------------------------


def test_fetching_the_audio_in_a_loop_hits_the_per_address_limit(build_app: AppFactory, slapd: Slapd) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_IP="3 per minute")
    attacker = Visitor(app)
    for _ in range(3):
        attacker.get("/forgot")  # a new CAPTCHA each time: what the cache alone cannot stop
        assert listens(attacker).status_code == 200

    attacker.get("/forgot")
    refused = listens(attacker, "fr")

    assert refused.status_code == 429
    assert says(refused, text_in(app, "Too many attempts", "fr")), "the translated page"
    # Pages stay open to that address: the limit is on the audio.
    assert attacker.get("/forgot").status_code == 200


# -- away from the page threads -----------------------------------------------------------------


def audio_helpers() -> list[int]:
    """This process's children that run the audio helper (read from /proc, as ps would)."""
    children = [int(pid) for task in Path("/proc/self/task").glob("*/children") for pid in task.read_text().split()]
    return [pid for pid in children if b"captcha_audio.py" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@contextmanager
def helper_frozen() -> Iterator[int]:
    """This app process's audio helper, stopped (SIGSTOP) as if busy with a long clip; resumed after."""
    helpers = audio_helpers()
    assert len(helpers) == 1, "one helper process makes the audio"
    pid = helpers[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for another thread to reach a point (a bound against hanging, not a timing)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def test_pages_are_served_while_an_audio_is_being_made(app: Flask) -> None:
    warm = Visitor(app)
    warm.get("/forgot")
    assert listens(warm).status_code == 200  # the helper process is running
    listener, other, reader = Visitor(app), Visitor(app), Visitor(app)
    listener.get("/forgot")
    other.get("/forgot")
    heard: list[TestResponse] = []

    with helper_frozen():
        waiting = threading.Thread(target=lambda: heard.append(listens(listener)))
        waiting.start()
        wait_until(captcha_audio.busy, "the listener's clip is being made")

        assert reader.get("/").status_code == 200, "the home page"
        assert reader.get("/forgot").status_code == 200, "a page with a CAPTCHA"
        assert reader.get("/captcha/image.png").status_code == 200, "its image"
        told = listens(other)
        assert told.status_code == 503, "another audio is not queued behind it"
        assert told.headers["Retry-After"] == "5"
        assert says(told, text_in(app, BUSY_TITLE))
        assert waiting.is_alive(), "all the while the listener's clip was being made"

    waiting.join(timeout=60)
    assert [response.status_code for response in heard] == [200]
    # Told to try again, the other visitor gets theirs.
    assert listens(other).status_code == 200


def test_a_helper_that_died_is_replaced(app: Flask) -> None:
    first = Visitor(app)
    first.get("/forgot")
    assert listens(first).status_code == 200
    (dead,) = audio_helpers()
    os.kill(dead, signal.SIGKILL)
    wait_until(lambda: Path(f"/proc/{dead}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", "it is dead")

    later = Visitor(app)
    later.get("/forgot")
    assert listens(later).status_code == 200
    assert dead not in audio_helpers() and len(audio_helpers()) == 1


def test_the_busy_answer_is_in_the_page_language(app: Flask) -> None:
    warm, listener, other = Visitor(app), Visitor(app), Visitor(app)
    warm.get("/forgot")
    listens(warm)
    listener.get("/forgot")
    other.get("/forgot?lang=fr")
    with helper_frozen():
        waiting = threading.Thread(target=lambda: listens(listener))
        waiting.start()
        wait_until(captcha_audio.busy, "the listener's clip is being made")
        told = listens(other, "fr")
    waiting.join(timeout=60)
    assert told.status_code == 503
    assert says(told, text_in(app, BUSY_TITLE, "fr"))


# -- in the page's language ------------------------------------------------------------------------


def test_a_french_page_speaks_its_characters_in_french(app: Flask) -> None:
    french, english = Visitor(app), Visitor(app)
    french.get("/forgot?lang=fr")
    english.get("/forgot")

    heard_fr, heard_en = listens(french), listens(english)

    assert heard_fr.status_code == heard_en.status_code == 200
    assert heard_fr.headers["Content-Language"] == "fr"
    assert heard_en.headers["Content-Language"] == "en"


def test_every_character_has_french_and_english_takes_of_its_own() -> None:
    for lang in ("en", "fr"):
        for char in captcha.ALPHABET:
            takes = sorted((captcha_audio.VOICES / lang / char).glob("*.wav"))
            assert len(takes) >= 2, f"{lang}/{char}: more than one take"
            for take in takes:
                with wave.open(str(take)) as clip:
                    assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 1, 8000)
                    assert 0.1 < clip.getnframes() / 8000 < 1.5
    english_c = {take.read_bytes() for take in (captcha_audio.VOICES / "en" / "C").glob("*.wav")}
    french_c = {take.read_bytes() for take in (captcha_audio.VOICES / "fr" / "C").glob("*.wav")}
    assert not english_c & french_c, "C is 'see' in English, 'cé' in French"
    assert captcha_audio.voice_for("de") == "en", "a language without a voice gets English"


# -- the image's colours ------------------------------------------------------------------------------


def wcag_contrast(one: tuple[int, int, int], other: tuple[int, int, int]) -> float:
    """WCAG 2.x contrast ratio, computed here from the definition, not by the code under test."""

    def luminance(rgb: tuple[int, int, int]) -> float:
        r, g, b = (c / 255 for c in rgb)
        r, g, b = ((c / 12.92) if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_characters_are_drawn_at_wcag_contrast_against_their_background() -> None:
    for _ in range(500):
        background, ink = captcha.palette()
        assert min(background) >= 238, "a near-white background"
        assert wcag_contrast(ink, background) >= 4.5, (ink, background)
    # A yellow on near-white, as some images had, is what is refused.
    assert wcag_contrast((200, 200, 10), (245, 245, 245)) < 4.5


def test_the_image_is_the_characters_in_a_dark_ink_on_a_light_background(app: Flask) -> None:
    visitor = Visitor(app)
    visitor.get("/forgot")
    for _ in range(5):
        picture = Image.open(io.BytesIO(visitor.get("/captcha/image.png").data)).convert("RGB")
        assert picture.size == (280, 90)
        raw = picture.tobytes()
        colours = Counter(tuple(raw[i : i + 3]) for i in range(0, len(raw), 3))
        background, _ = colours.most_common(1)[0]
        darkest = max(colours, key=lambda colour: wcag_contrast(colour, background))  # type: ignore[arg-type]
        assert wcag_contrast(darkest, background) >= 4.5  # type: ignore[arg-type]
