"""Directory sync: a copy of every account's standing in SSPM's store, for reports and reminders.

Reports (who is locked, whose password expires, who never enrolled) and
bulk reminders would otherwise read the whole directory on every page
view. Instead ``directory_account`` holds what the directory said at the
last sync, plus two facts only SSPM knows (``enrolled``, ``set_up``).

The copy NEVER replaces the directory for a decision. Sign-in, reset,
unlock, set-up, helpdesk actions and every check of a standing ask the
directory at the moment of acting; a row here may be minutes old (an
account locked a second ago shows unlocked), and a reminder job re-reads
the account before it says anything that depends on its state.

Two runs, both on the ``sync`` queue:

* The full sync (:func:`sync_all`) streams ``all_accounts(page_size)`` and
  upserts each page in a transaction of its own: memory holds one page,
  however big the directory. Accounts not seen by a pass that ended get
  ``gone_at`` (flagged, not deleted: a report can say who left, and an
  account that comes back is unflagged). A pass killed halfway flags
  nothing; the next one redoes everything (upserts are idempotent).
* The incremental sync (:func:`sync_changes`) reads ``changes_since`` the
  stored checkpoint. The connector takes the new checkpoint *before* it
  reads, so a change during the read comes again next time; SSPM stores it
  only after the last batch committed, so a run killed halfway starts over
  from the old one. A checkpoint from another server (another OpenLDAP
  provider's CSN, an AD DC restored or replaced: a new invocationId) makes
  the connector return every account: slower, never wrong. Deletions never
  come this way; the next full sync flags them. What time alone changes
  comes too where the connector can tell (on AD: a lock that ran out, an
  account whose accountExpires came, since the checkpoint; on OpenLDAP, a
  lock whose pwdLockoutDuration ran out).

Either run, when it sees an account the copy held enabled turned off in the
directory (disabled; or, for the full sync, gone), ends every session of
that account in both realms before the batch commits. The directory refuses
the account's password from then on, but a console or self-service session
signed in before would live on to its timeout: a leaver whose account IT
disabled kept unlocking accounts for up to 15 minutes (8 h if active). What
is left is the time until the next run: up to one incremental interval for
a disable, up to the next full sync for a deletion.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    String,
    any_,
    bindparam,
    column,
    literal,
    select,
    table,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from connectors.directory import AccountDetails, SyncReader
from sspm.account import audit, sessions
from sspm.account.audit import Action
from sspm.infra import jobs
from sspm.infra.state import State
from sspm.infra.store import AuditEvent, DirectoryAccount, Enrollment, PersonRecord, Store, SyncCheckpoint, utcnow
from sspm.policy.actor import Actor
from sspm.policy.organizations import organization_of
from sspm.policy.realm import Realm

if TYPE_CHECKING:
    from sspm.infra.services import Services

log = logging.getLogger(__name__)

#: Accounts read per LDAP page, and upserted per transaction.
PAGE_SIZE = 500
#: The name the incremental sync's checkpoint is stored under.
CHECKPOINT = "directory"
#: sspm.people's status of a record still in use (not imported: people is a feature above this layer).
_ACTIVE_RECORD = "active"
#: Who ends the sessions of an account the directory turned off, in the audit trail.
SYNC_ACTOR = Actor.job("directory-sync")

#: What an account's organization is (sspm.policy.organizations.organization_of, configured).
OrganizationOf = Callable[[AccountDetails], str | None]


@dataclass(frozen=True)
class SyncResult:
    """What one run did: its counts, for the job's outcome and the bench."""

    seen: int
    batches: int
    #: The most accounts held at once: one page, whatever the directory's size.
    largest_batch: int
    #: Accounts flagged gone by this (full) run.
    gone: int
    seconds: float

    def outcome(self) -> str:
        return f"seen {self.seen}, gone {self.gone}, {self.batches} batches"


