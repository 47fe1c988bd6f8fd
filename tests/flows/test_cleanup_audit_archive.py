"""Archiving the audit trail's old rows without breaking its chain (``python -m sspm audit archive``).

The rows before a moment go to a JSON-lines file, and one checkpoint row,
signed with a key from SSPM_SECRET_KEY, stands where they were: ``audit
verify`` walks on from it. Then an insider with the database but not the
key tries to pass off a cut trail, or edit the checkpoint, and fails. On
SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from lab import Slapd
from lab.env import sspm_environ
from sspm.__main__ import verify_audit
from sspm.account import audit
from sspm.account.audit_query import chain_status
from sspm.infra.settings import ROOT
from sspm.infra.store import AuditEvent, Store, utcnow
from sspm.policy.actor import Actor
from sspm.policy.auditchain import CHECKPOINT, GENESIS, Entry, digest, utc_text
from tests.support import Backing, services_of
from tests.support.flows import AppFactory

KEY = "a-secret-key-of-this-test-only-0123456789abcdef"
OPERATOR = Actor.operator("test-operator")
ACTIONS = [audit.Action.SIGN_IN, audit.Action.UNLOCK, audit.Action.CHANGE]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    found = Store(database_url)
    yield found
    found.close()


def write(store: Store, n: int) -> None:
    for i in range(n):
        audit.record(store, ACTIONS[i % 3], "ok", actor=Actor.anonymous("203.0.113.9"), account_id="acc", username="j")


def seqs(store: Store) -> list[tuple[int, str]]:
    with store.session() as session:
        return [(r.seq, r.action) for r in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


def verifies(store: Store, key: str | None = KEY) -> str | None:
    """None when the trail holds; else the break, in words."""
    _rows, broken = audit.check_chain(store, key)
    return None if broken is None else str(broken)


def the_file_chains(path: Path) -> list[dict[str, object]]:
    """Each archived line is a row that chains to the one before, from the trail's first."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = GENESIS
    for line in lines:
        assert line["prev"] == prev
        assert digest(Entry.from_dict(line), prev) == line["digest"]
        prev = str(line["digest"])
    return lines


def test_old_rows_leave_for_a_file_and_the_chain_verifies_on_from_a_signed_checkpoint(
    store: Store, tmp_path: Path
) -> None:
    write(store, 5)
    moment = utcnow()
    write(store, 3)
    into = tmp_path / "audit-old.jsonl"

    done = audit.archive(store, moment, into, secret_key=KEY, actor=OPERATOR)

    assert done is not None and (done.rows, done.last_seq) == (5, 5)
    assert done.file_sha256 == hashlib.sha256(into.read_bytes()).hexdigest()
    assert [line["seq"] for line in the_file_chains(into)] == [1, 2, 3, 4, 5]
    assert [s for s, _a in seqs(store)] == [5, 6, 7, 8] and seqs(store)[0][1] == CHECKPOINT
    assert verifies(store) is None
    write(store, 2)  # the trail goes on as before
    assert verifies(store) is None
    assert audit.archive(store, moment, tmp_path / "again.jsonl", secret_key=KEY, actor=OPERATOR) is None
    assert not (tmp_path / "again.jsonl").exists(), "nothing more was old enough"

    # A second archive takes the first checkpoint with it, and leaves its own.
    later = tmp_path / "audit-later.jsonl"
    done = audit.archive(store, utcnow() + timedelta(seconds=1), later, secret_key=KEY, actor=OPERATOR)
    assert done is not None and (done.rows, done.last_seq) == (6, 10)
    assert json.loads(later.read_text().splitlines()[0])["action"] == CHECKPOINT
    assert seqs(store) == [(10, CHECKPOINT)]
    assert verifies(store) is None
    write(store, 1)
    assert verifies(store) is None


def test_without_the_key_a_cut_or_an_edited_checkpoint_does_not_verify(store: Store, tmp_path: Path) -> None:
    write(store, 4)
    moment = utcnow()
    write(store, 3)
    assert audit.archive(store, moment, tmp_path / "old.jsonl", secret_key=KEY, actor=OPERATOR) is not None

    assert "cannot be checked without SSPM_SECRET_KEY" in str(verifies(store, None))
    assert "is not signed with this server's key" in str(verifies(store, "another-key-" + KEY))

    with store.session() as session:  # the insider claims fewer rows were archived
        session.execute(update(AuditEvent).where(AuditEvent.action == CHECKPOINT).values(subject="rows to 3"))
    assert "the archive checkpoint, is not signed" in str(verifies(store))


def test_cutting_more_after_the_checkpoint_shows(store: Store, tmp_path: Path) -> None:
    write(store, 4)
    moment = utcnow()
    write(store, 3)
    assert audit.archive(store, moment, tmp_path / "old.jsonl", secret_key=KEY, actor=OPERATOR) is not None
    with store.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 5))
    assert "row 5 was removed" in str(verifies(store))
    with store.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.action == CHECKPOINT))
    assert "row" in str(verifies(store)) and "removed" in str(verifies(store))


