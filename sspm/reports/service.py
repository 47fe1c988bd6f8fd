"""The console's reports: who is locked, expiring, expired, not enrolled, not set up; recent resets and unlocks.

Every account report reads the synced table (``directory_account``, kept
by sspm.account.sync), never the directory: one indexed query per page,
so a report over 100,000 accounts answers in milliseconds (bench/reports.py),
and what it shows may be minutes old, which the page says. The resets and
unlocks report reads the audit trail, each row's organization taken from
the synced table.

Scope: the HELPDESK permission's reach (sspm.policy.roles.reach): a Super
Admin every organization and accounts in none, an Admin and a Helpdesk
agent their own organizations; it is a WHERE clause of the query itself,
so an organization out of reach never appears, not even in a count.
Reports are what a helpdesk acts on (who to unlock, who to remind), hence
HELPDESK rather than AUDIT_VIEW, whose Helpdesk scope is only one's own work.

Pages are keyset (login then id; the trail by ``seq``), so page 1,000 costs
what page 1 does, and rows added meanwhile never shift a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, false, func, select, true, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from sspm.account import audit
from sspm.account.audit import Action
from sspm.infra.store import AuditEvent, DirectoryAccount, Store
from sspm.policy.actor import Actor
from sspm.policy.organizations import key
from sspm.policy.roles import Reach
from sspm.web.numbers import whole_number

PAGE_SIZE = 50
#: Rows read at a time by an export (constant memory over any number).
EXPORT_PAGE = 1000
DEFAULT_DAYS = 14
MAX_DAYS = 3650


class Kind(StrEnum):
    LOCKED = "locked"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    NOT_ENROLLED = "not-enrolled"
    NOT_SET_UP = "not-set-up"
    RECOVERIES = "recoveries"

    @property
    def uses_days(self) -> bool:
        """Expiring within N days; resets and unlocks of the last N days."""
        return self in (Kind.EXPIRING, Kind.RECOVERIES)


class Method(StrEnum):
    QUESTIONS = "questions"
    EMAIL_LINK = "email-link"
    HELPDESK = "helpdesk"


#: The trail's actions the resets-and-unlocks report counts, each with how it was done and what it did.
RECOVERY_ACTIONS: dict[str, tuple[Method, str]] = {
    Action.FORGOT_RESET.value: (Method.QUESTIONS, "reset"),
    Action.UNLOCK.value: (Method.QUESTIONS, "unlock"),
    Action.RESET_BY_EMAIL.value: (Method.EMAIL_LINK, "reset"),
    Action.HELPDESK_RESET.value: (Method.HELPDESK, "reset"),
    Action.HELPDESK_UNLOCK.value: (Method.HELPDESK, "unlock"),
}
#: The outcome of a reset or unlock that happened (sspm.account.aftermath records it).
DONE = "ok"


@dataclass(frozen=True)
class Query:
    kind: Kind
    #: One organization (``key`` form) or None for every one in reach.
    organization: str | None = None
    days: int = DEFAULT_DAYS
    #: Keyset: the last row of the previous page (login and id; or the trail's seq as text).
    after_login: str | None = None
    after_id: str | None = None


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    login: str
    display_name: str
    organization: str | None
    email: str | None
    disabled: bool
    locked_since: datetime | None
    failures: int
    expires_at: datetime | None


@dataclass(frozen=True)
class RecoveryRow:
    seq: int
    at: datetime
    account_id: str | None
    login: str
    organization: str | None
    method: Method
    what: str
    actor_kind: str


@dataclass(frozen=True)
class Page:
    rows: list[AccountRow] | list[RecoveryRow]
    #: The query for the next page, None on the last.
    more: Query | None


def _scope(column: InstrumentedAttribute[str | None], where: Reach, organization: str | None) -> ColumnElement[bool]:
    """The reach and the chosen organization as one WHERE clause (an organization out of reach: nothing)."""
    if organization is not None:
        return column == key(organization) if where.covers(organization) else false()
    if where.everywhere:
        return true()
    return column.in_(sorted(where.organizations)) if where.organizations else false()


def _accounts(query: Query, where: Reach, now: datetime) -> Select[DirectoryAccount]:
    t = DirectoryAccount
    condition: ColumnElement[bool] = {
        Kind.LOCKED: t.locked.is_(True),
        Kind.EXPIRING: and_(t.expires_at > now, t.expires_at <= now + timedelta(days=query.days)),
        Kind.EXPIRED: t.expires_at <= now,
        Kind.NOT_ENROLLED: and_(t.enrolled.is_(False), t.set_up.is_(True), t.disabled.is_(False)),
        Kind.NOT_SET_UP: t.set_up.is_(False),
    }[query.kind]
    statement = select(t).where(t.gone_at.is_(None), condition, _scope(t.organization, where, query.organization))
    if query.after_login is not None and query.after_id is not None:
        statement = statement.where(tuple_(t.login, t.account_id) > tuple_(query.after_login, query.after_id))
    return statement.order_by(t.login, t.account_id)


def _recoveries(query: Query, where: Reach, now: datetime) -> Select[AuditEvent, str | None, str]:
    t = DirectoryAccount
    statement = (
        select(AuditEvent, t.organization, t.login)
        .outerjoin(t, t.account_id == AuditEvent.account_id)
        .where(
            AuditEvent.action.in_(sorted(RECOVERY_ACTIONS)),
            AuditEvent.outcome == DONE,
            AuditEvent.at >= now - timedelta(days=query.days),
            _scope(t.organization, where, query.organization),
        )
    )
    after = whole_number(query.after_id)
    if after is not None:
        statement = statement.where(AuditEvent.seq < after)
    return statement.order_by(AuditEvent.seq.desc())


def _account_row(a: DirectoryAccount) -> AccountRow:
    return AccountRow(
        a.account_id,
        a.login,
        a.display_name,
        a.organization,
        a.email,
        a.disabled,
        _aware(a.locked_since),
        a.failures,
        _aware(a.expires_at),
    )


def page(store: Store, query: Query, where: Reach, *, now: datetime, size: int = PAGE_SIZE) -> Page:
    """One page of the report, within ``where``; ``more`` is the next page's query."""
    with store.session() as session:
        if query.kind is Kind.RECOVERIES:
            found = session.execute(_recoveries(query, where, now).limit(size + 1)).all()
            recoveries = [_recovery_row(e, organization, login) for e, organization, login in found[:size]]
            more = replace(query, after_id=str(recoveries[-1].seq)) if len(found) > size else None
            return Page(recoveries, more)
        accounts = [_account_row(a) for a in session.scalars(_accounts(query, where, now).limit(size + 1))]
    more = None
    if len(accounts) > size:
        accounts = accounts[:size]
        more = replace(query, after_login=accounts[-1].login, after_id=accounts[-1].account_id)
    return Page(accounts, more)


