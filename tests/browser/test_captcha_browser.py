"""The CAPTCHA as people meet it in a browser: a French reader hears French, and every image is readable."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis
from PIL import Image
from playwright.sync_api import Page

from tests.support.browser import LiveServer, browser_session, tab_until


def wcag_contrast(one: tuple[int, ...], other: tuple[int, ...]) -> float:
    """WCAG 2.x contrast ratio, from its definition."""

    def luminance(rgb: tuple[int, ...]) -> float:
        r, g, b = ((c / 255 / 12.92) if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_a_french_reader_hears_the_characters_in_french(
    live_server: LiveServer, open_page: Callable[..., Page]
) -> None:
    page = open_page(live_server, lang="fr")
    page.goto("/forgot")
    tab_until(page, 'a[download="characters.wav"]')

    with page.expect_download() as download:
        page.keyboard.press("Enter")

    heard = Path(download.value.path()).read_bytes()
    assert heard[:4] == b"RIFF"
    # The clip the browser got is the one the server made for this CAPTCHA, in the French voice.
    captcha_id = browser_session(page, live_server)["captcha"]
    kept = redis.Redis.from_url(live_server.settings.redis_url).get(f"sspm:captcha-audio:{captcha_id}")
    assert kept is not None
    assert json.loads(kept)["lang"] == "fr"


def test_every_image_shows_its_characters_in_a_readable_ink(
    live_server: LiveServer, open_page: Callable[..., Page]
) -> None:
    page = open_page(live_server)
    page.goto("/forgot")
    for _ in range(6):
        image = page.locator(".captcha img")
        assert image.evaluate("img => img.complete && img.naturalWidth") == 280
        shown = Image.open(io.BytesIO(image.screenshot())).convert("RGB")
        raw = shown.tobytes()
        colours = Counter(tuple(raw[i : i + 3]) for i in range(0, len(raw), 3))
        background, _ = colours.most_common(1)[0]
        darkest = max(colours, key=lambda colour: wcag_contrast(colour, background))
        assert wcag_contrast(darkest, background) >= 4.5, (darkest, background)
        page.locator('button[value="new-image"]').click()
        page.wait_for_load_state()
