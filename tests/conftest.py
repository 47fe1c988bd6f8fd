"""Real servers for every test: a fresh slapd per test, seeded in every state.

A slapd starts in well under 0.1 s, so each test gets its own directory and
can change passwords and lock accounts without touching any other test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connectors import open_directory
from connectors.directory import Directory
from lab import DEMO_ACCOUNTS, Pki, SeedAccount, Slapd, make_pki, start_slapd
from lab.env import sspm_environ
from sspm import create_app
from sspm.settings import Settings, load

NO_ENV_FILE = Path("/nonexistent/.env")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    server = start_slapd(tmp_path / "slapd", pki=pki)
    yield server
    server.stop()


@pytest.fixture
def accounts() -> dict[str, SeedAccount]:
    """The seeded accounts, by state (plus 'nonascii' and 'other')."""
    by_state = {a.state: a for a in DEMO_ACCOUNTS if a.uid not in ("lsmith", "éloïse")}
    by_state["nonascii"] = next(a for a in DEMO_ACCOUNTS if a.uid == "éloïse")
    by_state["other"] = next(a for a in DEMO_ACCOUNTS if a.uid == "lsmith")
    return by_state


def settings_for(slapd: Slapd, **overrides: str) -> Settings:
    return load(env_file=NO_ENV_FILE, environ=sspm_environ(slapd, **overrides))


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
    application.extensions["sspm.directory"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
