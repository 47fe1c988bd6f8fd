"""Granting roles and reading the audit trail in the staff console: the use cases (no Flask).

Every decision is taken on the grants the store holds now (the member
handed in comes from ``sspm.web.staff.staff_member``, re-read on each
request), never on what a page offered: a form lists only what
``roles.may_grant`` allows, and the use cases here, then
``sspm.account.staff``, check again.

A person the member may not give roles to (outside their organizations,
or whose roles equal or outrank theirs) gets the answer a name the
directory does not know gets; a grant outside reach, the answer a grant
that does not exist gets. Both are on the audit trail, refusals included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.directory import Account, Directory, DirectoryError
from sspm.account import audit, staff
from sspm.account.audit import Action
from sspm.account.audit_query import Event, Filter, Organizations
from sspm.account.staff import Change, Staff
from sspm.infra.store import Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.organizations import EVERY
from sspm.policy.reasons import Reason
from sspm.policy.roles import BadGrant, Grant, Permission, Role, may_act_on, may_grant, may_grant_to, reach
from sspm.web import spreadsheet
from sspm.web.spreadsheet import spreadsheet_safe as spreadsheet_safe  # re-exported: tests check it here

#: The outcome of a refusal decided here, as ``sspm.account.staff`` words its own.
REFUSED = Change.REFUSED.value

# -- who holds which role ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldGrant:
    """One grant the member may see on the roles page."""

    account_id: str
    login: str
    grant: Grant
    #: The member's own: shown, never revocable by them.
    yours: bool
    #: Whether the member may take it away (``roles.may_grant_to``).
    revocable: bool


def visible_grants(store: Store, member: Staff) -> list[HeldGrant]:
    """Every grant within the member's GRANT_ROLES reach (every one for a Super Admin), by login then role."""
    where = reach(member.grants, Permission.GRANT_ROLES)
    if where.nothing:
        return []
    seen: list[HeldGrant] = []
    for holder in staff.all_staff(store):
        for held in holder.grants:
            if not where.covers(held.organization):
                continue
            yours = holder.account_id == member.account_id
            revocable = not yours and may_grant_to(
                member.grants,
                held.role,
                held.organization,
                target_account_id=holder.account_id,
                own_account_id=member.account_id,
                target_highest_role=holder.highest_role,
            )
            seen.append(HeldGrant(holder.account_id, holder.login, held, yours, revocable))
    return seen


def revocable_grant(store: Store, member: Staff, account_id: str, role: str, organization: str) -> HeldGrant | None:
    """The grant the revoke page asks about, if it exists and the member may revoke it; else None."""
    try:
        wanted = Grant.of(role, organization)
    except ValueError:
        return None
    found = [
        held
        for held in visible_grants(store, member)
        if held.account_id == account_id and held.grant == wanted and held.revocable
    ]
    return found[0] if found else None


@dataclass(frozen=True)
class GrantChoices:
    """What the grant form offers: the roles, and the organizations (or any, for ``anywhere``)."""

    roles: tuple[Role, ...]
    organizations: tuple[str, ...]
    #: Any organization may be named: the member grants everywhere (a Super Admin).
    anywhere: bool


def grant_choices(member: Staff) -> GrantChoices:
    """Only what ``roles.may_grant`` allows this member, highest role first."""
    where = reach(member.grants, Permission.GRANT_ROLES)
    organizations = tuple(sorted(where.organizations))

    def grantable(role: Role) -> bool:
        if role is Role.SUPER_ADMIN:
            return may_grant(member.grants, role, None)
        if where.everywhere:
            # Any organization will do to ask: an everywhere cell does not depend on which.
            return may_grant(member.grants, role, "any organization")
        return any(may_grant(member.grants, role, o) for o in organizations)

    offered = tuple(r for r in sorted(Role, key=lambda r: -r.rank) if grantable(r))
    return GrantChoices(offered, organizations, where.everywhere)


def organizations_in_use(store: Store) -> list[str]:
    """Organizations some grant names already, to suggest while a Super Admin types one."""
    return sorted({g.organization for s in staff.all_staff(store) for g in s.grants} - {EVERY})


@dataclass(frozen=True)
class GrantResult:
    change: Change | None
    reason: Reason | None
    account: Account | None = None


def grant_role(
    directory: Directory,
    store: Store,
    organizations: Organizations,
    actor: Actor,
    member: Staff,
    *,
    login: str,
    role: str,
    organization: str | None,
) -> GrantResult:
    """Give the account found under ``login`` ``role`` in ``organization`` (any for a Super Admin role).

    The role and organization must be ones the member may grant; the
    account one the member reaches with GRANT_ROLES (in their
    organizations, not their own, not of their rank or above), or the
    answer is the one for a name the directory does not know.
    """
    details = {"role": role[:32], "organization": (organization or "")[:256]}
    try:
        wanted = Grant.of(role, organization)
    except (BadGrant, ValueError):
        wanted = None
    if wanted is None or not may_grant(member.grants, wanted.role, wanted.organization):
        _refused(store, Action.STAFF_GRANT, actor, details, "not_grantable", typed=login)
        return GrantResult(None, Reason.NOT_GRANTABLE)
    try:
        account = directory.find_account(logins.spelling(login))
        target_organization = organizations.of(account.id) if account is not None else None
    except DirectoryError as exc:
        return GrantResult(None, reasons.directory_failed(exc, "grant a staff role"))
    if account is None:
        _refused(store, Action.STAFF_GRANT, actor, details, "no_such_account", typed=login)
        return GrantResult(None, Reason.NO_SUCH_STAFF_TARGET)
    if account.id == member.account_id:
        _refused(store, Action.STAFF_GRANT, actor, details, "own_account", account=account)
        return GrantResult(None, Reason.OWN_GRANTS, account)
    holder = staff.staff_of(store, account.id)
    if not may_act_on(
        member.grants,
        Permission.GRANT_ROLES,
        target_organization=target_organization,
        target_account_id=account.id,
        own_account_id=member.account_id,
        target_highest_role=holder.highest_role if holder else None,
    ):
        _refused(store, Action.STAFF_GRANT, actor, details, "out_of_reach", account=account)
        return GrantResult(None, Reason.NO_SUCH_STAFF_TARGET)
    change = staff.grant(store, actor, account=account, role=wanted.role, organization=wanted.organization)
    if change is Change.REFUSED:
        # The member's grants changed since the checks above: staff.grant read them again.
        return GrantResult(change, Reason.NOT_GRANTABLE, account)
    return GrantResult(change, None, account)