def sync_all(
    store: Store,
    directory: SyncReader,
    organization: OrganizationOf,
    *,
    page_size: int = PAGE_SIZE,
    after_batch: Callable[[int], None] | None = None,
    state: State | None = None,
) -> SyncResult:
    """Copy every account, then flag those this pass did not see as gone (and, with ``state``, end their sessions)."""
    started, clock = utcnow(), time.perf_counter()
    accounts = directory.all_accounts(page_size=page_size)
    seen, batches, largest = _copy(store, accounts, organization, page_size, after_batch, state)
    with store.session() as session:
        flagged = session.execute(
            update(DirectoryAccount)
            .where(DirectoryAccount.last_seen_at < started, DirectoryAccount.gone_at.is_(None))
            .values(gone_at=started)
            .returning(DirectoryAccount.account_id, DirectoryAccount.login)
        )
        left = [(account_id, login) for account_id, login in flagged]
        gone = len(left)
        ended = _end_sessions(state, left)
    _record_ended(store, ended, "gone")
    return SyncResult(seen, batches, largest, gone, time.perf_counter() - clock)


def sync_changes(
    store: Store,
    directory: SyncReader,
    organization: OrganizationOf,
    *,
    page_size: int = PAGE_SIZE,
    after_batch: Callable[[int], None] | None = None,
    state: State | None = None,
) -> SyncResult:
    """Copy what changed since the stored checkpoint; store the new one once all of it is committed."""
    clock = time.perf_counter()
    with store.session() as session:
        checkpoint = session.scalar(select(SyncCheckpoint.value).where(SyncCheckpoint.name == CHECKPOINT))
    changes = directory.changes_since(checkpoint, page_size=page_size)
    seen, batches, largest = _copy(store, changes.accounts, organization, page_size, after_batch, state)
    with store.session() as session:
        row = session.get(SyncCheckpoint, CHECKPOINT)
        if row is None:
            session.add(SyncCheckpoint(name=CHECKPOINT, value=changes.checkpoint, updated_at=utcnow()))
        else:
            row.value, row.updated_at = changes.checkpoint, utcnow()
    return SyncResult(seen, batches, largest, 0, time.perf_counter() - clock)


def _copy(
    store: Store,
    accounts: Iterator[AccountDetails],
    organization: OrganizationOf,
    page_size: int,
    after_batch: Callable[[int], None] | None,
    state: State | None,
) -> tuple[int, int, int]:
    seen = batches = largest = 0
    writer: _Writer | None = None
    while batch := list(itertools.islice(accounts, page_size)):
        with store.session() as session:
            writer = writer or _Writer(session.connection().dialect)
            # Ended before the batch commits: if Redis cannot be reached the batch fails and comes again next run.
            ended = _end_sessions(state, writer.turned_off(session, batch) if state is not None else [])
            # The time of the batch, not of the run: a concurrent incremental run never dates a row before this pass.
            writer.upsert(session, batch, organization, utcnow())
        _record_ended(store, ended, "disabled")
        seen, batches, largest = seen + len(batch), batches + 1, max(largest, len(batch))
        if after_batch is not None:
            after_batch(batches)
    return seen, batches, largest


_TABLE = DirectoryAccount.metadata.tables[DirectoryAccount.__tablename__]
#: directory_account's columns, in the order :func:`_row` gives their values.
_COLUMNS = tuple(_TABLE.columns)
if [column.name for column in _COLUMNS] != [
    *("account_id", "login", "display_name", "email", "phone", "organization", "disabled", "locked", "locked_since"),
    *("failures", "password_changed_at", "expires_at", "must_change", "enrolled", "set_up", "last_seen_at", "gone_at"),
]:
    raise RuntimeError("directory_account's columns changed: change sspm.account.sync._row with them")
#: last_seen_at's place: it and gone_at are the same for every account of a batch.
_SEEN_AT = 15
#: On PostgreSQL, the temporary table (one per connection, emptied at each commit) a page is COPYed into.
_STAGE = "sync_directory_page"


