"""Staff roles and what each may do, where: the one permission table, and pure decisions over it.

Staff are directory accounts to whom SSPM grants roles, each (but Super
Admin's) in one organization. Every console page and use case asks the
functions here, never the role names, so the table below is the whole
policy and tests/unit/test_roles.py checks it cell by cell.

Besides the table, three rules hold for everyone, because they are how
consoles get escalated: nobody acts on their own account; nobody acts on
an account whose holder has a role equal to or above the one that gives
them the permission there (a Helpdesk agent cannot reset an Admin's
password, nor an Admin another Admin's); nobody grants a role above their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from sspm.policy.organizations import EVERY, key


class Role(StrEnum):
    """The staff roles, stored as their values in ``staff_grant.role``."""

    SUPER_ADMIN = "super-admin"
    ADMIN = "admin"
    ASSIGNING_MANAGER = "assigning-manager"
    HELPDESK = "helpdesk"

    @property
    def rank(self) -> int:
        """Higher outranks lower: who may act on, and grant to, whom."""
        return _RANK[self]


_RANK = {Role.SUPER_ADMIN: 4, Role.ADMIN: 3, Role.ASSIGNING_MANAGER: 2, Role.HELPDESK: 1}


class Permission(StrEnum):
    """What a staff member may be allowed to do."""

    #: Grant and revoke roles (which ones: :data:`GRANTABLE`).
    GRANT_ROLES = "grant-roles"
    #: The helpdesk: find and see accounts, verify callers, unlock, reset, clear enrollment.
    HELPDESK = "helpdesk"
    #: The audit trail viewer and its CSV export.
    AUDIT_VIEW = "audit-view"
    #: Create and change Employees records (reading them comes with it).
    RECORDS_EMPLOYEES = "records-employees"
    #: Create and change Clinicians records (reading them comes with it).
    RECORDS_CLINICIANS = "records-clinicians"
    #: Read records of either kind, to verify a caller.
    RECORDS_READ = "records-read"
    #: The Jobs page: the last runs of every background job. A run names no account nor organization,
    #: so reaching anywhere shows them all.
    JOBS_VIEW = "jobs-view"


class Scope(Enum):
    """How far one role's permission reaches."""

    NONE = 0
    #: Only one's own work: the audit rows of one's own actions and of the accounts one opened.
    OWN_WORK = 1
    #: The organizations the role was granted in.
    OWN_ORGANIZATIONS = 2
    #: Every organization, and accounts in none.
    EVERY_ORGANIZATION = 3


_N, _W, _O, _E = Scope.NONE, Scope.OWN_WORK, Scope.OWN_ORGANIZATIONS, Scope.EVERY_ORGANIZATION
_P = Permission

#: THE permission table (issue 12): role → permission → scope. A cell not written is NONE.
TABLE: dict[Role, dict[Permission, Scope]] = {
    Role.SUPER_ADMIN: dict.fromkeys(Permission, _E),
    Role.ADMIN: {
        _P.GRANT_ROLES: _O,
        _P.HELPDESK: _O,
        _P.AUDIT_VIEW: _O,
        _P.RECORDS_EMPLOYEES: _O,
        _P.RECORDS_CLINICIANS: _O,
        _P.RECORDS_READ: _O,
        _P.JOBS_VIEW: _O,
    },
    Role.ASSIGNING_MANAGER: {_P.RECORDS_EMPLOYEES: _O},
    Role.HELPDESK: {_P.HELPDESK: _O, _P.AUDIT_VIEW: _W, _P.RECORDS_READ: _O},
}

#: Which roles each role may grant and revoke (with GRANT_ROLES, in its scope).
GRANTABLE: dict[Role, frozenset[Role]] = {
    Role.SUPER_ADMIN: frozenset(Role),
    Role.ADMIN: frozenset({Role.HELPDESK, Role.ASSIGNING_MANAGER}),
    Role.ASSIGNING_MANAGER: frozenset(),
    Role.HELPDESK: frozenset(),
}


def scope_of(role: Role, permission: Permission) -> Scope:
    """One cell of the table."""
    return TABLE[role].get(permission, Scope.NONE)


class BadGrant(ValueError):
    """A Super Admin grant not for every organization, or another role's for "*" or for none."""


@dataclass(frozen=True, order=True)
class Grant:
    """One role in one organization (``*`` for a Super Admin, and only for one); the name as :func:`key` has it."""

    role: Role
    organization: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "organization", key(self.organization))
        if (self.role is Role.SUPER_ADMIN) != (self.organization == EVERY):
            raise BadGrant(f"{self.role.value} cannot be granted for organization {self.organization!r}")
        if not self.organization:
            raise BadGrant("a role is granted in an organization")

    @classmethod
    def of(cls, role: Role | str, organization: str | None = None) -> Grant:
        """A grant; a Super Admin's organization is always every one, whatever was passed."""
        role = Role(role)
        return cls(role, EVERY if role is Role.SUPER_ADMIN else (organization or ""))


