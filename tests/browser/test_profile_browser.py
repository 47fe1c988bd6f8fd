"""The profile in a real Chromium, keyboard only: a new login email, then a new mobile number.

John signs in, opens his profile, asks for a new login email (his password
again), and the worker sends the link to the new address; he opens it in the
same browser and confirms. Then he types a new mobile number, first one that
cannot get a text (refused at its field), then his own; the code lands in
the SMS catcher's folder, which the test reads as his phone would, and he
types it. English on a 1280 px desktop at /, French on a 360 px phone at /m;
axe-core checks every page on the way, refusals included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lab import SeedAccount
from lab.sms import read_messages
from sspm.policy.reasons import Reason
from tests.browser.test_email_browser import EMAIL_ENV, assert_accessible, press_enter_and_wait, send_queued_email
from tests.support import Backing
from tests.support.browser import LiveServer, directory_of, refusal, say, tab_until

pytestmark = pytest.mark.browser

NEW_ADDRESS = "john.new@partners.example"
ENTRIES = [
    pytest.param("en", "desktop", "", id="en-1280"),
    pytest.param("fr", "phone", "/m", id="fr-360-m"),
]
_VERIFY = re.compile(r"http://127\.0\.0\.1:\d+/profile/email/verify\?token=[A-Za-z0-9_-]+")


def type_into(page: Page, selector: str, text: str) -> None:
    tab_until(page, selector)
    page.keyboard.type(text)


def contacts(server: LiveServer, login: str) -> tuple[str | None, str | None]:
    with directory_of(server) as directory:
        account = directory.find_account(login)
        assert account is not None
        found = directory.account_details(account.id)
    assert found is not None
    return found.email, found.mobile


@pytest.mark.parametrize(("lang", "device", "entry"), ENTRIES)
def test_a_user_changes_the_login_email_then_the_mobile_number_by_keyboard(
    serve: Callable[..., LiveServer],
    open_page: Callable[..., Page],
    accounts: dict[str, SeedAccount],
    backing: Backing,
    tmp_path: Path,
    lang: str,
    device: str,
    entry: str,
) -> None:
    john = accounts["normal"]
    sms_dir = tmp_path / "sms"
    server = serve(SSPM_SMS_DIR=str(sms_dir), **EMAIL_ENV)
    page = open_page(server, device=device, lang=lang)

    page.goto(f"{entry}/signin")
    type_into(page, "#username", john.uid)
    type_into(page, "#password", john.password)
    press_enter_and_wait(page)
    page.goto(f"{entry}/profile")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Your profile"))
    expect(page.locator("#login-email")).to_have_text(john.mail or "")
    assert_accessible(page, device)

    # A new login email: the form, once sent empty, then filled in.
    tab_until(page, f'a[href="{entry}/profile/email"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Change your login email"))
    assert_accessible(page, device)
    tab_until(page, "#email")
    assert press_enter_and_wait(page) == 422
    assert_accessible(page, device)
    type_into(page, "#email", NEW_ADDRESS)
    type_into(page, "#password", john.password)
    assert press_enter_and_wait(page) == 200
    expect(page).to_have_url(f"{server.url}{entry}/profile")
    expect(page.locator("#email-waiting")).to_contain_text(NEW_ADDRESS)
    assert_accessible(page, device)
    assert contacts(server, john.uid)[0] == john.mail, "nothing changes before the link is used"

    # The link, from the new address's mailbox, in the same browser: a page first, the change on the button.
    send_queued_email(server)
    (message,) = [m for m in backing.mailbox.messages if m["To"] == NEW_ADDRESS]
    text = message.get_body(("plain",))
    assert text is not None
    (link,) = set(_VERIFY.findall(str(text.get_content())))
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Confirm your new login email"))
    assert "token=" not in page.url
    assert_accessible(page, device)
    tab_until(page, "main form button[type=submit]")
    assert press_enter_and_wait(page) == 200
    expect(page.locator("#login-email")).to_have_text(NEW_ADDRESS)
    assert contacts(server, john.uid)[0] == NEW_ADDRESS
    # The emailed link knows no entry: back to the one this story is told on.
    page.goto(f"{entry}/profile")

    # A new mobile number: a landline first (refused at its field), then his mobile.
    tab_until(page, f'a[href="{entry}/profile/phone"]')
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Change your mobile number"))
    assert_accessible(page, device)
    type_into(page, "#phone", "+33 1 23 45 67 89")
    type_into(page, "#password", john.password)
    assert press_enter_and_wait(page) == 422
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#phone-error")).to_have_text(refusal(server, lang, Reason.PHONE_NOT_MOBILE))
    assert_accessible(page, device)
    assert read_messages(sms_dir) == []
    page.locator("#phone").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("613 555 0123")
    type_into(page, "#password", john.password)
    assert press_enter_and_wait(page) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(say(server, lang, "Type the code we texted you"))
    assert_accessible(page, device)
    (sms,) = read_messages(sms_dir)
    assert sms.to == "+16135550123"
    found = re.search(r"\b(\d{6})\b", sms.text)
    assert found
    type_into(page, "#code", found.group(1))
    assert press_enter_and_wait(page) == 200
    expect(page.locator("#mobile")).to_have_text("+16135550123")
    assert_accessible(page, device)
    assert contacts(server, john.uid)[1] == "+16135550123"

    # Signing out, from the profile.
    tab_until(page, ".signout button")
    press_enter_and_wait(page)
    page.goto(f"{entry}/profile")
    expect(page).to_have_url(re.compile(rf"{re.escape(server.url)}{entry}/signin\?"))