class _Writer:
    """One page's upsert, made once per run: SQLAlchemy's own compiled SQL and bind processors, the driver's bulk path.

    SQLAlchemy's executemany (Core or ORM) builds and processes a dict per
    row on every call; that was more than half of what a full sync added to
    the directory read. Here each value goes through its column type's own
    bind processor (SQLite's stored format for times) and no further, so the
    rows are exactly those SQLAlchemy would write. On SQLite they go to the
    driver's executemany of the compiled upsert; on PostgreSQL (psycopg) they
    are COPYed into a temporary table and merged by one INSERT ... SELECT ...
    ON CONFLICT, which costs the client 40 % less than psycopg's executemany
    and the server one statement a page instead of one a row.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._names = [column.name for column in _COLUMNS]
        self._among = _in_array if dialect.name == "postgresql" else _in_list
        processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in _COLUMNS]
        #: The texts a directory may hold longer than their column (OpenLDAP bounds no displayName, mail or
        #: telephoneNumber), or with a NUL in them (slapd takes one in a displayName): cut to fit and the NULs
        #: dropped, as PostgreSQL refuses the whole page otherwise, and every run after it fails too.
        self._texts = [
            (i, column.type.length)
            for i, column in enumerate(_COLUMNS)
            if isinstance(column.type, String) and column.type.length and not column.primary_key
        ]
        self._stamp = processors[_SEEN_AT] or _same
        #: The per-account values to process (the time of the batch is processed once, in :meth:`upsert`).
        self._processed = [(i, processor) for i, processor in enumerate(processors) if processor and i < _SEEN_AT]
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        statement = insert(_TABLE)
        kept = {column.name: statement.excluded[column.name] for column in _COLUMNS if not column.primary_key}
        self._copy: tuple[str, str, str] | None = None
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            staged = table(_STAGE, *(column(name) for name in self._names))
            merge = statement.from_select(self._names, select(*staged.c))
            self._copy = (
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (LIKE {_TABLE.name}) ON COMMIT DELETE ROWS",
                f"COPY {_STAGE} ({', '.join(self._names)}) FROM STDIN",
                str(merge.on_conflict_do_update(index_elements=["account_id"], set_=kept).compile(dialect=dialect)),
            )
        one_row = statement.values({name: bindparam(name) for name in self._names})
        compiled = one_row.on_conflict_do_update(index_elements=["account_id"], set_=kept).compile(dialect=dialect)
        self._sql = compiled.string
        # A positional paramstyle (SQLite's qmark) takes the values in the compiled order (the table's: checked).
        if compiled.positiontup is not None and list(compiled.positiontup) != self._names:
            raise RuntimeError(f"unexpected order of parameters: {compiled.positiontup}")
        self._named = compiled.positiontup is None

    def turned_off(self, session: Session, batch: Sequence[AccountDetails]) -> list[tuple[str, str]]:
        """The accounts of this batch the directory now calls disabled and the copy still held enabled."""
        off = {found.id: found.login for found in batch if found.disabled}
        if not off:
            return []
        t = DirectoryAccount
        held = session.scalars(
            select(t.account_id).where(
                self._among(t.account_id, sorted(off)), t.disabled.is_(False), t.gone_at.is_(None)
            )
        )
        return [(account_id, off[account_id]) for account_id in held]

    def upsert(
        self, session: Session, batch: Sequence[AccountDetails], organization: OrganizationOf, seen_at: datetime
    ) -> None:
        enrolled, awaiting = _known_to_sspm(session, [found.id for found in batch], self._among)
        stamp, processed = self._stamp(seen_at), self._processed
        rows: list[list[Any]] = []
        for found in batch:
            values = _row(found, organization(found), found.id in enrolled, found.id in awaiting, stamp)
            for index, length in self._texts:
                text = values[index]
                if isinstance(text, str) and (len(text) > length or "\x00" in text):
                    values[index] = text.replace("\x00", "")[:length]
            for index, processor in processed:
                if values[index] is not None:
                    values[index] = processor(values[index])
            rows.append(values)
        connection = session.connection()
        if self._copy is not None:
            create, copy, merge = self._copy
            connection.exec_driver_sql(create)
            with connection.connection.driver_connection.cursor().copy(copy) as stream:  # type: ignore[union-attr]
                for values in rows:
                    stream.write_row(values)
            connection.exec_driver_sql(merge)
        elif self._named:
            connection.exec_driver_sql(self._sql, [dict(zip(self._names, values, strict=True)) for values in rows])
        else:
            connection.exec_driver_sql(self._sql, [tuple(values) for values in rows])


def _same(value: object) -> object:
    return value


def _end_sessions(state: State | None, accounts: Sequence[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """End every session, in both realms, of these (id, login) accounts; how many each had."""
    if state is None:
        return []
    return [
        (account_id, login, sum(sessions.end_all(state, account_id, realm) for realm in Realm))
        for account_id, login in accounts
    ]


def _record_ended(store: Store, ended: Sequence[tuple[str, str, int]], why: str) -> None:
    """One SESSIONS_ENDED row per account that had any: an account turned off with none signed in is no event."""
    for account_id, login, count in ended:
        if count:
            details = {"why": why}
            audit.record(
                store,
                Action.SESSIONS_ENDED,
                str(count),
                actor=SYNC_ACTOR,
                account_id=account_id,
                username=login,
                details=details,
            )


#: What :func:`_known_to_sspm` tags each account id with.
_ENROLLED, _PENDING = "enrolled", "pending"


def _known_to_sspm(
    session: Session, ids: list[str], among: Callable[[Any, list[str]], ColumnElement[bool]]
) -> tuple[set[str], set[str]]:
    """Of these accounts, the enrolled ones and those awaiting set-up, in one round trip (usually).

    Awaiting set-up is sspm.people's rule: an account SSPM provisioned whose
    owner has not chosen a first password yet, i.e. a record in use with no
    ``set_up_at`` and no successful set-up in the audit trail; the caller
    also wants the account still disabled, as an account someone made
    usable otherwise is set up all the same.
    """
    enrolled_or_pending: CompoundSelect[str | None, str] = union_all(
        select(Enrollment.account_id, literal(_ENROLLED)).where(among(Enrollment.account_id, ids)),
        select(PersonRecord.account_id, literal(_PENDING)).where(
            among(PersonRecord.account_id, ids),
            PersonRecord.status == _ACTIVE_RECORD,
            PersonRecord.set_up_at.is_(None),
        ),
    )
    enrolled: set[str] = set()
    pending: set[str] = set()
    for account_id, what in session.execute(enrolled_or_pending):
        if account_id is not None:
            (enrolled if what == _ENROLLED else pending).add(account_id)
    if not pending:
        return enrolled, pending
    done = session.scalars(
        select(AuditEvent.account_id).where(
            among(AuditEvent.account_id, sorted(pending)),
            AuditEvent.action == Action.SETUP.value,
            AuditEvent.outcome == "ok",
        )
    )
    return enrolled, pending - set(done)


def _in_list(column: Any, ids: list[str]) -> ColumnElement[bool]:
    return cast("ColumnElement[bool]", column.in_(ids))


def _in_array(column: Any, ids: list[str]) -> ColumnElement[bool]:
    """PostgreSQL: one array parameter (an IN list is a statement of 500 parameters to parse and plan, each page)."""
    ids_array = bindparam("ids", ids, type_=postgresql.ARRAY(String), unique=True)
    return cast("ColumnElement[bool]", column == any_(ids_array))


def _row(found: AccountDetails, organization: str | None, enrolled: bool, awaiting: bool, seen_at: object) -> list[Any]:
    """The account's values, in :data:`_COLUMNS`' order (``seen_at`` as the driver takes it)."""
    return [
        found.id,
        found.login,
        found.display_name,
        found.email,
        found.phone,
        organization,
        found.disabled,
        found.locked,
        found.locked_since,
        found.failures,
        found.password_set_at,
        found.expires_at,
        found.must_change,
        enrolled,
        not (awaiting and found.disabled),
        seen_at,
        None,
    ]


def organization_for(the: Services) -> OrganizationOf:
    """The configured way of telling an account's organization."""
    source, base_dn = the.settings.organization_from, the.settings.directory.base_dn
    return lambda found: organization_of(found, source, base_dn)


# -- jobs (queue: jobs.SYNC) ------------------------------------------------------------------------------


@jobs.job
def full_sync(the: Services) -> str:
    """The scheduled full pass: every account, and the gone ones flagged."""
    result = sync_all(the.store, the.directory, organization_for(the), state=the.state)
    log.info("full sync: %s in %.1f s", result.outcome(), result.seconds)
    return result.outcome()


@jobs.job
def incremental_sync(the: Services) -> str:
    """The scheduled pass every few minutes: what changed since the last checkpoint."""
    result = sync_changes(the.store, the.directory, organization_for(the), state=the.state)
    log.info("incremental sync: %s in %.1f s", result.outcome(), result.seconds)
    return result.outcome()
