"""SSPM's store on SQLite and on PostgreSQL: the same stories, the same answers.

SQLite is the embedded default and PostgreSQL the production store, and
they differ where it matters to a password manager: PostgreSQL hands times
back in its own time zone (the test cluster's is Asia/Kathmandu, +05:45),
enforces string lengths, and runs two requests truly at once. Each story
here runs on both (``database_url``): the migrations, a link spent once
however many requests race for it, links that expire and are voided, one
email per event when two workers take the same job, and enrollments
replaced and then used to reset a password, and what is too long for a
column.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from connectors.directory import Outcome
from lab import SeedAccount, Slapd
from sspm.account import audit, tokens
from sspm.account.audit import check_chain
from sspm.email import jobs
from sspm.infra.store import Base, Store, alembic_config, head_revision, migrate, utcnow
from sspm.policy.actor import Actor
from tests.support import Backing, services_of
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    account_id,
    enroll,
    recover,
    set_new_password,
    sign_in,
    stored_answers,
    verdict,
)

PICKS = {"first-school": "Riverside Elementary", "first-pet": "Biscuit", "parents-met": "Montréal"}
OTHER_PICKS = {"childhood-street": "Maple Avenue", "first-job": "Paper round", "first-pet": "Pepper"}
ACCOUNT = "0b6c4f8e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"


def test_the_migrations_build_what_the_models_describe_and_come_undone(empty_database_url: str) -> None:
    migrate(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            drift = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert drift == [], "the models and the migrations describe the same schema"
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        command.downgrade(alembic_config(empty_database_url), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate(empty_database_url)
        assert {"audit_event", "audit_chain_head", "reset_token"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_link_is_spent_by_exactly_one_of_many_requests_racing_for_it(database_url: str) -> None:
    store = Store(database_url)
    try:
        token = tokens.issue(store, ACCOUNT, "reset", timedelta(minutes=30))
        link = tokens.digest(token)
        racers = 8
        start = threading.Barrier(racers)
        won: list[bool] = []

        def spend() -> None:
            start.wait()
            won.append(tokens.spend(store, link))

        threads = [threading.Thread(target=spend) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(won) == [False] * (racers - 1) + [True]
        assert tokens.find(store, link, "reset") is None, "a spent link finds no account"
        # Refused by the directory (say, a password in history): the user may try again with it.
        tokens.restore(store, link)
        assert tokens.find(store, link, "reset") == ACCOUNT
    finally:
        store.close()


def test_a_link_works_until_it_expires_or_a_newer_one_or_a_password_change_voids_it(database_url: str) -> None:
    store = Store(database_url)
    try:
        first = tokens.digest(tokens.issue(store, ACCOUNT, "reset", timedelta(minutes=30)))
        until = tokens.live_until(store, first, "reset")
        assert until is not None and until.utcoffset() is not None, "times come back with their zone"
        assert timedelta(minutes=29) < until - utcnow() <= timedelta(minutes=30)
        assert tokens.find(store, first, "reset") == ACCOUNT
        assert tokens.find(store, first, "unlock") is None, "bound to its purpose"
        # A change made by the directory an hour ago leaves it alive; one made just now voids it.
        assert tokens.find(store, first, "reset", changed_since=utcnow() - timedelta(hours=1)) == ACCOUNT
        assert tokens.find(store, first, "reset", changed_since=utcnow()) is None

        second = tokens.digest(tokens.issue(store, ACCOUNT, "reset", timedelta(minutes=30)))
        assert tokens.find(store, first, "reset") is None, "a newer link voids the older"
        assert tokens.find(store, second, "reset") == ACCOUNT
        tokens.void_all(store, ACCOUNT)
        assert tokens.find(store, second, "reset") is None, "a password change voids every link"

        stale = tokens.digest(tokens.issue(store, ACCOUNT, "reset", timedelta(seconds=-1)))
        assert tokens.find(store, stale, "reset") is None, "an expired link finds no account"
    finally:
        store.close()


def test_two_workers_taking_the_same_notification_send_one_email(
    database_url: str, build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    john = accounts["normal"]
    app = build_app(slapd)
    john_id = account_id(app, john.uid)
    event = "event-7f3a"
    sent: list[str] = []
    start = threading.Barrier(2)

    def worker() -> None:
        with app.app_context():
            start.wait()
            sent.append(jobs.send_notification(john_id, "password_changed", "fr", utcnow().isoformat(), "", event))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(sent) == ["already-sent", "sent"]
    assert [message["To"] for message in backing.mailbox.messages] == [john.mail]
    with app.app_context():  # and the job, tried again later, still sends nothing
        again = jobs.send_notification(john_id, "password_changed", "fr", utcnow().isoformat(), "", event)
    assert again == "already-sent"
    assert len(backing.mailbox.messages) == 1


def test_enrollment_is_replaced_whole_and_the_new_answers_reset_the_password(
    database_url: str, build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    app = build_app(slapd)
    visitor = Visitor(app)
    assert sign_in(visitor, john.uid, john.password).status_code == 303
    assert enroll(visitor, PICKS, john.password).status_code == 303

    assert enroll(visitor, OTHER_PICKS, john.password).status_code == 303

    assert [row.question_id for row in stored_answers(app)] == list(OTHER_PICKS), "the old answers are gone"
    assert recover(Visitor(app), "forgot", john.uid, PICKS).status_code == 422
    reset = Visitor(app)
    assert recover(reset, "forgot", john.uid, OTHER_PICKS).status_code == 303
    assert set_new_password(reset, NEW_PASSWORD).status_code == 303
    assert verdict(services_of(app).directory, john.uid, NEW_PASSWORD) is Outcome.OK
    rows, broken = check_chain(services_of(app).store)
    assert broken is None and rows >= 6, "every step is on one sound audit chain"


@pytest.mark.parametrize("length", [64, 200])
def test_what_is_too_long_for_a_column_is_cut_not_refused(database_url: str, length: int) -> None:
    """PostgreSQL refuses a string longer than its column, where SQLite keeps it: the audit trail cuts first."""
    store = Store(database_url)
    try:
        audit.record(
            store,
            audit.Action.SIGN_IN,
            "bad_credentials",
            actor=Actor.anonymous("2001:db8::" + "f" * length),
            typed="x" * 300,
        )
        rows, broken = check_chain(store)
        assert (rows, broken) == (1, None)
    finally:
        store.close()