def every(store: Store, query: Query, where: Reach, *, now: datetime) -> Iterator[AccountRow | RecoveryRow]:
    """Every row of the report, a page at a time (an export of any size in constant memory)."""
    current: Query | None = replace(query, after_login=None, after_id=None)
    while current is not None:
        found = page(store, current, where, now=now, size=EXPORT_PAGE)
        yield from found.rows
        current = found.more


def organizations(store: Store, where: Reach) -> list[str]:
    """The organizations a filter may offer: those in reach that the synced table holds."""
    with store.session() as session:
        held = session.scalars(
            select(DirectoryAccount.organization)
            .where(DirectoryAccount.organization.is_not(None), DirectoryAccount.gone_at.is_(None))
            .distinct()
        )
        return sorted(o for o in held if o and where.covers(o))


def synced_at(store: Store) -> datetime | None:
    """When the table was last written: how old the reports may be."""
    with store.session() as session:
        return _aware(session.scalar(select(func.max(DirectoryAccount.last_seen_at))))


def record_export(store: Store, actor: Actor, query: Query) -> None:
    """An export is on the trail with what it was of (never its rows)."""
    details: dict[str, object] = {"report": query.kind.value, "organization": query.organization or "*"}
    if query.kind.uses_days:
        details["days"] = query.days
    audit.record(store, Action.REPORT_EXPORT, "exported", actor=actor, details=details)


# -- CSV ----------------------------------------------------------------------------------------------------

ACCOUNT_COLUMNS = (
    "account_id",
    "login",
    "display_name",
    "organization",
    "email",
    "disabled",
    "locked_since_utc",
    "failures",
    "expires_at_utc",
)
RECOVERY_COLUMNS = ("seq", "at_utc", "account_id", "login", "organization", "method", "what", "actor_kind")


def columns(kind: Kind) -> tuple[str, ...]:
    return RECOVERY_COLUMNS if kind is Kind.RECOVERIES else ACCOUNT_COLUMNS


def cells(row: AccountRow | RecoveryRow) -> tuple[str, ...]:
    if isinstance(row, RecoveryRow):
        return (
            str(row.seq),
            _utc(row.at),
            row.account_id or "",
            row.login,
            row.organization or "",
            row.method.value,
            row.what,
            row.actor_kind,
        )
    return (
        row.account_id,
        row.login,
        row.display_name,
        row.organization or "",
        row.email or "",
        "yes" if row.disabled else "no",
        _utc(row.locked_since),
        str(row.failures),
        _utc(row.expires_at),
    )


def _recovery_row(e: AuditEvent, organization: str | None, login: str | None) -> RecoveryRow:
    method, what = RECOVERY_ACTIONS[e.action]
    at = _aware(e.at)
    assert at is not None
    return RecoveryRow(e.seq, at, e.account_id, login or e.subject, organization, method, what, e.actor_kind)


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for what was stored in UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _utc(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if at else ""
