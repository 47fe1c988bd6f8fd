"""A password changed outside SSPM voids the links sent before, even when
the directory's clock and its one-second stamps cannot tell which came first.

slapd stamps a change (pwdChangedTime) in whole seconds, by its own clock:
a change stamped 12:00:00 happened somewhere in [12:00:00, 12:00:01), on a
clock up to SSPM_CLOCK_SKEW_SECONDS from SSPM's. A link issued inside that
doubt is void; the user asks for another. The rule is tested on its
boundaries, then once for real: a link issued, the password reset in
slapd, and the link's issue put in the very second slapd stamped the
change (and just past the doubt, where the link must still work).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from sspm.account.tokens import outdated
from sspm.infra.store import ResetToken
from tests.flows.test_email import (
    EMAIL_ENV,
    is_link_gone,
    one_link_for,
    open_link,
    set_password_by_link,
    verdict,
)
from tests.support import Backing, services_of
from tests.support.flows import NEW_PASSWORD, AppFactory, Visitor

STAMP = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)
JUST = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("issued", "skew", "void"),
    [
        pytest.param(STAMP - timedelta(seconds=5), 0, True, id="issued before the change"),
        pytest.param(STAMP, 0, True, id="issued at the stamp"),
        pytest.param(STAMP + timedelta(seconds=1) - JUST, 0, True, id="issued later in the same second"),
        pytest.param(STAMP + timedelta(seconds=1), 0, False, id="issued the next second, clocks in sync"),
        pytest.param(STAMP + timedelta(seconds=3) - JUST, 2, True, id="within a 2 s skew"),
        pytest.param(STAMP + timedelta(seconds=3), 2, False, id="just past a 2 s skew"),
    ],
)
def test_a_link_survives_a_change_only_if_surely_issued_after_it(issued: datetime, skew: int, void: bool) -> None:
    assert outdated(issued, STAMP, timedelta(seconds=skew)) is void


def test_a_link_is_not_outdated_by_a_password_never_changed() -> None:
    assert not outdated(STAMP, None, timedelta(seconds=2))


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    return build_app(slapd, **EMAIL_ENV)


def issued_at(app: Flask, moment: datetime) -> None:
    """Put the one link's issue at ``moment`` (its lifetime moves with it)."""
    with services_of(app).store.session() as session:
        (row,) = session.scalars(select(ResetToken))
        lifetime = row.expires_at - row.created_at
        row.created_at, row.expires_at = moment, moment + lifetime


@pytest.mark.parametrize(
    ("after_stamp", "gone"),
    [
        pytest.param(timedelta(milliseconds=500), True, id="same second as the change"),
        pytest.param(timedelta(milliseconds=2500), True, id="within the default 2 s skew"),
        pytest.param(timedelta(seconds=3), False, id="clearly after: the link works"),
    ],
)
def test_a_reset_in_the_directory_in_the_links_own_second_voids_it(
    app: Flask,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    after_stamp: timedelta,
    gone: bool,
) -> None:
    john = accounts["normal"]
    link = one_link_for(app, Visitor(app), backing.mailbox, john)
    account = directory.find_account(john.uid)
    assert account is not None
    # An administrator resets the password in the directory, outside SSPM.
    assert directory.reset_password(account, NEW_PASSWORD, must_change=False) is Outcome.OK
    stamp = directory.status(account).password_changed_at
    assert stamp is not None and stamp.microsecond == 0, "slapd stamps whole seconds"

    # The link's issue, as SSPM's clock saw it, falls that long after slapd's stamp.
    issued_at(app, stamp + after_stamp)

    visitor = Visitor(app)
    page = open_link(visitor, link)
    if gone:
        assert is_link_gone(app, page)
        assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
    else:
        assert page.status_code == 200
        assert set_password_by_link(visitor, "Another-Quarry-Violet-17").status_code == 303
        assert verdict(directory, john.uid, "Another-Quarry-Violet-17") is Outcome.OK
