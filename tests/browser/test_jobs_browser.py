"""The Jobs page in a real Chromium, keyboard only, EN at 1280 px and FR at 360 px: a Super Admin signs in,
goes to Jobs from the console's navigation, and finds the failed run said in words; axe-core finds nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lab import Pki, Slapd
from sspm.infra.store import JobRun, utcnow
from tests.browser.test_console_browser import SCREENS, enrolled_super_admin
from tests.browser.test_staff_signin_browser import assert_accessible, press_enter_and_wait, type_into
from tests.flows.test_console_roles import PEOPLE, start_staff_slapd
from tests.flows.test_staff_signin import fresh_code
from tests.support import services_of
from tests.support.browser import LiveServer, say, tab_until

pytestmark = pytest.mark.browser


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.mark.parametrize(("lang", "device"), SCREENS)
def test_a_super_admin_finds_the_failed_job_by_keyboard(
    live_server: LiveServer, open_page: Callable[..., Page], lang: str, device: str
) -> None:
    server = live_server
    secret = enrolled_super_admin(server)
    now = utcnow()
    with services_of(server.app).store.session() as session:
        for minutes, name, outcome in (
            (90, "sspm.account.cleanup.clean_up", "purged 3 tokens, 0 email events, 12 job runs"),
            (30, "sspm.email.jobs.send_batch", "failed: SMTPServerDisconnected"),
            (5, "sspm.email.jobs.send_reset_link", "sent"),
        ):
            queue = "housekeeping" if "cleanup" in name else "email"
            started = now - timedelta(minutes=minutes)
            session.add(JobRun(name=name, queue=queue, started_at=started, duration_ms=41.25, outcome=outcome))
    page = open_page(server, device=device, lang=lang)

    page.goto("/staff/signin")
    super1 = PEOPLE["super1"]
    type_into(page, "#username", super1.uid)
    type_into(page, "#password", super1.password)
    assert press_enter_and_wait(page) == 200
    type_into(page, "#code", fresh_code(secret))
    assert press_enter_and_wait(page) == 200

    tab_until(page, 'nav.staff-nav a[href="/staff/jobs"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Jobs"))
    expect(page.locator("#failing")).to_contain_text("send_batch")
    failed = page.locator('tr[data-job="send_batch"]')
    expect(failed).to_have_class("failed")
    expect(failed).to_contain_text(say(server, lang, "Failed"))
    expect(page.locator('tr[data-job="clean_up"]')).to_contain_text("purged 3 tokens")
    assert_accessible(page, device)
