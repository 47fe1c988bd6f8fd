"""The audit trail as an insider with database access would attack it, and as an operator checks it.

Every row is chained to the one before; ``python -m sspm audit verify``
walks the chain. Here someone edits, deletes and forges rows straight in
the database (SQLite and PostgreSQL) and the operator's check names the
first damaged row; two processes write at once and leave one chain; and
each event also leaves, as it happens, for syslog or a JSON log.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, delete, func, select, update

from lab import SeedAccount, Slapd, free_port
from lab.env import sspm_environ
from sspm.__main__ import verify_audit
from sspm.account import audit
from sspm.infra.settings import ROOT, ConfigError
from sspm.infra.store import AuditChainHead, AuditEvent, Store, utcnow
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.auditchain import Entry, digest
from tests.support import services_of, settings_for
from tests.support.flows import AppFactory, Visitor, sign_in

IP = "203.0.113.50"
JOHN_ID = "5f0c1a2e-8d3b-4e6f-9a7c-1b2d3e4f5a6b"


@pytest.fixture
def raw(database_url: str) -> Iterator[Engine]:
    """The database as an insider sees it: plain SQL, no SSPM code in the way."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def some_history(build_app: AppFactory, slapd: Slapd, john: SeedAccount) -> Flask:
    """A morning's trail through the app: a wrong password, a name that is nobody, then john signs in."""
    app = build_app(slapd)
    visitor = Visitor(app)
    visitor.client.environ_base["REMOTE_ADDR"] = IP
    for login, password in [(john.uid, "Guess-1"), ("jsmyth", "x"), (john.uid, john.password)]:
        sign_in(visitor, login, password)
    return app


@pytest.fixture
def morning(database_url: str) -> Iterator[Store]:
    """The same kind of morning written straight by the audit writer: john, locked out, unlocks and changes."""
    store = Store(database_url)
    for action, outcome in [
        (audit.Action.SIGN_IN, "bad_credentials"),
        (audit.Action.SIGN_IN, "locked"),
        (audit.Action.UNLOCK_START, "challenge_issued"),
        (audit.Action.UNLOCK_ANSWERS, "ok"),
        (audit.Action.UNLOCK, "ok"),
        (audit.Action.CHANGE, "ok"),
    ]:
        audit.record(store, action, outcome, actor=Actor.anonymous(IP), account_id=JOHN_ID, username="jsmith")
    yield store
    store.close()


def rows_of(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq)).all())


def check(database_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """What ``python -m sspm audit verify`` says and exits with."""
    code = verify_audit(database_url)
    said = capsys.readouterr()
    return code, said.out + said.err


def test_a_sound_trail_verifies_and_says_how_long_it_is(
    database_url: str, raw: Engine, build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = some_history(build_app, slapd, accounts["normal"])
    rows = rows_of(raw)

    assert [(r.action, r.outcome, r.actor_kind, r.source_ip) for r in rows if r.action == "sign_in"] == [
        ("sign_in", "bad_credentials", "anonymous", IP),
        ("sign_in", "bad_credentials", "anonymous", IP),
        ("sign_in", "ok", "anonymous", IP),
    ]
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert audit.check_chain(services_of(app).store) == (len(rows), None)
    environ = sspm_environ(slapd, redis_url="redis://127.0.0.1:1/0", database_url=database_url)
    done = subprocess.run(
        [sys.executable, "-m", "sspm", "audit", "verify"],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sspm: audit trail intact: {len(rows)} rows, each one chained to the one before"


def test_a_failed_sign_in_rewritten_as_a_success_is_named(
    database_url: str, morning: Store, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:

    with raw.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="ok"))

    code, said = check(database_url, capsys)
    assert code == 1
    assert "row 2 (id " in said and "was altered" in said


def test_a_deleted_row_is_named(
    database_url: str, morning: Store, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:

    with raw.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq == 2))

    code, said = check(database_url, capsys)
    assert code == 1
    assert "row 2 was removed" in said


def test_rows_cut_off_the_end_are_named(
    database_url: str, morning: Store, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    last = rows_of(raw)[-1].seq

    with raw.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq == last))

    code, said = check(database_url, capsys)
    assert code == 1
    assert f"rows {last} to {last} were removed from the end" in said


