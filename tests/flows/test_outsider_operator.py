"""An operator who did not build SSPM runs its jobs and commands, on OpenLDAP and on Active Directory.

Each story is something that went wrong for them: a reminder sent twice
after the clean-up, a command that answered with a traceback or spun a
CPU, a report that still called someone locked hours after the directory
let them in again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.directory import AccountDetails, Directory
from lab import SeedAccount, Slapd, samba
from lab.env import sspm_environ
from lab.seed import MAX_FAILURE
from lab.slapd import free_port
from sspm.__main__ import build_parser
from sspm.account import cleanup
from sspm.account.sync import sync_all, sync_changes
from sspm.infra.store import DirectoryAccount, Store, utcnow
from tests.contract import labs
from tests.flows.test_check_command import PATIENCE, ROOT
from tests.flows.test_cleanup import place
from tests.flows.test_cleanup_audit_archive import KEY, write
from tests.flows.test_console_roles import account_of
from tests.flows.test_email import EMAIL_ENV
from tests.flows.test_reminders import queue_job, run_housekeeping, sync, to
from tests.support import Backing, services_of
from tests.support.flows import AppFactory


def sspm(slapd: Slapd, backing: Backing, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """``python -m sspm ARGS`` as the operator types it, with the lab's settings (and ``overrides``)."""
    return run(slapd, backing, ["-m", "sspm", *args], **overrides)


