"""Who acted and on whose account are two facts the audit trail keeps apart.

"jsmith changed her own password" and "helpdesk agent X reset jsmith's
password" touch the same account; only the actor tells them apart. The use
cases are plain functions told who acts (an ``Actor``), so they are called
here directly, on the real directory, store and Redis, with no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from lab import SeedAccount
from sspm.account import audit, tokens
from sspm.account.aftermath import after_password_set
from sspm.change.service import change_password
from sspm.email import service as email_service
from sspm.email.jobs import RESET_PURPOSE
from sspm.infra import jobs
from sspm.infra.services import Services, build
from sspm.infra.settings import Settings
from sspm.infra.store import AccountPreference, AuditEvent
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.passwords import Rules
from tests.support import Backing

NEW_PASSWORD = "Orchard-Kettle-Lantern-58"
HOME = "203.0.113.7"
DESK = "198.51.100.4"


@pytest.fixture
def the(settings: Settings) -> Iterator[Services]:
    """The services a job or a test builds without Flask: the same ones the app uses."""
    services = build(settings)
    yield services
    services.close()


def rules_of(the: Services) -> Rules:
    return Rules.from_policy(the.directory.policy(), the.settings.min_strength)


def rows(the: Services, action: str) -> list[AuditEvent]:
    with the.store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_a_user_changing_her_own_password_is_both_the_actor_and_the_subject(
    the: Services, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    account = the.directory.find_account(john.uid)
    assert account is not None
    herself = Actor.user(account.id, HOME, "fr")

    result = change_password(
        the.directory,
        the.store,
        rules_of(the),
        state=the.state,
        username=john.uid,
        old=john.password,
        new=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
        actor=herself,
        outbox=the.outbox,
    )

    assert result.ok
    for action in ("change", "sessions_ended"):
        [row] = rows(the, action)
        assert (row.actor_kind, row.actor_id, row.actor_role, row.source_ip) == ("user", account.id, None, HOME)
        assert (row.account_id, row.subject) == (account.id, john.uid)


def test_an_anonymous_visitor_changing_a_password_is_not_taken_for_its_owner(
    the: Services, accounts: dict[str, SeedAccount]
) -> None:
    """Nobody signed in: the trail says who the password was proven for, and that the actor was not known."""
    john = accounts["normal"]

    result = change_password(
        the.directory,
        the.store,
        rules_of(the),
        state=the.state,
        username=john.uid,
        old=john.password,
        new=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
        actor=Actor.anonymous(HOME, "en"),
        outbox=the.outbox,
    )

    assert result.ok and result.account is not None
    [row] = rows(the, "change")
    assert (row.actor_kind, row.actor_id, row.source_ip) == ("anonymous", None, HOME)
    assert (row.account_id, row.subject) == (result.account.id, john.uid)


def test_a_reset_done_by_staff_names_the_staff_member_apart_from_the_account(
    the: Services, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    account = the.directory.find_account(john.uid)
    assert account is not None
    agent = Actor(ActorKind.STAFF, id="helpdesk-7", role="helpdesk", client_address=DESK, language="en")
    token = tokens.issue(the.store, account.id, RESET_PURPOSE, timedelta(minutes=30))
    handle = email_service.open_link(the.store, the.state, token)
    assert handle is not None

    result = email_service.reset_with_link(
        the.directory,
        the.store,
        the.outbox,
        rules_of(the),
        state=the.state,
        handle=handle,
        new=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
        actor=agent,
        clock_skew=timedelta(seconds=the.settings.clock_skew_seconds),
    )

    assert result.reason is None
    for action in ("reset_by_email", "sessions_ended"):
        [row] = rows(the, action)
        assert (row.actor_kind, row.actor_id, row.actor_role, row.source_ip) == (
            "staff",
            "helpdesk-7",
            "helpdesk",
            DESK,
        )
        assert (row.account_id, row.subject) == (account.id, john.uid)
    verdict = the.directory.verify_password(john.uid, NEW_PASSWORD)[1]
    assert verdict.password_proven, "the reset really happened in the directory"


def test_when_staff_reset_a_password_its_owner_is_told_in_their_own_language(
    the: Services, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    """Self-service speaks the visitor's language; an English-speaking agent's reset reaches a
    French-speaking owner in French (the language of their last email)."""
    john = accounts["normal"]
    account = the.directory.find_account(john.uid)
    assert account is not None
    with the.store.session() as session:
        session.add(AccountPreference(account_id=account.id, language="fr"))
    agent = Actor(ActorKind.STAFF, id="helpdesk-7", role="helpdesk", client_address=DESK, language="en")

    after_password_set(
        the.store, the.state, the.outbox, account, done=audit.Action.HELPDESK_RESET, event="password_reset", actor=agent
    )
    SimpleWorker([jobs.EMAIL], connection=the.state.redis).work(burst=True)

    [message] = [m for m in backing.mailbox.messages if m["To"] == john.mail]
    assert message["Subject"] == the.mail_templates.gettext("fr", "Your password was reset")
    assert message["Subject"] != "Your password was reset"