@dataclass(frozen=True)
class RevokeResult:
    change: Change | None
    reason: Reason | None
    login: str = ""


def revoke_role(
    directory: Directory, store: Store, actor: Actor, member: Staff, *, account_id: str, role: str, organization: str
) -> RevokeResult:
    """Take one grant away; anything but a grant the member may revoke now is "no such grant"."""
    details = {"role": role[:32], "organization": organization[:256]}
    held = revocable_grant(store, member, account_id, role, organization)
    if held is None:
        _refused(store, Action.STAFF_REVOKE, actor, details, "no_such_grant", account_id=account_id[:64])
        return RevokeResult(None, Reason.NO_SUCH_GRANT)
    try:
        account = directory.get_account(account_id)
    except DirectoryError as exc:
        return RevokeResult(None, reasons.directory_failed(exc, "revoke a staff role"))
    if account is None:
        # Gone from the directory, grants left behind: they can still be cleaned up.
        account = Account(id=account_id, dn="", username=held.login, display_name=held.login)
    change = staff.revoke(store, actor, account=account, role=held.grant.role, organization=held.grant.organization)
    if change is not Change.REVOKED:
        return RevokeResult(change, Reason.NO_SUCH_GRANT)
    return RevokeResult(change, None, held.login)


def _refused(
    store: Store,
    action: Action,
    actor: Actor,
    details: dict[str, str],
    why: str,
    *,
    account: Account | None = None,
    account_id: str | None = None,
    typed: str | None = None,
) -> None:
    audit.record(
        store, action, REFUSED, actor=actor, account=account, account_id=account_id, typed=typed,
        details={**details, "why": why},
    )  # fmt: skip


# -- the audit trail ---------------------------------------------------------------------------------------


def audit_filter(
    directory: Directory,
    *,
    account: str,
    actor: str,
    action: str,
    outcome: str,
    since: date | None,
    until: date | None,
    timezone: str,
) -> Filter:
    """The filter as typed, names resolved through the directory; dates are whole days in ``timezone``.

    An account or actor is matched by what was typed (an id, a user name
    as the trail wrote it) and by the id of the account the directory finds
    under it, so a renamed account's older rows are found too.
    """
    zone = ZoneInfo(timezone)
    account_ids, account_names = _named(directory, account.strip())
    actor_ids, _ = _named(directory, actor.strip())
    return Filter(
        account_ids=account_ids,
        account_names=account_names,
        actor_ids=actor_ids,
        action=action or None,
        outcome=outcome.strip() or None,
        since=datetime.combine(since, time(), zone) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), zone) if until else None,
    )


def _named(directory: Directory, typed: str) -> tuple[frozenset[str], frozenset[str]]:
    if not typed:
        return frozenset(), frozenset()
    found = directory.find_account(logins.spelling(typed))
    ids = {typed} | ({found.id} if found else set())
    names = {typed} | ({found.username} if found else set())
    return frozenset(ids), frozenset(names)


def staff_logins(store: Store) -> dict[str, str]:
    """Staff members' logins by account id, to show who acted by name rather than by id."""
    return {s.account_id: s.login for s in staff.all_staff(store)}


def record_export(store: Store, actor: Actor, shown: dict[str, str]) -> None:
    """An export is itself on the trail, with the filter it was made with."""
    audit.record(store, Action.AUDIT_EXPORT, "exported", actor=actor, details={"filter": shown})


#: The export's columns, one per stored field.
CSV_COLUMNS = (
    "seq",
    "at_utc",
    "actor_kind",
    "actor_id",
    "actor_role",
    "action",
    "outcome",
    "account_id",
    "subject",
    "source_ip",
    "details",
)


def csv_lines(events: Iterable[Event]) -> Iterator[str]:
    """The export, a line at a time, through the console's one formula guard (sspm.web.spreadsheet)."""
    return spreadsheet.csv_lines(CSV_COLUMNS, (_cells(e) for e in events))


def _cells(e: Event) -> tuple[str, ...]:
    return (
        str(e.seq),
        e.at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        e.actor_kind,
        e.actor_id or "",
        e.actor_role or "",
        e.action,
        e.outcome,
        e.account_id or "",
        e.subject,
        e.source_ip,
        json.dumps(e.details, sort_keys=True, ensure_ascii=False) if e.details else "",
    )
