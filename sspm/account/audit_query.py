"""Reading the audit trail for the staff console: filtered, within the viewer's reach, a page at a time (no Flask).

Whoever views the trail sees only the rows their AUDIT_VIEW reach covers
(sspm.policy.roles): a Super Admin every row; an Admin the rows about
accounts of their organizations; a Helpdesk agent their own actions and
the rows about accounts they opened (their HELPDESK_VIEW rows).

Rows do not record the organization of the account they are about, and an
account can move between organizations, so an Admin's reach is decided
when reading: each account's organization is asked of the directory once
per page (or export) through :class:`Organizations`. The query narrows
what it can in SQL (own work, "about an account at all") and the rest is
checked row by row, reading at most ``scan_limit`` rows for one page: a
page may then hold fewer rows than asked, and says where to go on.

Paging is keyset on ``seq`` (newest first, ``seq < before``): a page costs
the same at the end of a trail of millions as at its start, and rows
written meanwhile never shift a page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, and_, case, false, func, literal, or_, select
from sqlalchemy.orm import aliased

from connectors.directory import AccountAdministration
from sspm.account.audit import Action, check_chain
from sspm.infra.store import AuditEvent, Store
from sspm.policy.actor import ActorKind
from sspm.policy.auditchain import Break
from sspm.policy.organizations import OrganizationSource, organization_of
from sspm.policy.roles import Reach

#: Rows read from the database at a time.
BATCH = 200
#: Rows shown on one page.
PAGE_SIZE = 50
#: Rows read at most to fill one page for a viewer whose reach is checked row by row.
SCAN_LIMIT = 1000
#: How long a verification of the hash chain is shown before it is walked again: it reads every row.
CHAIN_CHECK_SECONDS = 60.0

#: An account "opened" by a Helpdesk agent: their row of this action about it, ended this way.
OPENED_ACTION = Action.HELPDESK_VIEW
OPENED_OUTCOMES = ("shown",)


@dataclass(frozen=True)
class Filter:
    """What the viewer asked for; every part empty means every row (within reach).

    A typed account or actor is matched by id and by user name, so the
    service fills ``*_ids`` with what was typed and what the directory
    resolved it to.
    """

    account_ids: frozenset[str] = frozenset()
    #: User names (the rows' ``subject``), compared ignoring case.
    account_names: frozenset[str] = frozenset()
    actor_ids: frozenset[str] = frozenset()
    action: str | None = None
    outcome: str | None = None
    #: From this instant (inclusive) to ``until`` (exclusive), both aware.
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Viewer:
    """Who reads, and where their AUDIT_VIEW permission reaches (``roles.reach``)."""

    account_id: str
    reach: Reach


@dataclass(frozen=True)
class Event:
    """One row as the console shows and exports it."""

    seq: int
    at: datetime
    actor_kind: str
    actor_id: str | None
    actor_role: str | None
    action: str
    outcome: str
    account_id: str | None
    subject: str
    source_ip: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page, newest first."""

    events: list[Event]
    #: Give it back as ``before`` for older rows; None when nothing older is in reach.
    older: int | None
    #: How many rows were read to fill it (more than shown when some were outside the reach).
    scanned: int


class Organizations:
    """Each account's organization, asked of the directory once per instance (one page, one export).

    An account the directory no longer has is in no organization: only a
    Super Admin's reach covers its rows.
    """

    def __init__(self, directory: AccountAdministration, source: OrganizationSource, base_dn: str) -> None:
        self._directory = directory
        self._source = source
        self._base_dn = base_dn
        self._known: dict[str, str | None] = {}

    def of(self, account_id: str) -> str | None:
        if account_id not in self._known:
            details = self._directory.account_details(account_id)
            self._known[account_id] = (
                organization_of(details, self._source, self._base_dn) if details is not None else None
            )
        return self._known[account_id]


# -- reading -----------------------------------------------------------------------------------------------


def page(
    store: Store,
    viewer: Viewer,
    wanted: Filter,
    organizations: Organizations,
    *,
    before: int | None = None,
    size: int = PAGE_SIZE,
    scan_limit: int = SCAN_LIMIT,
) -> Page:
    """Up to ``size`` rows in reach matching ``wanted``, older than ``before``, newest first."""
    kept: list[Event] = []
    scanned = 0
    last_read: int | None = None
    for event, mine in _candidates(store, viewer, wanted, before):
        if scanned >= scan_limit:
            # Out of budget: the next page starts after the last row read, whatever it held.
            return Page(kept, last_read, scanned)
        scanned += 1
        last_read = event.seq
        if not _in_reach(viewer, event, mine, organizations):
            continue
        if len(kept) == size:
            return Page(kept, kept[-1].seq, scanned)
        kept.append(event)
    return Page(kept, None, scanned)


def every(store: Store, viewer: Viewer, wanted: Filter, organizations: Organizations) -> Iterator[Event]:
    """Every row in reach matching ``wanted``, newest first, read a batch at a time (for the CSV export)."""
    for event, mine in _candidates(store, viewer, wanted, None):
        if _in_reach(viewer, event, mine, organizations):
            yield event


