"""Record the spoken characters of the audio CAPTCHA, in every page language.

    scripts/captcha_voices     (needs Debian's espeak-ng: apt-get install espeak-ng)

The audio CAPTCHA says each character in the language of the page, so a French
reader hears "cé, hache, sept" rather than English letter names. espeak-ng
speaks each character of the CAPTCHA alphabet in two voices per language; each
take is trimmed of its silences, normalised to one loudness and stored as the
8 kHz 8-bit mono WAV the audio CAPTCHA mixes (``static/captcha-voices/<lang>/
<CHAR>/<voice>.wav``, a few kB each). The files are committed, so a fresh
machine needs neither espeak-ng nor this script; run it again only after
changing the alphabet, the languages or the voices.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import wave
from array import array
from pathlib import Path

from PIL import Image

from sspm.recovery.captcha import ALPHABET
from sspm.recovery.captcha_audio import RATE, VOICES

#: espeak-ng voice per language: its default (male) voice and a female variant.
ESPEAK_VOICES = {"en": ("en-us", "en-us+f3"), "fr": ("fr", "fr+f3")}
#: Below this (of 32767) a sample counts as silence when trimming.
SILENCE = 600
#: Loudest sample of every take, around the 8-bit mid-point 128.
PEAK = 100


def speak(voice: str, char: str) -> tuple[list[float], int]:
    """espeak-ng's recording of ``char`` alone (it says the letter's name), as floats and its rate."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "130", "--stdout", char], check=True, capture_output=True, timeout=30
    )
    with wave.open(io.BytesIO(done.stdout)) as take:
        assert take.getsampwidth() == 2 and take.getnchannels() == 1, "espeak-ng writes 16-bit mono"
        frames = take.readframes(take.getnframes())
        rate = take.getframerate()
    samples = memoryview(frames).cast("h").tolist()
    loud = [i for i, sample in enumerate(samples) if abs(sample) > SILENCE]
    return [float(s) for s in samples[loud[0] : loud[-1] + 1]], rate


def to_8bit(samples: list[float], rate: int) -> bytes:
    """Resampled to RATE with a real low-pass (Pillow's Lanczos on a 1-pixel-high float image), then 8-bit."""
    signal = Image.frombytes("F", (len(samples), 1), array("f", samples).tobytes())
    width = max(1, round(len(samples) * RATE / rate))
    resampled = array("f", signal.resize((width, 1), Image.Resampling.LANCZOS).tobytes())
    scale = PEAK / max(1.0, max(abs(s) for s in resampled))
    return bytes(max(0, min(255, round(128 + s * scale))) for s in resampled)


def write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(RATE)
        out.writeframes(body)


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("captcha_voices: espeak-ng is not installed (apt-get install espeak-ng)")
    for lang, voices in ESPEAK_VOICES.items():
        shutil.rmtree(VOICES / lang, ignore_errors=True)
        for char in ALPHABET:
            for number, voice in enumerate(voices, 1):
                write(VOICES / lang / char / f"{number}.wav", to_8bit(*speak(voice, char)))
    files = list(VOICES.rglob("*.wav"))
    print(f"captcha_voices: {len(files)} files, {sum(f.stat().st_size for f in files) // 1024} kB in {VOICES}")


if __name__ == "__main__":
    main()
