"""Operator commands.

``python -m sspm migrate``: create or upgrade SSPM's database schema.
``python -m sspm check``: prove the configuration, the directory, Redis
and the database all work, before serving anyone.
``python -m sspm audit verify``: walk the audit trail's hash chain and name
the first row that was altered, removed or inserted (exit code 1).
``python -m sspm audit archive --before DATE FILE``: move the trail's rows
from before DATE (UTC) into a new JSON-lines FILE, leaving a checkpoint
signed with SSPM_SECRET_KEY where the chain goes on (``audit verify`` checks
it; keep the key, and the file, as long as the trail must be kept).
``python -m sspm scheduler [--tick SECONDS]``: put the scheduled jobs
(``sspm.infra.schedule.ENTRIES``) on their queues when due; run one next to
the workers (two or more for redundancy: each job is still queued once).
``python -m sspm staff grant LOGIN ROLE [--organization ORG]``, ``staff revoke
...``, ``staff list`` and ``staff reset-2fa LOGIN`` (a lost authenticator): the
first Super Admin (and any grant) from the
server's command line, audited with the operator's OS user as the actor;
every later grant can be made in the console.
``python -m sspm health worker [QUEUE ...] [--anywhere]`` and ``health
scheduler [--anywhere]``: exit 0 with a line when a worker (serving those
queues) or a scheduler of this host (of any, with --anywhere) is alive, from
the heartbeats they keep in Redis; exit 1 with a line when none is.

What is typed is checked before anyone is asked: a login or organization
longer than the web forms take (``logins.MAX_LENGTH``, ``organizations.MAX_LENGTH``),
empty, with control characters or not UTF-8 is refused in one line (exit 2),
and a refused argument is quoted only in part.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import math
import signal
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from connectors.directory import Account, DirectoryError
from sspm.account import audit, sessions, staff
from sspm.account.audit import check_chain
from sspm.infra import jobs, liveness, logs, metrics, schedule
from sspm.infra import settings as settings_module
from sspm.infra.services import Services, build
from sspm.infra.settings import ConfigError
from sspm.infra.state import StateUnavailable
from sspm.infra.store import Store, head_revision, migrate, unusable
from sspm.policy import logins, organizations
from sspm.policy.actor import Actor
from sspm.policy.realm import Realm
from sspm.policy.roles import BadGrant, Role

#: The scheduler's longest tick: an entry is queued at most this late into its slot (the shortest is minutes).
LONGEST_TICK = 60.0
#: How much of a refused argument a message quotes.
GLIMPSE = 40


def _tick(text: str) -> float:
    """A tick in seconds, above 0 and at most LONGEST_TICK.

    0 or less made the loop spin a CPU, NaN and infinity ended it with a
    traceback at its first tick, and a tick longer than an entry's period
    skips that entry's runs.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= LONGEST_TICK:  # NaN fails every comparison
        raise argparse.ArgumentTypeError(
            f"{_glimpse(text)} is not a number of seconds above 0 and at most {LONGEST_TICK:g}"
        )
    return seconds


