"""The audio version of a CAPTCHA: spoken in the page's language, made cheaply, away from the page threads.

captcha's own AudioCaptcha builds a clip one sample at a time in Python
(one ``secrets.randbelow`` per sample of white noise), about 0.3 to 1 s of
CPU per clip, inside the request thread: sixteen clients fetching clips in
a loop took every thread of a 2-core host and the home page went from 9 ms
to seconds. Here the same recipe runs on whole clips in Pillow's C code
(a 1-pixel-high "L" image is an 8-bit unsigned signal, which is what an
8 kHz 8-bit WAV holds), and in a separate process per app process, at the
lowest CPU priority and one clip at a time: a request that finds that
process busy is told to try again instead of queueing. The caller
(captcha.py) keeps each clip so a CAPTCHA is spoken at most once.

The recipe is captcha's, kept for what it does against a recogniser: each
character from one of several takes, at a random speed (which also moves
its pitch) and loudness, after a random pause, over white noise and a
continuous "babble" of other characters' takes played backwards, so the
clip cannot be cut at its silences or matched against clean takes.
"""

from __future__ import annotations

import functools
import os
import secrets
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from captcha.audio import BEEP, END_BEEP, SILENCE, AudioCaptcha
from PIL import Image, ImageChops

# Nothing from sspm: the helper process runs this file alone (see _Speaker).

#: Samples per second of the takes and of the clip (captcha's WAV header says 8 kHz, 8-bit, mono).
RATE = 8000
#: One folder per language, one folder per character in it, one WAV per take (lab/captcha_voices.py).
VOICES = Path(__file__).resolve().parents[2] / "static" / "captcha-voices"
DEFAULT_LANGUAGE = "en"
#: The longest a request waits for its clip (a clip takes milliseconds; this covers a
#: helper starting on a loaded host, where it runs last). Past it the helper is replaced.
WAIT_SECONDS = 15.0
#: Pause before each character: 0.5 to 1.5 s (captcha's own 1 to 3 s made a 6-character clip last ~15 s).
PAUSE_MIN, PAUSE_SPAN = RATE // 2, RATE
#: White noise: captcha's level, ±2 around the mid-point.
_WHITE = [128 - 2 + value % 4 for value in range(256)]


def _signal(body: bytes | bytearray) -> Image.Image:
    return Image.frombytes("L", (len(body), 1), bytes(body))


def _speed(sound: Image.Image, factor: float) -> Image.Image:
    """Stretched by ``factor`` (slower and lower when above 1), as captcha's change_speed."""
    return sound.resize((max(1, round(sound.width * factor)), 1), Image.Resampling.BILINEAR)


def _louder(sound: Image.Image, level: float) -> Image.Image:
    """Scaled around the mid-point, as captcha's change_sound."""
    return sound.point([max(0, min(255, round(128 + (value - 128) * level))) for value in range(256)])


def _mix(bed: Image.Image, sound: Image.Image, at: int) -> None:
    """Add ``sound`` into ``bed`` from sample ``at`` (both centred on 128; clipped at the ends of the range)."""
    width = min(sound.width, bed.width - at)
    if width <= 0:
        return
    box = (at, 0, at + width, 1)
    bed.paste(ImageChops.add(bed.crop(box), sound.crop((0, 0, width, 1)), scale=1.0, offset=-128), box)


def _fraction(low: int, high: int) -> float:
    """A random hundredth in [low, high] / 100, as captcha draws its speeds and levels."""
    return (low + secrets.randbelow(high - low + 1)) / 100