def test_a_tampered_trail_or_an_existing_file_is_not_archived(store: Store, tmp_path: Path) -> None:
    write(store, 4)
    moment = utcnow()
    with store.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="refused"))
    with pytest.raises(audit.ArchiveRefused, match="do not verify: row 2"):
        audit.archive(store, moment, tmp_path / "old.jsonl", secret_key=KEY, actor=OPERATOR)
    assert not (tmp_path / "old.jsonl").exists()
    (tmp_path / "taken.jsonl").write_text("")
    with pytest.raises(audit.ArchiveRefused, match="exists"):
        audit.archive(store, moment, tmp_path / "taken.jsonl", secret_key=KEY, actor=OPERATOR)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 4, "nothing was deleted"


def rewritten(path: Path, seq: int, **changes: object) -> None:
    """An insider edits one archived row and recomputes every digest after it, so the file chains again."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = lines[0]["prev"]
    for line in lines:
        if line["seq"] == seq:
            line.update(changes)
        line["prev"] = prev
        line["digest"] = prev = digest(Entry.from_dict(line), str(prev))
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def test_archive_files_verify_oldest_first_against_each_other_and_the_trails_checkpoint(
    store: Store, tmp_path: Path
) -> None:
    write(store, 4)
    moment = utcnow()
    write(store, 3)
    old, later = tmp_path / "audit-old.jsonl", tmp_path / "audit-later.jsonl"
    assert audit.archive(store, moment, old, secret_key=KEY, actor=OPERATOR) is not None
    write(store, 2)
    assert audit.archive(store, utcnow() + timedelta(seconds=1), later, secret_key=KEY, actor=OPERATOR) is not None

    assert audit.verify_archives(store, [old, later], secret_key=KEY) == (4 + 6, None)
    assert audit.verify_archives(store, [later], secret_key=KEY) == (6, None), "the oldest may be let go on purpose"
    wrong = {
        "out of order": ([later, old], f"no signed checkpoint in {old} stands for {later}"),
        "the newest missing": ([old], "no signed checkpoint in the database stands for"),
        "another key": ([old, later], f"no signed checkpoint in {later} stands for {old}"),
    }
    for case, (files, says) in wrong.items():
        key = "another-key-" + KEY if case == "another key" else KEY
        _rows, problem = audit.verify_archives(store, files, secret_key=key)
        assert problem is not None and says in problem, case

    kept = old.read_bytes()
    rewritten(old, 2, outcome="refused")  # the file chains again, but is no longer the file the checkpoint named
    assert the_file_chains(old)
    assert "no signed checkpoint in " + str(later) in str(audit.verify_archives(store, [old, later], secret_key=KEY)[1])
    old.write_bytes(b"".join(kept.splitlines(keepends=True)[:-1]))  # the last row cut off
    assert "no signed checkpoint in " + str(later) in str(audit.verify_archives(store, [old, later], secret_key=KEY)[1])
    old.write_bytes(kept[:-5])  # cut inside the last row
    assert "cannot be read" in str(audit.verify_archives(store, [old, later], secret_key=KEY)[1])
    old.write_bytes(kept)
    assert audit.verify_archives(store, [old, later], secret_key=KEY)[1] is None


def test_the_operator_archives_then_verifies_at_the_command_line(
    slapd: Slapd, backing: Backing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(backing.database_url)
    write(store, 3)
    environ = {
        **os.environ,
        **sspm_environ(slapd, redis_url=backing.redis_url, database_url=backing.database_url),
        "SSPM_SECRET_KEY": KEY,
    }
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    into = tmp_path / "audit-2026.jsonl"

    def sspm(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sspm", *args]
        return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)

    archived = sspm("audit", "archive", "--before", tomorrow, str(into))
    assert archived.returncode == 0, archived.stderr
    assert f"3 audit rows (to row 3) archived into {into}" in archived.stdout
    assert sspm("audit", "archive", "--before", tomorrow, str(into)).returncode == 1, "never over an archive"
    reread = sspm("audit", "verify-archive", str(into))
    assert reread.returncode == 0 and "audit archive intact: 3 rows in 1 files" in reread.stdout, reread.stderr
    checked = sspm("audit", "verify")
    assert checked.returncode == 0 and "audit trail intact: 1 rows" in checked.stdout, checked.stderr
    assert verify_audit(backing.database_url) == 1, "and without the key, it cannot tell"
    assert "cannot be checked without SSPM_SECRET_KEY" in capsys.readouterr().err
    assert utc_text(datetime.now(UTC))[:4] in into.read_text()
    store.close()


def test_the_consoles_chain_check_reads_the_checkpoint_with_the_apps_key(
    build_app: AppFactory, slapd: Slapd, tmp_path: Path
) -> None:
    the = services_of(build_app(slapd))
    write(the.store, 3)
    key = the.settings.secret_key
    assert audit.archive(the.store, utcnow(), tmp_path / "old.jsonl", secret_key=key, actor=OPERATOR) is not None
    write(the.store, 1)
    status = chain_status(the.store, max_age=0)
    assert status.broken is None and status.rows == 2
