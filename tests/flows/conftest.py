"""The user stories' fixtures: this test's servers on every test, apps built on the
real directory, a visitor, and a slapd that logs its work. Helpers: tests/support/flows.py.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from lab import Pki, Slapd, start_slapd
from lab.env import LabDirectory
from sspm.app import create_app
from tests.support import Backing, services_of, settings_for
from tests.support.flows import AppFactory, SlapdLog, Visitor, wait_listening


@pytest.fixture(autouse=True)
def fresh_backing(backing: Backing) -> Backing:
    """Every story runs on this test's own Redis, database and mailbox (tests/conftest.py), asked for or not."""
    return backing


@pytest.fixture
def build_app() -> Iterator[AppFactory]:
    """Build an app on a given lab directory (slapd or Samba) with some settings overridden.

    One app per test: the rate limiter's counters belong to the last app built.
    """
    built: list[Flask] = []

    def build(directory: LabDirectory, **environ: str) -> Flask:
        app = create_app(settings_for(directory, **environ))
        built.append(app)
        return app

    yield build
    for app in built:
        services_of(app).close()


@pytest.fixture
def visitor(app: Flask) -> Visitor:
    return Visitor(app)


@pytest.fixture
def watched_slapd(tmp_path: Path, pki: Pki) -> Iterator[tuple[Slapd, SlapdLog]]:
    """A lab slapd that logs every operation (restarted with ``-d stats``).

    lab.start_slapd always runs with ``-d none``; this seeds through it,
    then runs the same config and data again with the stats log on.
    """
    seeded = start_slapd(tmp_path / "slapd", pki=pki)
    seeded.stop()
    log_file = tmp_path / "slapd" / "stats.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [
                "slapd",
                "-f",
                str(seeded.workdir / "slapd.conf"),
                "-h",
                f"{seeded.ldap_url}/ {seeded.ldaps_url}/",
                "-d",
                "stats",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    server = dataclasses.replace(seeded, process=process, log_file=log_file)
    try:
        wait_listening(server)
        yield server, SlapdLog(log_file)
    finally:
        server.stop()