def _day(text: str) -> date:
    """A day as YYYY-MM-DD (what ``audit archive --before`` takes)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_glimpse(text)} is not a day written YYYY-MM-DD") from None


def _glimpse(text: str) -> str:
    """``text`` as a message quotes it: an argument can be a whole pasted page, and its line must stay one line."""
    return repr(text) if len(text) <= GLIMPSE else f"{text[:GLIMPSE]!r}... ({len(text)} characters)"


def _unfit(text: str, what: str, longest: int) -> str | None:
    """Why ``text`` cannot be any account's ``what`` (one line), or None; asked before the directory is.

    Bounded as the web forms bound it (a 100,000-character login once came back as "the directory
    stopped answering", which sent the operator after the wrong server), and refused when it holds
    what nobody's can: control characters, or bytes that are not UTF-8 (a traceback, otherwise).
    """
    if not text.strip():
        return f"sspm: the {what} is empty: give it as it is written in the directory"
    if len(text) > longest:
        return (
            f"sspm: the {what} has {len(text)} characters, more than the {longest} any can have: check what was pasted"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"sspm: the {what} {_glimpse(text)} is not UTF-8 text: check the terminal's encoding (LANG)"
    if any(unicodedata.category(char) == "Cc" for char in text):
        return f"sspm: the {what} {_glimpse(text)} holds control characters (a line break, a tab): type it again"
    return None


def build_parser() -> argparse.ArgumentParser:
    """Every command and its arguments (deploy/'s units are checked against it: test_deployment_files.py)."""
    parser = argparse.ArgumentParser(prog="python -m sspm")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="prove the settings, the directory, Redis and the database work")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    audit_parser = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True)
    audit_commands.add_parser("verify", help="walk the hash chain and report the first break")
    archive = audit_commands.add_parser("archive", help="move old rows to a file, leaving a signed checkpoint")
    archive.add_argument("--before", required=True, type=_day, help="the rows before this day (UTC)")
    archive.add_argument("file", type=Path, help="a new JSON-lines file for the rows")
    archived = audit_commands.add_parser(
        "verify-archive", help="check archive files, oldest first, against each other and the trail's checkpoint"
    )
    archived.add_argument("files", type=Path, nargs="+", help="the archive files, in the order they were made")
    scheduler = commands.add_parser("scheduler", help="queue the scheduled jobs when they fall due")
    scheduler.add_argument(
        "--tick", type=_tick, default=schedule.TICK_SECONDS, help=f"seconds between looks (at most {LONGEST_TICK:g})"
    )
    staff_parser = commands.add_parser("staff", help="staff roles: grant, revoke, list")
    staff_commands = staff_parser.add_subparsers(dest="staff_command", required=True)
    for name, says in (("grant", "give a directory account a staff role"), ("revoke", "take a staff role away")):
        one = staff_commands.add_parser(name, help=says)
        one.add_argument("login", help="the account's email or user name, as they sign in with")
        one.add_argument("role", choices=[role.value for role in Role])
        one.add_argument("--organization", help="the organization the role is for (every role but super-admin)")
    staff_commands.add_parser("list", help="everyone holding a staff role")
    reset = staff_commands.add_parser(
        "reset-2fa", help="forget a staff member's authenticator and recovery codes; they enroll again at sign-in"
    )
    reset.add_argument("login")
    health = commands.add_parser("health", help="is a worker or the scheduler alive (exit 0) or not (exit 1)")
    health.add_argument("process", choices=("worker", "scheduler"))
    health.add_argument("queues", nargs="*", help=f"worker: serving all of these ({', '.join(jobs.QUEUES)})")
    health.add_argument("--anywhere", action="store_true", help="on any host, not only this one")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        settings = settings_module.load()
        logs.setup(settings.log_format, settings.log_level)  # what the commands log, as the app and worker do
        if arguments.command == "staff":
            return staff_command(arguments)
        if arguments.command == "health":
            return health_command(settings.redis_url, arguments)
        if arguments.command == "scheduler":
            metrics.serve(settings_module.load(), None, ())  # its own /metrics, if SSPM_METRICS_PORT is set
            return run_scheduler(settings_module.load().redis_url, arguments.tick)
        if arguments.command == "migrate":
            migrate(settings_module.load().database_url)
            print("sspm: database schema is current")
            return 0
        if arguments.command == "audit" and arguments.audit_command == "archive":
            return archive_audit(settings_module.load(), arguments.before, arguments.file)
        if arguments.command == "audit" and arguments.audit_command == "verify-archive":
            return verify_archive_files(settings_module.load(), arguments.files)
        if arguments.command == "audit":
            settings = settings_module.load()
            return verify_audit(settings.database_url, settings.secret_key)
        build(settings_module.load()).close()  # what the web app and the worker build, without either
    except (ConfigError, DirectoryError, StateUnavailable) as exc:
        print(f"sspm: cannot start: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # the commands that open the store themselves (migrate, audit)
        print(f"sspm: cannot start: {unusable(exc)}", file=sys.stderr)
        return 2
    print("sspm: configuration, directory, Redis and database OK")
    return 0


def staff_command(arguments: argparse.Namespace) -> int:
    """Grant, revoke or list staff roles, as the operator at this server's console."""
    refusal = None
    if arguments.staff_command != "list":
        refusal = _unfit(arguments.login, "login", logins.MAX_LENGTH)
    if refusal is None and getattr(arguments, "organization", None) is not None:
        refusal = _unfit(arguments.organization, "organization", organizations.MAX_LENGTH)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    services = build(settings_module.load())
    try:
        if arguments.staff_command == "list":
            for member in staff.all_staff(services.store):
                held = ", ".join(f"{g.role.value} ({_where(g.organization)})" for g in member.grants)
                second = "TOTP set up" if member.totp_confirmed else "no TOTP yet"
                print(f"{member.login}\t{held}\t{second}")
            return 0
        account = services.directory.find_account(logins.spelling(arguments.login))
        if account is None:
            print(f"sspm: no account {arguments.login!r} in the directory", file=sys.stderr)
            return 1
        if arguments.staff_command == "reset-2fa":
            return _reset_second_factor(services, account)
        act = staff.grant if arguments.staff_command == "grant" else staff.revoke
        try:
            done = act(
                services.store,
                Actor.operator(getpass.getuser()),
                account=account,
                role=arguments.role,
                organization=arguments.organization,
            )
        except BadGrant:
            print(f"sspm: {arguments.role} is granted in an organization: add --organization", file=sys.stderr)
            return 2
        where = "*" if arguments.role == Role.SUPER_ADMIN else organizations.key(arguments.organization)
        print(f"sspm: {done.value}: {arguments.role} in {_where(where)} for {account.username} ({account.id})")
        return 0
    finally:
        services.close()


def _reset_second_factor(services: Services, account: Account) -> int:
    member = staff.staff_of(services.store, account.id)
    if member is None:
        print(f"sspm: {account.username} holds no staff role", file=sys.stderr)
        return 1
    staff.reset_second_factor(services.store, member, actor=Actor.operator(getpass.getuser()))
    ended = sessions.end_all(services.state, account.id, Realm.STAFF)
    print(f"sspm: {account.username} enrolls a new authenticator at the next sign-in; {ended} staff session(s) ended")
    return 0


def _where(organization: str) -> str:
    return "every organization" if organization == "*" else organization


def health_command(redis_url: str, arguments: argparse.Namespace) -> int:
    """0 and a line when a worker (serving those queues) or a scheduler is alive, 1 and a line when none is."""
    from redis.exceptions import RedisError

    from sspm.infra import redisconn

    unknown = [name for name in arguments.queues if name not in jobs.QUEUES]
    if (arguments.process == "scheduler" and arguments.queues) or unknown:
        print(f"sspm: no queue {_glimpse((unknown or arguments.queues)[0])} to ask about", file=sys.stderr)
        return 2
    connection = redisconn.connect(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        if arguments.process == "worker":
            verdict = liveness.workers(connection, tuple(arguments.queues), anywhere=arguments.anywhere)
        else:
            verdict = liveness.schedulers(connection, anywhere=arguments.anywhere)
    except RedisError as exc:
        print(f"sspm: cannot tell, Redis does not answer: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    print(verdict.line, file=sys.stdout if verdict.alive else sys.stderr)
    return 0 if verdict.alive else 1


def run_scheduler(redis_url: str, tick: float) -> int:
    """The scheduler loop, until SIGTERM or Ctrl-C; it needs Redis only, not the directory."""
    from sspm.infra import redisconn

    connection = redisconn.connect(redis_url, socket_timeout=5, socket_connect_timeout=5)
    loop = schedule.Scheduler(connection, name=liveness.scheduler_name(), tick_seconds=tick)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: loop.stop.set())
    names = ", ".join(f"{e.name} every {e.every_seconds} s" for e in loop.entries) or "nothing scheduled"
    logging.getLogger("sspm.scheduler").info("Scheduler %s: %s", loop.name, names)
    loop.run()
    connection.close()
    return 0


@contextmanager
def _current_store(database_url: str) -> Iterator[Store]:
    """The store, once its schema is known to be the code's (ConfigError otherwise), closed after."""
    store = Store(database_url)
    try:
        if store.revision() != head_revision():
            raise ConfigError("the database schema is not current: run `python -m sspm migrate`")
        yield store
    finally:
        store.close()


def archive_audit(settings: settings_module.Settings, before: date, into: Path) -> int:
    """0 when archived (or nothing was old enough); 1 if refused (file exists, trail does not verify)."""
    with _current_store(settings.database_url) as store:
        moment = datetime.combine(before, time.min, tzinfo=UTC)
        try:
            done = audit.archive(
                store, moment, into, secret_key=settings.secret_key, actor=Actor.operator(getpass.getuser())
            )
        except audit.ArchiveRefused as exc:
            print(f"sspm: not archived: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:  # nothing was deleted: the rows go only once the file is on disk
            print(f"sspm: not archived: {into} cannot be written: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if done is None:
        print(f"sspm: no audit row before {before} to archive")
        return 0
    print(f"sspm: {done.rows} audit rows (to row {done.last_seq}) archived into {into}, sha256 {done.file_sha256}")
    return 0


def verify_archive_files(settings: settings_module.Settings, files: list[Path]) -> int:
    """0 when the files and the trail's checkpoint agree; 1 with what does not."""
    with _current_store(settings.database_url) as store:
        rows, wrong = audit.verify_archives(store, files, secret_key=settings.secret_key)
    if wrong is not None:
        print(f"sspm: the audit archive does not verify: {wrong}", file=sys.stderr)
        return 1
    print(f"sspm: audit archive intact: {rows} rows in {len(files)} files, chained to the trail's checkpoint")
    return 0


def verify_audit(database_url: str, secret_key: str | None = None) -> int:
    """0 when the chain holds from its first row to its head; 1 at the first break; 2 if it cannot be read."""
    with _current_store(database_url) as store:
        rows, broken = check_chain(store, secret_key)
    if broken is not None:
        print(f"sspm: the audit trail was tampered with: {broken}", file=sys.stderr)
        return 1
    print(f"sspm: audit trail intact: {rows} rows, each one chained to the one before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