class SpokenCaptcha(AudioCaptcha):
    """captcha's AudioCaptcha, reading takes from ``voicedir``, with its sample loops done by Pillow."""

    def __init__(self, voicedir: Path) -> None:
        super().__init__(voicedir=str(voicedir))
        self.load()
        self._takes = {char: [_signal(take) for take in takes] for char, takes in self._cache.items()}

    def _say(self, char: str) -> Image.Image:
        take = secrets.choice(self._takes[char])
        return _louder(_speed(take, _fraction(90, 120)), _fraction(80, 120))

    def create_background_noise(self, length: int, chars: str) -> bytearray:
        return bytearray(self._bed(length).tobytes())

    def _bed(self, length: int) -> Image.Image:
        bed = _signal(os.urandom(length)).point(_WHITE)
        at = 0
        while at < length:
            take = secrets.choice(self._takes[secrets.choice(self.choices)])
            backwards = take.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            babble = _louder(_speed(backwards, _fraction(80, 160)), _fraction(20, 60))
            _mix(bed, babble, at)
            at += babble.width + 1 + secrets.randbelow(RATE // 10 + 1)
        return bed

    def create_wave_body(self, chars: str) -> bytearray:
        said = [self._say(char) for char in chars]
        pauses = [PAUSE_MIN + secrets.randbelow(PAUSE_SPAN + 1) for _ in range(len(chars) + 1)]
        bed = self._bed(sum(sound.width for sound in said) + sum(pauses))
        at = 0
        for pause, sound in zip(pauses, said, strict=False):
            at += pause
            _mix(bed, sound, at)
            at += sound.width
        return BEEP + SILENCE + BEEP + SILENCE + BEEP + bytearray(bed.tobytes()) + END_BEEP


def languages() -> tuple[str, ...]:
    return tuple(sorted(path.name for path in VOICES.iterdir() if path.is_dir()))


def voice_for(lang: str) -> str:
    """The voice for a page language: its own when recorded, else English."""
    return lang if (VOICES / lang).is_dir() else DEFAULT_LANGUAGE


@functools.cache
def _captcha(lang: str) -> SpokenCaptcha:
    return SpokenCaptcha(VOICES / lang)


def make(text: str, lang: str) -> bytes:
    """The WAV of ``text`` said in ``lang``'s voice; runs in the helper process."""
    return bytes(_captcha(voice_for(lang)).generate(text))


# -- the helper process ------------------------------------------------------------

#: The lowest CPU priority: when pages and clips compete for the CPU, pages win.
NICE = 19


def _serve() -> None:
    """The helper's loop: one request per line ("<lang> <text>"), one clip back (its length, then its bytes)."""
    os.nice(NICE)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        lang, text = line.decode("ascii").split()
        wav = make(text, lang)
        out.write(len(wav).to_bytes(4, "big") + wav)
        out.flush()


def _receive(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """Exactly ``size`` bytes from the helper, or TimeoutError / EOFError."""
    received = bytearray()
    while len(received) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(stream.fileno(), size - len(received))
        if not chunk:
            raise EOFError
        received += chunk
    return bytes(received)


class _Speaker:
    """One helper process per app process, started on first use (so each gunicorn worker has its own).

    The helper runs this file as a script: it imports Pillow and captcha,
    not the web app (about 20 MB and 50 ms, against 80 MB and 1 s for a
    multiprocessing child, which would import the whole ``sspm`` package).
    It ends when its app process does (end of its input).
    """

    def __init__(self) -> None:
        self._turn = threading.Lock()
        self._helper: subprocess.Popen[bytes] | None = None
        self._owner = 0
        self.made = 0

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    def speak(self, text: str, lang: str) -> bytes | None:
        """The clip, or None when this process is already making one (or its helper did not answer)."""
        if not self._turn.acquire(blocking=False):
            return None
        try:
            helper = self._running()
            assert helper.stdin is not None and helper.stdout is not None
            deadline = time.monotonic() + WAIT_SECONDS
            try:
                helper.stdin.write(f"{lang} {text}\n".encode("ascii"))
                helper.stdin.flush()
                wav = _receive(helper.stdout, int.from_bytes(_receive(helper.stdout, 4, deadline), "big"), deadline)
            except (OSError, TimeoutError, EOFError):
                # Stuck or gone: replaced, so the next request does not wait behind it.
                helper.kill()
                helper.wait()
                self._helper = None
                return None
            self.made += 1
            return wav
        finally:
            self._turn.release()

    def _running(self) -> subprocess.Popen[bytes]:
        # A helper inherited across a fork (gunicorn --preload) belongs to the parent.
        if self._helper is None or self._owner != os.getpid() or self._helper.poll() is not None:
            # -I: without it this file's folder comes first on sys.path, and "captcha" is sspm's.
            self._helper = subprocess.Popen(
                [sys.executable, "-I", __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
            )
            self._owner = os.getpid()
        return self._helper


_speaker = _Speaker()


def speak(text: str, lang: str) -> bytes | None:
    """The clip of ``text`` in ``lang``, made in this process's helper; None when it is busy."""
    return _speaker.speak(text, lang)


def busy() -> bool:
    """Whether this process is making a clip now (a request for another would be told to try again)."""
    return _speaker.busy


def clips_made() -> int:
    """How many clips this process has had made: what shows each CAPTCHA is spoken once."""
    return _speaker.made


if __name__ == "__main__":
    _serve()
