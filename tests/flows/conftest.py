"""What the user stories share: a visitor with a browser's manners, apps built
on the real directory, and slapd's own account of the work it did.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from conftest import services_of, settings_for  # tests/conftest.py: the one way tests build settings
from flask import Flask
from flask_babel import gettext
from markupsafe import escape
from werkzeug.test import TestResponse

from lab import Pki, Slapd, start_slapd
from lab.env import LabDirectory
from sspm.app import create_app
from sspm.web.messages import reason_text

HTTPS_BASE_URL = "https://sspm.partners.example"
HTTP_BASE_URL = "http://sspm.partners.example"
NO_ENV_FILE = Path("/nonexistent/.env")
#: pwdMinLength of the lab's policy, which the page repeats in its refusal.
MIN_LENGTH = 8
NEW_PASSWORD = "Orchard-Kettle-Lantern-58"

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page should carry a CSRF token in a hidden input"
    return found.group(1)


def without_token(html: str) -> str:
    return _TOKEN.sub('name="csrf_token" type="hidden" value="TOKEN"', html)


def says(response: TestResponse, text: str) -> bool:
    """Whether the page shows ``text`` (as the template escapes it)."""
    return str(escape(text)) in response.get_data(as_text=True)


def reason_in(app: Flask, reason: str, lang: str = "en") -> str:
    """The sentence a page shows for ``reason``, in ``lang``, from the catalogue."""
    with app.test_request_context(f"/?lang={lang}"):
        return reason_text(reason, min_length=MIN_LENGTH)


def text_in(app: Flask, text: str, lang: str = "en") -> str:
    """Any other page text, translated into ``lang`` from the catalogue."""
    with app.test_request_context(f"/?lang={lang}"):
        return str(gettext(text))


class Visitor:
    """Someone with a browser: keeps cookies, sends back the page's CSRF
    token and a same-origin Referer (Flask-WTF's check over HTTPS), and
    remembers every page seen so a test can search them all.
    """

    def __init__(self, app: Flask, base_url: str = HTTPS_BASE_URL) -> None:
        self.app = app
        self.base_url = base_url
        self.client = app.test_client()
        self.pages: list[TestResponse] = []

    def get(self, path: str, **options: object) -> TestResponse:
        return self._seen(self.client.get(path, base_url=self.base_url, **options))

    def post(self, path: str, data: Mapping[str, str], *, referer: str | None = "same-origin") -> TestResponse:
        headers = {}
        if referer == "same-origin":
            headers["Referer"] = self.base_url + path.split("?")[0]
        elif referer is not None:
            headers["Referer"] = referer
        return self._seen(self.client.post(path, base_url=self.base_url, data=dict(data), headers=headers))

    def submit(self, path: str, fields: Mapping[str, str]) -> TestResponse:
        """Open the form at ``path``, fill it in, send it."""
        token = csrf_token(self.get(path).get_data(as_text=True))
        return self.post(path, {**fields, "csrf_token": token})

    def change_password(
        self, username: str, current: str, new: str, confirm: str | None = None, *, entry: str = "/change"
    ) -> TestResponse:
        return self.submit(
            entry,
            {"username": username, "current": current, "new": new, "confirm": new if confirm is None else confirm},
        )

    def follow(self, response: TestResponse) -> TestResponse:
        assert response.status_code in (302, 303), response.status
        return self.get(response.headers["Location"])

    def _seen(self, response: TestResponse) -> TestResponse:
        self.pages.append(response)
        return response


AppFactory = Callable[..., Flask]


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


# -- slapd's own log of what it was asked ----------------------------------------------

_OPERATION = re.compile(r"conn=(\d+) (?:fd=\d+|op=\d+) (.*)$")
#: Kept from a log line: what was done and how it ended, not to whom.
_SHAPE = re.compile(
    r"^(ACCEPT|TLS established|BIND|SRCH|SEARCH RESULT tag=\d+ err=\d+|RESULT tag=\d+ err=\d+|UNBIND|closed)"
)


@dataclasses.dataclass
class SlapdLog:
    """slapd's per-operation log (-d stats), read in windows."""

    path: Path

    def mark(self) -> int:
        return self.path.stat().st_size

    def lines_since(self, mark: int) -> list[str]:
        """Log lines written since ``mark``, once every connection opened in
        that window has been closed (slapd logs the close a moment after the
        client's unbind; this waits for that, it does not time anything)."""
        deadline = time.monotonic() + 10
        while True:
            with self.path.open("rb") as log:
                log.seek(mark)
                lines = log.read().decode("utf-8", "replace").splitlines()
            opened = sum(" ACCEPT " in line for line in lines)
            closed = sum(line.endswith(" closed") for line in lines)
            if opened == closed or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)

    def work_since(self, mark: int) -> list[tuple[int, str]]:
        """The operations since ``mark`` as (connection, what), with connections
        numbered by first appearance and the entries they named left out.

        Grouped by connection: slapd logs each connection's operations in
        order, but the lines of two connections interleave as its threads
        happen to run (a search's result line may land before or after the
        next connection's ACCEPT), and that says nothing about the work."""
        connections: dict[str, int] = {}
        work: list[tuple[int, str]] = []
        for line in self.lines_since(mark):
            found = _OPERATION.search(line)
            if not found:
                continue
            shape = _SHAPE.match(found.group(2))
            if not shape:
                continue
            conn = connections.setdefault(found.group(1), len(connections))
            work.append((conn, shape.group(1)))
        return sorted(work, key=lambda operation: operation[0])  # stable: keeps each connection's order


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
        _wait_listening(server)
        yield server, SlapdLog(log_file)
    finally:
        server.stop()


def _wait_listening(server: Slapd) -> None:
    port = int(server.ldaps_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"slapd exited with {server.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
