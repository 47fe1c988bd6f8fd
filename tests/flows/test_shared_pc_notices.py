"""What a nurse on a shared ward PC is told, and what is kept out of sight.

Signing out says so. A password about to expire is announced right after
sign-in, with the way to change it, on OpenLDAP and on Active Directory
alike (each directory warns in its own way; the connectors turn both into
a number of seconds). Security answers are typed masked. The reset-email
page says where the link goes without saying whether the account exists.
And the home page's change form is Change Password's own: same CSRF, same
answers.
"""

from __future__ import annotations

import re

from flask import Flask
from flask_babel import ngettext

from lab import SeedAccount, Slapd
from lab.samba import SambaDC
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    any_csrf_token,
    csrf_token,
    says,
    seed_enrolled,
    sign_in,
    start,
    text_in,
    without_token,
)

SIGNED_OUT = "You are signed out. On a shared computer, close the browser when you are done."
ON_FILE = "the email address your organization has on file"
_INPUT = re.compile(r"<input [^>]*>")


def inputs_named(body: str, prefix: str) -> list[str]:
    return [tag for tag in _INPUT.findall(body) if f'name="{prefix}' in tag]


def expires_in(app: Flask, days: int, lang: str = "en") -> str:
    with app.test_request_context(f"/?lang={lang}"):
        return str(ngettext("Your password expires in %(num)d day.", "Your password expires in %(num)d days.", days))


def test_signing_out_says_so_once(visitor: Visitor, accounts: dict[str, SeedAccount]) -> None:
    john = accounts["normal"]
    assert sign_in(visitor, john.uid, john.password).status_code == 303
    page = visitor.get("/enroll")

    out = visitor.post("/signout", {"csrf_token": any_csrf_token(page.get_data(as_text=True))})
    home = visitor.follow(out)

    assert home.status_code == 200
    assert says(home, text_in(visitor.app, SIGNED_OUT))
    assert 'role="status"' in home.get_data(as_text=True)
    assert not says(visitor.get("/"), text_in(visitor.app, SIGNED_OUT)), "said once, not on every visit"


def test_a_password_about_to_expire_is_announced_at_sign_in_on_both_directories(
    build_app: AppFactory, slapd: Slapd, samba_dc: SambaDC, accounts: dict[str, SeedAccount]
) -> None:
    alice = accounts["expiring"]  # seeded to expire in 5 days, inside both directories' warning
    for app in (build_app(slapd), build_app(samba_dc)):
        visitor = Visitor(app)
        landed = visitor.follow(sign_in(visitor, alice.uid, alice.password))

        assert landed.status_code == 200
        assert says(landed, expires_in(app, 5)), app.config["SSPM_SETTINGS"].directory_kind
        assert f'href="/change">{text_in(app, "Change your password now")}</a>' in landed.get_data(as_text=True)
        # The link leads to the form with her user name already in it.
        (username,) = inputs_named(visitor.get("/change").get_data(as_text=True), "username")
        assert f'value="{alice.uid}"' in username
        # Told once: the next page does not repeat it.
        assert not says(visitor.get("/enroll"), expires_in(app, 5))

    in_french = Visitor(app)
    in_french.get("/signin?lang=fr")
    landed = in_french.follow(sign_in(in_french, alice.uid, alice.password))
    assert says(landed, "Votre mot de passe expire dans 5 jours.")


def test_a_password_far_from_expiring_is_not_announced(
    build_app: AppFactory, slapd: Slapd, samba_dc: SambaDC, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    for app in (build_app(slapd), build_app(samba_dc)):
        visitor = Visitor(app)
        landed = visitor.follow(sign_in(visitor, john.uid, john.password))
        assert landed.status_code == 200
        assert "expires in" not in landed.get_data(as_text=True)


def test_security_answers_are_typed_masked_when_enrolling_and_when_answering(
    app: Flask, visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    laura = accounts["other"]
    assert sign_in(visitor, laura.uid, laura.password).status_code == 303
    enrolling = visitor.get("/enroll/edit").get_data(as_text=True)
    answers = inputs_named(enrolling, "answer_")
    assert len(answers) == 3
    assert all('type="password"' in tag for tag in answers), answers

    seed_enrolled(app, laura)
    other = Visitor(app)
    assert start(other, "forgot", laura.uid).status_code == 303
    challenge = other.get("/recovery/challenge").get_data(as_text=True)
    answers = inputs_named(challenge, "answer_")
    assert answers and all('type="password"' in tag for tag in answers), answers


def test_the_reset_email_page_says_where_the_link_goes_the_same_for_anyone(
    app: Flask, accounts: dict[str, SeedAccount]
) -> None:
    on_file = text_in(app, ON_FILE)
    assert on_file in Visitor(app).get("/forgot/email").get_data(as_text=True)

    pages = []
    for typed in (accounts["normal"].uid, "nobody-at-all", accounts["disabled"].uid):
        visitor = Visitor(app)
        sent = visitor.submit("/forgot/email", {"username": typed})
        assert sent.status_code == 200
        pages.append(without_token(sent.get_data(as_text=True)))
    assert on_file in pages[0]
    assert pages[0] == pages[1] == pages[2], "whether the account exists must not show"
    assert "@" not in pages[0].split("<main", 1)[1].split("</main>", 1)[0], "no address, not even a masked one"


def test_the_home_page_form_is_change_passwords_own(
    app: Flask, visitor: Visitor, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    home = visitor.get("/").get_data(as_text=True)
    assert '<form method="post" action="/change"' in home
    fields = {"username": john.uid, "current": john.password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}

    forged = visitor.post("/change", fields)
    assert forged.status_code == 400, "no CSRF token, no change"

    done = visitor.post("/change", {**fields, "csrf_token": csrf_token(home)})
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/change/done")

    phone = visitor.get("/m").get_data(as_text=True)
    assert '<form method="post" action="/m/change"' in phone