def test_a_row_forged_by_someone_who_knows_the_algorithm_is_named(
    database_url: str, morning: Store, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    last = rows_of(raw)[-1]
    # An alibi: john "changed his password" from the office, correctly chained after the last row.
    forged = Entry(
        seq=last.seq + 1,
        at=utcnow(),
        actor_kind="anonymous",
        actor_id=None,
        actor_role=None,
        action="change",
        outcome="ok",
        account_id=last.account_id,
        subject="jsmith",
        source_ip="192.0.2.1",
        details={},
    )
    values = {
        "seq": forged.seq,
        "at": forged.at,
        "actor_kind": forged.actor_kind,
        "action": forged.action,
        "outcome": forged.outcome,
        "account_id": forged.account_id,
        "subject": forged.subject,
        "source_ip": forged.source_ip,
        "details": {},
        "prev_digest": last.digest,
        "digest": digest(forged, last.digest),
    }

    with raw.begin() as conn:
        conn.execute(AuditEvent.__table__.insert().values(**values))  # type: ignore[attr-defined]

    code, said = check(database_url, capsys)
    assert code == 1
    assert f"row {forged.seq} (id " in said and "was inserted" in said


def test_an_event_written_in_a_transaction_goes_with_it(database_url: str) -> None:
    """A row written with the change it describes is committed, or rolled back, with it."""
    store = Store(database_url)
    try:
        with pytest.raises(RuntimeError), store.session(immediate=True) as session:
            audit.record(store, audit.Action.UNLOCK, "ok", actor=Actor.anonymous(IP), account_id="a1", session=session)
            raise RuntimeError("the directory refused after all")
        with store.session(immediate=True) as session:
            audit.record(store, audit.Action.UNLOCK, "ok", actor=Actor.anonymous(IP), account_id="a1", session=session)

        assert audit.check_chain(store) == (1, None)
    finally:
        store.close()


def test_a_staff_actor_is_kept_apart_from_the_account_acted_on(database_url: str) -> None:
    store = Store(database_url)
    agent = Actor(ActorKind.STAFF, id="helpdesk-7", role="helpdesk", client_address="198.51.100.4")
    try:
        audit.record(store, audit.Action.UNLOCK, "ok", actor=agent, account_id="a1", username="jsmith")
        with store.session() as session:
            row = session.scalars(select(AuditEvent)).one()
        assert (row.actor_kind, row.actor_id, row.actor_role, row.source_ip) == (
            "staff",
            "helpdesk-7",
            "helpdesk",
            "198.51.100.4",
        )
        assert (row.account_id, row.subject) == ("a1", "jsmith")
        with pytest.raises(ValueError, match="secret"):
            audit.record(store, audit.Action.UNLOCK, "ok", actor=agent, details={"new_password": "x"})
        assert audit.check_chain(store) == (1, None)
    finally:
        store.close()


# -- several processes at once ---------------------------------------------------------------------

_APPENDER = """
import sys, time
from pathlib import Path
from sspm.account import audit
from sspm.policy.actor import Actor
from sspm.infra.store import Store

url, name, count, ready, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
store = Store(url)
store.engine.connect().close()
ready.touch()
while not go.exists():
    time.sleep(0.001)
for i in range(count):
    audit.record(store, audit.Action.SIGN_IN, "ok", actor=Actor.job(name), details={"i": i})
store.close()
"""


def test_two_processes_appending_at_once_leave_one_unbroken_chain(database_url: str, tmp_path: Path) -> None:
    """Two app processes (or a web process and a worker) write to one database: no fork, no lost row."""
    count = 300
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, database_url, f"p{n}", str(count), str(ready[n]), str(go)], cwd=ROOT
        )
        for n in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in ready):
            assert time.monotonic() < deadline and all(child.poll() is None for child in children)
            time.sleep(0.01)
        go.touch()
        codes = [child.wait(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert codes == [0, 0]

    store = Store(database_url)
    try:
        assert audit.check_chain(store) == (2 * count, None)
        with store.session() as session:
            per_writer = dict(
                session.execute(select(AuditEvent.actor_id, func.count()).group_by(AuditEvent.actor_id)).all()
            )
            head = session.get(AuditChainHead, 1)
        assert per_writer == {"p0": count, "p1": count}
        assert head is not None and head.seq == 2 * count
    finally:
        store.close()


# -- a copy of each event, as it happens, somewhere else ----------------------------------------------


def test_each_event_is_also_written_to_a_json_log_as_it_happens(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], tmp_path: Path
) -> None:
    john = accounts["normal"]
    log = tmp_path / "audit.jsonl"
    app = build_app(slapd, SSPM_AUDIT_JSON_FILE=str(log))
    visitor = Visitor(app)

    sign_in(visitor, john.uid, "Wrong-Guess-1")
    sign_in(visitor, john.uid, john.password)

    shipped = [json.loads(line) for line in log.read_text().splitlines()]
    with services_of(app).store.session() as session:
        stored = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [(e["seq"], e["action"], e["outcome"], e["subject"]) for e in shipped] == [
        (1, "sign_in", "bad_credentials", john.uid),
        (2, "sign_in", "ok", john.uid),
    ]
    assert [e["digest"] for e in shipped] == [r.digest for r in stored], "the copy can be checked against the chain"
    assert "Wrong-Guess-1" not in log.read_text() and john.password not in log.read_text()


@pytest.mark.parametrize("transport", ["udp", "unix"])
def test_each_event_is_also_sent_to_syslog_as_it_happens(
    transport: str, build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], tmp_path: Path
) -> None:
    john = accounts["normal"]
    if transport == "udp":
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        port = free_port()
        listener.bind(("127.0.0.1", port))
        target = f"udp://127.0.0.1:{port}"
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        target = tempfile.mkdtemp(prefix="sspm-syslog-") + "/log"  # a socket path must be short
        listener.bind(target)
    listener.settimeout(10)
    try:
        app = build_app(slapd, SSPM_AUDIT_SYSLOG=target)
        sign_in(Visitor(app), john.uid, john.password)
        datagram = listener.recv(65536).decode()
    finally:
        listener.close()

    # <38>: facility auth (4) at level info (6), then the event as JSON.
    assert datagram.startswith("<38>sspm-audit: {")
    event = json.loads(datagram.removeprefix("<38>sspm-audit: ").rstrip("\x00"))
    assert (event["action"], event["outcome"], event["subject"]) == ("sign_in", "ok", john.uid)
    assert services_of(app).settings.audit_syslog == target


def test_a_copy_that_cannot_be_sent_stops_the_start_with_one_line(
    build_app: AppFactory, slapd: Slapd, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="SSPM_AUDIT_SYSLOG"):
        settings_for(slapd, SSPM_AUDIT_SYSLOG="syslog.example:514")
    with pytest.raises(ConfigError, match="SSPM_AUDIT_JSON_FILE"):
        build_app(slapd, SSPM_AUDIT_JSON_FILE=str(tmp_path / "missing" / "audit.jsonl"))
