"""A user who never set up security questions learns it up front, and is offered the email link (issue 9, item 13).

Before, such a user met a CAPTCHA, a five-minute countdown and two
questions they could not answer, and was then sent to the Registration
Authority, never to the reset link that works without questions. Now every
page that offers the questions says, before anything is typed, that they
work only for those who set them up, with the email link beside them; the
refusal after wrong answers says it too. Nothing of this depends on who
the user is, so it tells nobody who enrolled: the refusal is the same page
for an enrolled user, an unenrolled one and a name that does not exist.
"""

from __future__ import annotations

import pytest
from flask import Flask

from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from tests.support.flows import (
    AppFactory,
    Visitor,
    recover,
    says_reason,
    seed_enrolled,
    sentence,
    text_in,
    without_echo,
)

ONLY_IF_SET_UP = (
    "Security questions work only if you set them up beforehand. "
    "If you did not, a reset link sent by email works without them."
)
ALSO_UNLOCKS = "Choosing a new password that way also unlocks your account."
EMAIL_LINK = "Get a reset link by email"


def offers_the_email_link(app: Flask, body: str, lang: str, entry: str) -> bool:
    link = f'<a href="{entry}/forgot/email">{text_in(app, EMAIL_LINK, lang)}</a>'
    return text_in(app, ONLY_IF_SET_UP, lang) in body and link in body


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("entry", ["", "/m"])
def test_home_forgot_and_unlock_say_it_before_anything_is_typed(app: Flask, lang: str, entry: str) -> None:
    visitor = Visitor(app)
    for path, unlocks in ((entry or "/", True), (f"{entry}/forgot", False), (f"{entry}/unlock", True)):
        page = visitor.get(f"{path}?lang={lang}")
        body = page.get_data(as_text=True)

        assert page.status_code == 200, path
        assert offers_the_email_link(app, body, lang, entry), path
        # A reset by link ends a lockout too: said where unlocking is offered.
        assert (text_in(app, ALSO_UNLOCKS, lang) in body) is unlocks, path


def test_the_sign_in_page_offers_the_email_link_beside_the_questions(app: Flask) -> None:
    body = Visitor(app).get("/signin").get_data(as_text=True)
    assert '<a href="/forgot/email">Get a reset link by email</a>' in body


@pytest.mark.parametrize("purpose", ["forgot", "unlock"])
def test_after_wrong_answers_everyone_is_offered_the_email_link_alike(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], purpose: str
) -> None:
    app = build_app(slapd)
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, john)
    refusals = {}
    for who, login, answers in (
        ("enrolled, wrong answers", john.uid, {}),
        ("never enrolled", laura.uid, DEMO_ANSWERS),
        ("no such account", "nosuchuser", DEMO_ANSWERS),
    ):
        refused = recover(Visitor(app), purpose, login, answers)
        body = refused.get_data(as_text=True)

        assert refused.status_code == 422, who
        assert says_reason(body, app, "answers_refused"), who
        assert "get a reset link by email instead" in sentence(app, "answers_refused"), who
        assert offers_the_email_link(app, body, "en", ""), who
        refusals[who] = without_echo(body, john.uid, laura.uid, "nosuchuser")

    assert len(set(refusals.values())) == 1, "the refusal must not tell who enrolled"
