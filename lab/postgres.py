"""A throwaway PostgreSQL cluster for tests and benchmarks, on loopback, on a free port.

PostgreSQL is SSPM's production store, and SQLite forgives what it refuses
(over-long strings, naive times, lock waits), so the store is tested against
the real server. Debian's binaries live in /usr/lib/postgresql/N/bin, off
PATH. ``initdb`` refuses to run as root: when we are root the cluster is
made and run by the ``postgres`` user, in a temp dir of its own under /tmp
(pytest's own temp dirs are closed to other users). fsync is off: a test
cluster never has to survive a power cut.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from lab.slapd import free_port

#: The superuser initdb creates; trust authentication on loopback only.
USER = "sspm"


def bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name), reverse=True
    )
    if found:
        return found[0].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL is not installed: run scripts/setup (Debian package postgresql)")


@dataclass
class PostgresServer:
    workdir: Path
    port: int
    bindir: Path
    owner: str | None
    _stopped: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        atexit.register(self.stop)  # an aborted test run must not leave a postmaster behind

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy's URL for one database of this cluster (psycopg 3)."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser (CREATE DATABASE cannot run inside a transaction block)."""
        done = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                *self._where(database),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def _where(self, database: str) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database]

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given: fast, file-level); returns its URL."""
        copy = f' TEMPLATE "{template}"' if template else ""
        self.psql(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if (self.workdir / "data" / "postmaster.pid").exists():
            _run([str(self.bindir / "pg_ctl"), "-D", str(self.workdir / "data"), "-m", "immediate", "stop"], self.owner)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _run(argv: list[str], owner: str | None) -> subprocess.CompletedProcess[str]:
    if owner:
        argv = ["runuser", "-u", owner, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)


def start_postgres(*, port: int | None = None, timezone: str = "UTC") -> PostgresServer:
    """initdb and start a cluster in a new temp dir; the returned object owns (and removes) it.

    ``timezone`` is the server's, in which it hands back times: tests pick
    one far from UTC so that a time mistaken for local shows.
    """
    bindir = bin_dir()
    owner = "postgres" if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="sspm-postgres-"))
    if owner:
        account = pwd.getpwnam(owner)
        os.chown(workdir, account.pw_uid, account.pw_gid)
    port = port or free_port()
    server = PostgresServer(workdir, port, bindir, owner)
    try:
        made = _run(
            [str(bindir / "initdb"), "-D", str(workdir / "data"), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8"],
            owner,
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed ({made.returncode}):\n{made.stderr}")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c full_page_writes=off"
            f" -c synchronous_commit=off -c timezone={timezone}"
        )
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(workdir / "data"), "-o", options, "-l", str(workdir / "log")]
        started = _run([*pg_ctl, "-w", "-t", "30", "start"], owner)
        if started.returncode != 0:
            log = (workdir / "log").read_text(errors="replace")[-2000:] if (workdir / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start on port {port} ({started.returncode}):\n{log}")
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
