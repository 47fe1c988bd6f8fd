"""What tests share besides fixtures: settings on the lab's servers, the app's services.

Fixtures live in the conftest files (tests/conftest.py starts the servers);
everything a test imports lives here, under one name: import it as
``tests.support`` (``python -m pytest`` from the repository root puts the
root on the path), never as ``support``, or the current test's backing
would live in two modules. ``flows`` is for stories through Flask's test
client, ``browser`` for stories in Chromium.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask

from lab.env import LabDirectory, sspm_environ
from lab.smtp import Mailbox
from sspm.infra.services import Services
from sspm.infra.settings import Settings, load

NO_ENV_FILE = Path("/nonexistent/.env")
#: ``SSPM_TEST_DATABASE=postgresql`` runs every test on PostgreSQL, not only those that ask for ``database_url``.
ALL_ON_POSTGRES = os.environ.get("SSPM_TEST_DATABASE", "sqlite") == "postgresql"
#: The test cluster's time zone: far from UTC and not a whole hour, so a time read back as local shows.
POSTGRES_TIMEZONE = "Asia/Kathmandu"
#: Accounts are put in their states (locked now, expiring in 5 days) when a snapshot is
#: made; a lock lasts 30 minutes, so a long session takes a new snapshot now and then.
SNAPSHOT_FRESH_FOR = timedelta(minutes=15)


@dataclass(frozen=True)
class Backing:
    """This test's Redis, database and mailbox: what every app it builds shares."""

    redis_url: str
    database_url: str
    mailbox: Mailbox
    smtp_port: int


_backing: Backing | None = None


def use_backing(backing: Backing | None) -> None:
    """Make ``backing`` the one :func:`settings_for` builds on (None once the test is over).

    Set by tests/conftest.py's ``backing`` and ``database_url`` fixtures, so a
    helper called with only a directory still lands on the test's own servers.
    """
    global _backing
    _backing = backing


def settings_for(directory: LabDirectory, **overrides: str) -> Settings:
    """The settings of an app on a lab ``directory`` (slapd or Samba) and this test's Redis and database."""
    assert _backing is not None, "settings_for is for use inside a test that has the backing fixture"
    environ = sspm_environ(
        directory,
        redis_url=_backing.redis_url,
        database_url=_backing.database_url,
        smtp_port=_backing.smtp_port,
        **overrides,
    )
    return load(env_file=NO_ENV_FILE, environ=environ)


def services_of(app: Flask) -> Services:
    services: Services = app.extensions["sspm"]
    return services