@dataclass(frozen=True)
class Grants:
    """Everything one staff member was granted; empty for anyone else."""

    pairs: frozenset[Grant] = field(default_factory=frozenset)

    @classmethod
    def of(cls, pairs: Iterable[Grant | tuple[Role | str, str]]) -> Grants:
        return cls(frozenset(p if isinstance(p, Grant) else Grant.of(*p) for p in pairs))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __iter__(self) -> Iterator[Grant]:
        return iter(sorted(self.pairs))

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.pairs)

    @property
    def organizations(self) -> frozenset[str]:
        """The organizations named in any grant (``*`` for a Super Admin)."""
        return frozenset(g.organization for g in self.pairs)


def highest_role(grants: Grants) -> Role | None:
    """The highest-ranked role held anywhere; None for someone with no grant."""
    return max(grants.roles, key=lambda r: r.rank, default=None)


def _covers(grant: Grant, organization: str | None) -> bool:
    if grant.organization == EVERY:
        return True
    return organization is not None and key(organization) == grant.organization


def scope(grants: Grants, permission: Permission, organization: str | None) -> Scope:
    """The widest scope any grant gives for ``permission`` on an account of ``organization`` (None: of none)."""
    found = [scope_of(g.role, permission) for g in grants.pairs if _covers(g, organization)]
    return max(found, key=lambda s: s.value, default=Scope.NONE)


def may(grants: Grants, permission: Permission, organization: str | None) -> bool:
    """Whether ``permission`` covers every account of ``organization`` (OWN_WORK does not: see :func:`reach`)."""
    return scope(grants, permission, organization).value >= Scope.OWN_ORGANIZATIONS.value


def _acting_rank(grants: Grants, permission: Permission, organization: str | None) -> int:
    """The rank of the highest role that gives ``permission`` over accounts of ``organization``."""
    ranks = [
        g.role.rank
        for g in grants.pairs
        if _covers(g, organization) and scope_of(g.role, permission).value >= Scope.OWN_ORGANIZATIONS.value
    ]
    return max(ranks, default=0)


def may_act_on(
    grants: Grants,
    permission: Permission,
    *,
    target_organization: str | None,
    target_account_id: str,
    own_account_id: str,
    target_highest_role: Role | None,
) -> bool:
    """Whether a staff member may use ``permission`` on one account.

    Not their own; within the organizations the permission reaches; and the
    role that gives it there outranks every role the account's holder has
    anywhere (``target_highest_role``, None for someone who is not staff).
    """
    if target_account_id == own_account_id:
        return False
    rank = _acting_rank(grants, permission, target_organization)
    if rank == 0:
        return False
    return target_highest_role is None or Role(target_highest_role).rank < rank


def may_grant(grants: Grants, role: Role, organization: str | None) -> bool:
    """Whether these grants allow granting or revoking ``role`` in ``organization``.

    Only with GRANT_ROLES over that organization, only a role the granting
    role may give (:data:`GRANTABLE`), never a role above the granting role.
    A Super Admin role is only ever granted for every organization.
    """
    role = Role(role)
    if role is Role.SUPER_ADMIN:
        wanted = EVERY
    elif organization is None or key(organization) in ("", EVERY):
        return False
    else:
        wanted = key(organization)
    for g in grants.pairs:
        cell = scope_of(g.role, Permission.GRANT_ROLES)
        if cell is Scope.NONE or role not in GRANTABLE[g.role] or role.rank > g.role.rank:
            continue
        if cell is Scope.EVERY_ORGANIZATION or g.organization == wanted:
            return True
    return False


def may_grant_to(
    grants: Grants,
    role: Role,
    organization: str | None,
    *,
    target_account_id: str,
    own_account_id: str,
    target_highest_role: Role | None,
) -> bool:
    """:func:`may_grant`, to (or from) one person: never oneself, never someone of one's own rank or above."""
    if target_account_id == own_account_id or not may_grant(grants, role, organization):
        return False
    top = highest_role(grants)
    return top is not None and (target_highest_role is None or Role(target_highest_role).rank < top.rank)


@dataclass(frozen=True)
class Reach:
    """Where a permission reaches, for filtering a list (search results, audit rows) in the query itself."""

    #: Every organization, and accounts in none.
    everywhere: bool
    #: The organizations it reaches in whole (``key`` form).
    organizations: frozenset[str]
    #: Also (or only) one's own work: rows of one's own actions and of the accounts one opened.
    own_work: bool

    def covers(self, organization: str | None) -> bool:
        return self.everywhere or (organization is not None and key(organization) in self.organizations)

    @property
    def nothing(self) -> bool:
        return not (self.everywhere or self.organizations or self.own_work)


def reach(grants: Grants, permission: Permission) -> Reach:
    """Where ``permission`` reaches for these grants."""
    everywhere, organizations, own_work = False, set(), False
    for g in grants.pairs:
        cell = scope_of(g.role, permission)
        if cell is Scope.EVERY_ORGANIZATION:
            everywhere = True
        elif cell is Scope.OWN_ORGANIZATIONS:
            organizations.add(g.organization)
        elif cell is Scope.OWN_WORK:
            own_work = True
    return Reach(everywhere, frozenset(organizations), own_work)