def _in_reach(viewer: Viewer, event: Event, mine: bool, organizations: Organizations) -> bool:
    if viewer.reach.everywhere or mine:
        return True
    if not viewer.reach.organizations or event.account_id is None:
        return False
    return viewer.reach.covers(organizations.of(event.account_id))


_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor_kind,
    AuditEvent.actor_id,
    AuditEvent.actor_role,
    AuditEvent.action,
    AuditEvent.outcome,
    AuditEvent.account_id,
    AuditEvent.subject,
    AuditEvent.source_ip,
    AuditEvent.details,
)


def _candidates(store: Store, viewer: Viewer, wanted: Filter, before: int | None) -> Iterator[tuple[Event, bool]]:
    """Rows matching ``wanted`` that the reach may cover, with whether they are the viewer's own work.

    Each batch is read in a short transaction of its own, so an export
    streamed for minutes holds no transaction open.
    """
    own = _own_work(viewer) if viewer.reach.own_work and not viewer.reach.everywhere else false()
    mine = case((own, literal(1)), else_=literal(0)).label("mine")
    conditions = [*_filter_clauses(wanted), _scope_clause(viewer, own)]
    cursor = before
    while True:
        query = select(*_COLUMNS, mine).where(*conditions)
        if cursor is not None:
            query = query.where(AuditEvent.seq < cursor)
        query = query.order_by(AuditEvent.seq.desc()).limit(BATCH)
        with store.session() as session:
            rows = session.execute(query).all()
        for row in rows:
            yield _event(row), bool(row.mine)
        if len(rows) < BATCH:
            return
        cursor = rows[-1].seq


def _event(row: Any) -> Event:
    at: datetime = row.at
    return Event(
        seq=row.seq,
        # SQLite gives back the UTC wall time it was given, without its zone.
        at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        actor_role=row.actor_role,
        action=row.action,
        outcome=row.outcome,
        account_id=row.account_id,
        subject=row.subject,
        source_ip=row.source_ip,
        details=dict(row.details or {}),
    )


def _filter_clauses(wanted: Filter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if wanted.account_ids or wanted.account_names:
        clauses.append(
            or_(
                AuditEvent.account_id.in_(sorted(wanted.account_ids)),
                func.lower(AuditEvent.subject).in_(sorted(n.lower() for n in wanted.account_names)),
            )
        )
    if wanted.actor_ids:
        clauses.append(AuditEvent.actor_id.in_(sorted(wanted.actor_ids)))
    if wanted.action:
        clauses.append(AuditEvent.action == wanted.action)
    if wanted.outcome:
        clauses.append(AuditEvent.outcome == wanted.outcome)
    if wanted.since is not None:
        clauses.append(AuditEvent.at >= wanted.since.astimezone(UTC))
    if wanted.until is not None:
        clauses.append(AuditEvent.at < wanted.until.astimezone(UTC))
    return clauses


def _own_work(viewer: Viewer) -> ColumnElement[bool]:
    """The viewer's own actions, and every row about an account they opened."""
    opened = aliased(AuditEvent)
    accounts_opened = select(opened.account_id).where(
        opened.action == OPENED_ACTION.value,
        opened.outcome.in_(OPENED_OUTCOMES),
        opened.actor_kind == ActorKind.STAFF.value,
        opened.actor_id == viewer.account_id,
        opened.account_id.is_not(None),
    )
    return or_(
        and_(AuditEvent.actor_kind == ActorKind.STAFF.value, AuditEvent.actor_id == viewer.account_id),
        AuditEvent.account_id.in_(accounts_opened),
    )


def _scope_clause(viewer: Viewer, own: ColumnElement[bool]) -> ColumnElement[bool]:
    """What SQL can rule out before the organizations are checked row by row."""
    if viewer.reach.everywhere:
        return literal(True)
    parts: list[ColumnElement[bool]] = []
    if viewer.reach.own_work:
        parts.append(own)
    if viewer.reach.organizations:
        parts.append(AuditEvent.account_id.is_not(None))
    return or_(*parts) if parts else false()


# -- the chain ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainStatus:
    """Whether the hash chain held when it was last walked."""

    rows: int
    broken: Break | None
    checked_at: datetime

    @property
    def intact(self) -> bool:
        return self.broken is None


_chains: WeakKeyDictionary[Store, tuple[float, ChainStatus]] = WeakKeyDictionary()
_chains_lock = threading.Lock()


def chain_status(store: Store, *, max_age: float = CHAIN_CHECK_SECONDS) -> ChainStatus:
    """The chain's verification, walked again only when the last one is older than ``max_age`` seconds.

    Verifying reads every row (linear in the trail's length), so each page
    view must not pay for it: the result is kept for a minute per store,
    and only one request walks the chain at a time.
    """
    with _chains_lock:
        known = _chains.get(store)
        if known is not None and time.monotonic() - known[0] < max_age:
            return known[1]
        rows, broken = check_chain(store)
        status = ChainStatus(rows, broken, datetime.now(UTC))
        _chains[store] = (time.monotonic(), status)
        return status
