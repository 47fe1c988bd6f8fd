"""What a newcomer found with a phone-sized Chromium that the suite's own checks could not see.

The staff Roles page scrolled sideways at 360 px: the hidden words that
make each "Take back" link say which role it takes back are positioned
absolutely, and the table's scrolling box was not their containing block,
so they stuck out past the phone's edge. The suite's phone check missed it
because mobile Chromium widens its layout viewport to fit what sticks out:
``window.innerWidth`` grew with the page, and "content no wider than
innerWidth" held on every page, however wide.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.support.browser import LiveServer, assert_no_horizontal_scroll

pytestmark = pytest.mark.browser


def test_the_phone_check_sees_a_page_wider_than_the_phone(
    live_server: LiveServer, open_page: Callable[..., Page]
) -> None:
    """A page with one element wider than 360 px must fail the check, not widen the viewport to pass it."""
    page = open_page(live_server, device="phone")
    page.goto("/")
    assert_no_horizontal_scroll(page)
    page.evaluate("""() => {
        const wide = document.createElement("div");
        wide.style.width = "600px";
        wide.textContent = "wider than a phone";
        document.querySelector("main").append(wide);
    }""")

    with pytest.raises(AssertionError, match="scrolls sideways"):
        assert_no_horizontal_scroll(page)