def run(slapd: Slapd, backing: Backing, command: list[str], **overrides: str) -> subprocess.CompletedProcess[str]:
    """``python COMMAND`` from the repository, with the lab's settings (and ``overrides``)."""
    environ = sspm_environ(
        slapd, redis_url=backing.redis_url, database_url=backing.database_url, smtp_port=backing.smtp_port
    )
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**os.environ, **environ, "SSPM_SECRET_KEY": KEY, **overrides, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def said_in_one_line(done: subprocess.CompletedProcess[str], code: int, starts: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert (done.returncode, done.stderr.count("\n"), done.stderr[: len(starts)]) == (code, 1, starts), done.stderr


def database_away() -> str:
    """A PostgreSQL nobody listens for."""
    return f"postgresql+psycopg://sspm@127.0.0.1:{free_port()}/sspm"


# -- commands typed wrong, or run against something away ------------------------------------------


@pytest.mark.parametrize("tick", ["0", "-1", "nan", "inf", "1e400", "61", "soon"])
def test_a_scheduler_tick_that_would_spin_crash_or_skip_runs_is_refused_by_name(
    tick: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scheduler --tick 0`` (or -1) spun a CPU core forever, NaN or inf died of a traceback at the first tick.

    A tick longer than a minute is refused too: the incremental sync is
    due every five minutes, and a scheduler looking less often than that
    skips its runs without a word.
    """
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["scheduler", "--tick", tick])
    assert refused.value.code == 2
    assert f"argument --tick: {tick!r} is not a number of seconds above 0 and at most 60" in capsys.readouterr().err
    assert build_parser().parse_args(["scheduler", "--tick", "0.05"]).tick == 0.05


def test_an_archive_into_a_folder_that_does_not_exist_is_refused_in_one_line_and_keeps_the_trail(
    slapd: Slapd, backing: Backing, tmp_path: Path
) -> None:
    """A typo in the archive's path said FileNotFoundError in a traceback; the rows must stay, and say so."""
    store = Store(backing.database_url)
    write(store, 3)
    store.close()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    into = tmp_path / "no-such-folder" / "audit.jsonl"

    done = sspm(slapd, backing, "audit", "archive", "--before", tomorrow, str(into))
    said_in_one_line(done, 1, f"sspm: not archived: {into} cannot be written: No such file or directory")
    checked = sspm(slapd, backing, "audit", "verify")
    assert (checked.returncode, checked.stdout.strip()) == (
        0,
        "sspm: audit trail intact: 3 rows, each one chained to the one before",
    )


@pytest.mark.parametrize("command", [("check",), ("migrate",), ("audit", "verify"), ("staff", "list")], ids=" ".join)
def test_a_database_that_does_not_answer_is_named_in_one_line(
    slapd: Slapd, backing: Backing, command: tuple[str, ...]
) -> None:
    """PostgreSQL down (or a wrong port) gave every command a page of traceback instead of the one line
    the README promises for what stops a start."""
    done = sspm(slapd, backing, *command, SSPM_DATABASE_URL=database_away())
    said_in_one_line(done, 2, "sspm: cannot start: the database (SSPM_DATABASE_URL) cannot be used: connection failed")


def test_a_worker_started_while_the_database_does_not_answer_says_so_in_one_line(
    slapd: Slapd, backing: Backing
) -> None:
    """The same for ``worker.py``, which builds what the app builds: the systemd journal got a traceback."""
    done = run(slapd, backing, ["worker.py", "email"], SSPM_DATABASE_URL=database_away())
    said_in_one_line(
        done, 2, "sspm worker: cannot start: the database (SSPM_DATABASE_URL) cannot be used: connection failed"
    )


def test_reminder_days_beyond_any_password_are_refused_at_the_start_not_at_every_run(
    slapd: Slapd, backing: Backing
) -> None:
    """SSPM_REMINDER_DAYS=100000000 passed the check; then every reminders run (and every clean-up, which keeps
    a reminder's event that long) failed on a date past the year 9999, quietly, each hour."""
    done = sspm(slapd, backing, "check", SSPM_REMINDER_DAYS="14,100000000")
    said_in_one_line(done, 2, "sspm: cannot start: SSPM_REMINDER_DAYS needs at least one number of days, each from 1")


# -- the clean-up and the reminders ---------------------------------------------------------------


@pytest.mark.both_databases
def test_a_retention_meaning_forever_keeps_everything_instead_of_failing_every_clean_up(
    build_app: AppFactory, slapd: Slapd
) -> None:
    """Keep them "forever": 99999999 days of email events and job runs passed the check, and every hourly
    clean-up then failed on a date before year 1, deleting nothing, not even the spent links it must."""
    app = build_app(slapd, SSPM_EMAIL_EVENT_RETENTION_DAYS="99999999", SSPM_JOB_RUN_RETENTION_DAYS="99999999")
    store = services_of(app).store
    place(store, utcnow())
    assert cleanup.clean_up() == "purged 2 tokens, 0 email events, 0 job runs"


def test_a_short_email_event_retention_never_sends_an_expiry_reminder_twice(
    build_app: AppFactory, slapd: Slapd, backing: Backing
) -> None:
    """achen's password expires in 5 days: one 7-day reminder, however soon the clean-up forgets emails.

    An operator who keeps email events for a day (or none) to hold little
    about people still expects each reminder once: the clean-up used to
    delete the reminder's event at its next hourly run, and the next
    reminders run (every 15 minutes) sent achen the same reminder again.
    """
    app = build_app(slapd, SSPM_EMAIL_EVENT_RETENTION_DAYS="0", **EMAIL_ENV)
    achen = account_of(app, "achen")
    sync(app)
    queue_job(app)
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 1

    cleanup.clean_up()
    queue_job(app)  # the next scheduled run
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 1, "the same reminder went again"


# -- the directory sync on Active Directory ------------------------------------------------------

#: Waiting for the DC to say what time alone changes: a guard against a hang, not a measure.
DC_PATIENCE = 60.0


def until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DC_PATIENCE
    while not done():
        assert time.monotonic() < deadline, f"the DC never said {what}"
        time.sleep(0.2)


def test_on_active_directory_a_lock_that_ran_out_and_an_account_that_expired_reach_the_copy_within_minutes(
    samba_dc: samba.SambaDC, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    """The Locked report kept naming a user the DC had let in again, until the next day's full sync.

    AD ends a lock when its lockoutDuration has passed, and disables an
    account when its accountExpires comes, without writing to the account:
    its uSNChanged stays, so the five-minute incremental sync saw nothing.
    """
    lab = labs.ad_lab(samba_dc, accounts)
    domain = ",".join(part for part in lab.settings.base_dn.split(",") if part.upper().startswith("DC="))
    seconds = -10_000_000  # AD's durations: negative, in 100 ns
    lab.modify(domain, {"lockOutObservationWindow": [str(3 * seconds)], "lockoutDuration": [str(3 * seconds)]})
    directory: Directory = lab.connect()
    store = Store(backing.database_url)

    def copied(account_id: str) -> DirectoryAccount:
        with store.session() as session:
            row = session.get(DirectoryAccount, account_id)
            assert row is not None
            return row

    def incremental() -> None:
        sync_changes(store, directory, lambda found: None)

    jsmith, lsmith = (labs.account_of(directory, accounts[name]) for name in ("normal", "other"))
    incremental()  # the first run: every account, and the checkpoint
    for _ in range(MAX_FAILURE):
        directory.verify_password(jsmith.username, "not-the-password")
    lab.modify(lsmith.dn, {"accountExpires": [str(samba.filetime(datetime.now(UTC) + timedelta(seconds=3)))]})
    incremental()  # both changed: jsmith is locked, lsmith still enabled (unless the seconds have passed already)

    until("jsmith's lock ended", lambda: not _details(directory, jsmith.id).locked)
    until("lsmith's account expired", lambda: _details(directory, lsmith.id).disabled)
    incremental()
    assert not copied(jsmith.id).locked, "the copy still says locked"
    assert copied(lsmith.id).disabled, "the copy still says enabled"
    store.close()


def _details(directory: Directory, account_id: str) -> AccountDetails:
    found = directory.account_details(account_id)
    assert found is not None
    return found


@pytest.mark.both_databases
@pytest.mark.parametrize(
    ("display_name", "copied"),
    [("Laura " * 60, ("Laura " * 60)[:256]), ("Laura\x00Smith", "LauraSmith")],
    ids=["too long", "with a NUL"],
)
def test_an_entry_with_a_value_the_copys_column_cannot_hold_does_not_stop_the_sync_for_everyone(
    slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, display_name: str, copied: str
) -> None:
    """OpenLDAP bounds no displayName or mail, and takes a NUL in one; PostgreSQL refused the page holding either.

    One administrator pasting a paragraph (or a stray NUL) into someone's
    display name failed every full and incremental sync from then on, on
    PostgreSQL: every report and reminder went stale, for everyone.
    """
    lab = labs.openldap_lab(slapd, accounts)
    directory: Directory = lab.connect()
    store = Store(backing.database_url)
    lsmith = labs.account_of(directory, accounts["other"])
    lab.modify(lsmith.dn, {"displayName": [display_name], "mail": ["l" * 300 + "@example.org"]})

    assert sync_all(store, directory, lambda found: None).seen == len(accounts)
    with store.session() as session:
        row = session.get(DirectoryAccount, lsmith.id)
        assert row is not None
        assert (row.display_name, row.email) == (copied, ("l" * 300)[:256]), "made to fit, for the reports"
    store.close()


@pytest.mark.both_databases
def test_a_database_session_in_another_time_zone_does_not_send_an_expiry_reminder_again(
    build_app: AppFactory, slapd: Slapd, backing: Backing
) -> None:
    """The reminder's once-ever key spelled the password's change time in the database session's time zone.

    PostgreSQL hands times back in the session's zone: a worker on a host
    with another PGTZ, or the database moved to a server set to another
    zone, made every reminder already sent a new key, and sent it again.
    """
    app = build_app(slapd, **EMAIL_ENV)
    achen = account_of(app, "achen")
    sync(app)
    queue_job(app)
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 1

    elsewhere = backing.database_url
    if elsewhere.startswith("postgresql"):
        elsewhere += "?options=-c%20TimeZone%3DPacific%2FKiritimati"
    other = build_app(slapd, SSPM_DATABASE_URL=elsewhere, **EMAIL_ENV)
    queue_job(other)
    run_housekeeping(other)
    assert len(to(backing.mailbox, achen)) == 1, "the same reminder went again"
