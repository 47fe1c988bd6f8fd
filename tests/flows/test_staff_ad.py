"""The staff console on Active Directory (a real Samba DC): the same sign-in, second factor and grants."""

from __future__ import annotations

from flask import Flask

from lab import SeedAccount
from lab.samba import SambaDC
from sspm.policy.roles import Grant, Role
from tests.flows.test_console_roles import grant_post, grants_of
from tests.flows.test_staff_signin import ST_MARY, enroll, give_password, make_staff
from tests.support.flows import AppFactory, Visitor


def test_on_active_directory_a_super_admin_signs_in_with_a_code_and_makes_a_colleague_helpdesk(
    build_app: AppFactory, samba_dc: SambaDC, accounts: dict[str, SeedAccount]
) -> None:
    app: Flask = build_app(samba_dc)
    john, laura = accounts["normal"], accounts["other"]
    make_staff(app, john, "super-admin", None)
    boss = Visitor(app)

    assert give_password(boss, john.uid, john.password).headers["Location"].endswith("/staff/totp")
    _, codes, shown = enroll(boss)
    assert shown.status_code == 200 and len(codes) == 10
    assert 'href="/staff/roles"' in boss.get("/staff/").get_data(as_text=True)

    given = grant_post(boss, laura.uid, "helpdesk", ST_MARY)

    assert given.status_code == 303, given.status
    assert grants_of(app, laura.uid) == {Grant(Role.HELPDESK, ST_MARY)}
    agent = Visitor(app)
    assert give_password(agent, laura.mail or laura.uid, laura.password).headers["Location"].endswith("/staff/totp")
    enroll(agent)
    home = agent.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/helpdesk"' in home and 'href="/staff/roles"' not in home
