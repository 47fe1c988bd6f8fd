"""Real servers for every test: a fresh slapd per test, seeded in every state.

A slapd starts in well under 0.1 s, so each test gets its own directory and
can change passwords and lock accounts without touching any other test.
A test on Active Directory asks for ``samba_dc`` instead: a Samba AD DC of
its own, copied from a snapshot made once per session (lab/samba.py).
One redis-server serves the whole run and is emptied before each test; each
test gets its own copy of a migrated SQLite database: the ``backing``
fixture, which the flows, contract and browser tiers ask for on every test
(their conftest files) and the unit tier never does, so it starts no server.
Every app a test builds shares that test's Redis and database, as the app
instances of one deployment do. A test that asks for ``database_url`` runs
twice, on SQLite and on PostgreSQL (one cluster per run, a fresh database
per test copied from a migrated template); its apps then use that
database. With SSPM_TEST_DATABASE=postgresql every test runs on PostgreSQL.
Helpers a test imports live in tests/support/, never here.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from connectors import open_directory
from connectors.directory import Directory
from lab import DEMO_ACCOUNTS, Pki, SeedAccount, Slapd, make_pki, samba, start_slapd
from lab.postgres import PostgresServer, start_postgres
from lab.redis import RedisServer, start_redis
from lab.smtp import SmtpCatcher, start_smtp
from sspm.app import create_app
from sspm.infra.settings import Settings
from sspm.infra.store import migrate
from tests.support import (
    ALL_ON_POSTGRES,
    POSTGRES_TIMEZONE,
    SNAPSHOT_FRESH_FOR,
    Backing,
    services_of,
    settings_for,
    use_backing,
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at the latest schema, made once by the real migrations and copied per test."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpCatcher]:
    catcher = start_smtp()
    yield catcher
    catcher.stop()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """The database this test's backing is on: SQLite, or PostgreSQL everywhere with SSPM_TEST_DATABASE=postgresql."""
    kind: str = getattr(request, "param", "postgresql" if ALL_ON_POSTGRES else "sqlite")
    return kind


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Stories marked ``both_databases`` (the ones that write to SSPM's store) run on SQLite and on PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_databases") and not ALL_ON_POSTGRES:
        metafunc.parametrize("store_kind", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backing(
    request: pytest.FixtureRequest, store_kind: str, redis_server: RedisServer, smtp_server: SmtpCatcher, tmp_path: Path
) -> Iterator[Backing]:
    """This test's Redis (emptied), database (a fresh copy) and mailbox (emptied).

    Asked for by every test of the flows, contract and browser tiers (their
    conftest files), never by the unit tier, which starts no server.
    """
    redis.Redis.from_url(redis_server.url).flushdb()
    if store_kind == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"test_{uuid.uuid4().hex[:16]}"
        database_url = server.create_database(name, template=request.getfixturevalue("postgres_template"))
        request.addfinalizer(lambda: server.drop_database(name))
    else:
        database = tmp_path / "sspm.db"
        shutil.copy(request.getfixturevalue("migrated_database"), database)
        database_url = f"sqlite:///{database}"
    mailbox = smtp_server.mailbox
    mailbox.messages.clear()
    mailbox.refuse_next = 0
    mailbox.hold = None
    mailbox.received.clear()
    current = Backing(redis_server.url, database_url, mailbox, smtp_server.port)
    use_backing(current)
    yield current
    use_backing(None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the run (about a second to make), in its own temp dir."""
    server = start_postgres(timezone=POSTGRES_TIMEZONE)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    """A PostgreSQL database at the latest schema, made once by the real migrations and copied per test."""
    name = "sspm_template"
    postgres.create_database(name)
    migrate(postgres.url(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, backing: Backing) -> Iterator[str]:
    """This test's migrated database, on SQLite, then on PostgreSQL; the apps it builds use it.

    Ask for it before ``app``, ``settings`` or ``build_app``: they read the database URL when made.
    """
    if request.param == "sqlite":
        yield backing.database_url
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name, template=request.getfixturevalue("postgres_template"))
    use_backing(dataclasses.replace(backing, database_url=url))
    yield url
    server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it yet, on SQLite, then on PostgreSQL: for the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"empty_{uuid.uuid4().hex[:16]}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    server = start_slapd(tmp_path / "slapd", pki=pki)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def samba_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[samba.SambaLine]:
    """Fresh DCs, the next one starting while a test uses the current one.

    The domain is provisioned once per machine (cached), put in its states once
    per session (or per SNAPSHOT_FRESH_FOR).
    """
    made: list[samba.SambaSnapshot] = []

    def current() -> samba.SambaSnapshot:
        if not made or datetime.now(UTC) - made[-1].made_at > SNAPSHOT_FRESH_FOR:
            made.append(
                samba.make_snapshot(
                    tmp_path_factory.mktemp("samba-snapshot"),
                    cache=samba.default_cache(),
                    addresses=made[-1].addresses if made else (),
                    count=2,
                )
            )
        return made[-1]

    line = samba.SambaLine(current, tmp_path_factory.mktemp("samba"), max_runtime=600)
    yield line
    line.close()


@pytest.fixture
def samba_dc(samba_line: samba.SambaLine) -> Iterator[samba.SambaDC]:
    """A Samba AD DC of this test's own, seeded like ``slapd``."""
    dc = samba_line.take()
    yield dc
    dc.discard()


@pytest.fixture
def accounts() -> dict[str, SeedAccount]:
    """The seeded accounts, by state (plus 'nonascii' and 'other')."""
    by_state = {a.state: a for a in DEMO_ACCOUNTS if a.uid not in ("lsmith", "éloïse")}
    by_state["nonascii"] = next(a for a in DEMO_ACCOUNTS if a.uid == "éloïse")
    by_state["other"] = next(a for a in DEMO_ACCOUNTS if a.uid == "lsmith")
    return by_state


@pytest.fixture
def settings(slapd: Slapd) -> Settings:
    return settings_for(slapd)


@pytest.fixture
def directory(settings: Settings) -> Iterator[Directory]:
    connector = open_directory(settings.directory_kind, settings.directory)
    yield connector
    connector.close()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    services_of(application).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
