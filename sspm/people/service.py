"""Employees and Clinicians records, as staff keep them: plain Python, no Flask.

A record is SSPM's (``PersonRecord``); creating one provisions a directory
account for its person (``Provisioning.create_account(..., None)``): no
usable password, unable to sign in until its owner follows the set-up link
emailed to the work address (sspm.account.setup_links). Every use case takes
the process's ``Services``, the acting ``Actor`` and the staff member as the
store has them *now* (``staff_member()``), and decides again:

- who reaches which section is the permission table (sspm.policy.roles):
  writing a section is RECORDS_EMPLOYEES or RECORDS_CLINICIANS in the
  record's organization, reading is that or RECORDS_READ; changing a record
  is also ``may_act_on`` its account (not one's own, not a holder of an
  equal or higher role). A record out of reach answers exactly as one that
  does not exist (``NO_SUCH_RECORD``), and the refusal is audited;
- a save names the ``version`` it started from; the store changes only that
  version (one UPDATE ... WHERE version = ?), so a record saved by someone
  else meanwhile is refused with ``RECORD_CHANGED`` and nothing is lost;
- a changed work email is not written to the directory (sign-in, recovery)
  until its owner proves it: the new address waits on the record
  (``pending_email``) and gets the profile's verification link
  (sspm.account.email_change), which asks for the account's password; a
  record whose account still awaits set-up instead gets its set-up link at
  the new address, which proves it the same way;
- ending a record disables the account, ends its sessions (both realms),
  voids its links and tells the manager; re-activating enables it again
  (or, never set up, sends a new set-up link). Nothing is ever deleted.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from anyascii import anyascii
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import desc, func, select, update
from sqlalchemy.exc import IntegrityError

from connectors.directory import (
    Account,
    AccountDetails,
    DirectoryError,
    LoginTaken,
    NoSuchLocation,
    Outcome,
    Person,
)
from sspm.account import audit, email_change, sessions, setup_links, tokens
from sspm.account.audit import Action
from sspm.account.staff import Staff, all_staff, staff_of
from sspm.infra import jobs
from sspm.infra.outbox import FAILURE_TTL, EmailUnavailable
from sspm.infra.services import Services
from sspm.infra.settings import people_location
from sspm.infra.state import StateUnavailable
from sspm.infra.store import AuditEvent, PersonRecord, Store, utcnow
from sspm.people.usernames import candidates
from sspm.policy import reasons
from sspm.policy.actor import Actor
from sspm.policy.organizations import key
from sspm.policy.realm import Realm
from sspm.policy.reasons import Reason
from sspm.policy.roles import Permission, Reach, may, may_act_on, reach
from sspm.web.numbers import LARGEST, whole_number

log = logging.getLogger(__name__)

#: Records on one page of a list.
PAGE_SIZE = 20
ACTIVE = "active"
ENDED = "ended"
#: The manager's notice that a record ended: a job of this feature, on the email queue.
SEND_RECORD_ENDED = "sspm.people.jobs.send_record_ended"


class Kind(StrEnum):
    """The two sections; the value is what ``PersonRecord.kind`` stores."""

    EMPLOYEE = "employee"
    CLINICIAN = "clinician"

    @property
    def section(self) -> str:
        """The section's path segment: /staff/people/<section>."""
        return f"{self.value}s"

    @property
    def writes(self) -> Permission:
        return Permission.RECORDS_EMPLOYEES if self is Kind.EMPLOYEE else Permission.RECORDS_CLINICIANS

    @classmethod
    def of_section(cls, section: str) -> Kind | None:
        return next((kind for kind in cls if kind.section == section), None)


@dataclass(frozen=True)
class Details:
    """What staff typed for a person, already checked field by field (sspm.people.forms)."""

    given_name: str
    family_name: str
    language: str
    work_email: str
    job_title: str
    department: str
    #: The user name or email the manager signs in with; empty for none.
    manager: str
    start_date: date
    end_date: date | None
    college: str = ""
    registration_number: str = ""
    specialty: str = ""
    #: E.164, as the form normalised it; empty for none.
    mobile: str = ""


@dataclass(frozen=True)
class Result:
    """How a use case ended: ``reason`` None is done; ``field`` names the form field a refusal is about."""

    reason: Reason | None = None
    record: PersonRecord | None = None
    field: str | None = None
    #: Done, but the set-up email (or the verification email) could not be queued: staff can send it again.
    email_not_sent: bool = False
    #: The new work email waits for its owner's proof (a verification link went to it).
    email_pending: bool = False
    #: Re-activated, but the directory keeps the account off for a reason of its own.
    still_disabled: bool = False


@dataclass(frozen=True)
class Listing:
    records: tuple[PersonRecord, ...]
    page: int
    more: bool


@dataclass(frozen=True)
class Opened:
    """A record as its page shows it: the record, its account as the directory has it now, and how they differ."""

    record: PersonRecord
    #: None: the account is gone from the directory (removed outside SSPM).
    details: AccountDetails | None
    #: The record's fields the directory says otherwise (changed outside SSPM), by form field name.
    drift: tuple[str, ...]
    awaiting_setup: bool
    #: Whether this staff member may change it (edit, end, re-activate, send the set-up email).
    may_change: bool


# -- who reaches what ---------------------------------------------------------------------------


def readable(member: Staff, kind: Kind) -> Reach:
    """Where ``member`` may read records of ``kind``: where they may write them, and RECORDS_READ's reach."""
    writes, reads = reach(member.grants, kind.writes), reach(member.grants, Permission.RECORDS_READ)
    return Reach(
        writes.everywhere or reads.everywhere,
        writes.organizations | reads.organizations,
        False,
    )


def writable(member: Staff, kind: Kind) -> Reach:
    return reach(member.grants, kind.writes)


def sections(member: Staff) -> list[Kind]:
    """The sections this member may open at all."""
    return [kind for kind in Kind if not readable(member, kind).nothing]


def creatable_in(store: Store, member: Staff, kind: Kind) -> tuple[list[str], bool]:
    """The organizations the create form offers, and whether any may be typed (a Super Admin)."""
    where = writable(member, kind)
    if where.everywhere:
        return organizations_in_use(store), True
    return sorted(where.organizations), False


def organizations_in_use(store: Store) -> list[str]:
    """Organizations named by a record or a grant: suggestions, never a limit."""
    with store.session() as session:
        named = set(session.scalars(select(PersonRecord.organization).distinct()))
    named |= {g.organization for s in all_staff(store) for g in s.grants}
    return sorted(named - {"*"})


def _may_change(store: Store, member: Staff, record: PersonRecord) -> bool:
    kind = Kind(record.kind)
    if record.account_id is None:
        return may(member.grants, kind.writes, record.organization)
    holder = staff_of(store, record.account_id)
    return may_act_on(
        member.grants,
        kind.writes,
        target_organization=record.organization,
        target_account_id=record.account_id,
        own_account_id=member.account_id,
        target_highest_role=holder.highest_role if holder else None,
    )


def _find(store: Store, member: Staff, kind: Kind, record_id: int | str) -> PersonRecord | None:
    """The record if it exists, is of this section and within the member's read reach; else None, alike."""
    number = whole_number(str(record_id))
    if number is None:
        return None
    with store.session() as session:
        record = session.get(PersonRecord, number)
    if record is None or record.kind != kind.value or not readable(member, kind).covers(record.organization):
        return None
    return record


def _refuse(the: Services, actor: Actor, action: Action, why: str, *, record: PersonRecord | None = None) -> None:
    """Audit a refusal; out of reach and absent are written alike, without naming the record."""
    audit.record(
        the.store,
        action,
        "refused",
        actor=actor,
        account_id=record.account_id if record else None,
        username=record.username if record else None,
        details={"why": why, **({"record": record.id} if record else {})},
    )


def _audit(
    the: Services, actor: Actor, action: Action, record: PersonRecord, outcome: str = "ok", **extra: Any
) -> None:
    audit.record(
        the.store,
        action,
        outcome,
        actor=actor,
        account_id=record.account_id,
        username=record.username,
        details={"record": record.id, "kind": record.kind, "organization": record.organization, **extra},
    )


# -- lists --------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """How names are searched: transliterated, case folded (Zoë finds zoe, ÆRØ finds aero)."""
    return " ".join(anyascii(text).casefold().split())


def search_text_of(record: PersonRecord) -> str:
    parts = [
        record.given_name,
        record.family_name,
        record.username,
        record.work_email,
        record.pending_email or "",
        record.registration_number or "",
    ]
    return fold(" ".join(parts))[:1024]


def list_records(
    store: Store, member: Staff, kind: Kind, *, term: str = "", organization: str = "", status: str = "", page: int = 1
) -> Listing:
    """One page of the section's records within reach, filtered in the query (nothing out of reach is counted)."""
    where = readable(member, kind)
    query = select(PersonRecord).where(PersonRecord.kind == kind.value)
    if not where.everywhere:
        query = query.where(PersonRecord.organization.in_(sorted(where.organizations)))
    if organization:
        query = query.where(PersonRecord.organization == key(organization))
    if status in (ACTIVE, ENDED):
        query = query.where(PersonRecord.status == status)
    folded = fold(term)
    if folded:
        pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(PersonRecord.search_text.like(pattern, escape="\\"))
    page = min(max(1, page), LARGEST // PAGE_SIZE)  # its offset, too, is a number the database holds
    query = query.order_by(func.lower(PersonRecord.family_name), func.lower(PersonRecord.given_name), PersonRecord.id)
    with store.session() as session:
        rows = list(session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return Listing(tuple(rows[:PAGE_SIZE]), page, len(rows) > PAGE_SIZE)


# -- one record ---------------------------------------------------------------------------------------------


def _set_up_seen(store: Store, account_id: str) -> datetime | None:
    """When the account's owner chose a first password through the set-up link, as the audit trail says."""
    with store.session() as session:
        return session.scalar(
            select(AuditEvent.at)
            .where(AuditEvent.account_id == account_id, AuditEvent.action == Action.SETUP.value)
            .where(AuditEvent.outcome == "ok")
            .order_by(desc(AuditEvent.seq))
            .limit(1)
        )


def _reconcile(the: Services, record: PersonRecord, details: AccountDetails | None) -> PersonRecord:
    """What SSPM learns on opening: the set-up done, a pending email its owner confirmed (the directory has it)."""
    set_up = record.set_up_at
    if set_up is None and record.account_id:
        set_up = _set_up_seen(the.store, record.account_id)
    if set_up is None and record.status == ACTIVE and details is not None and not details.disabled:
        set_up = utcnow()  # usable, so given a password: set up, by the link or otherwise
    confirmed = (
        details is not None
        and bool(record.pending_email)
        and (details.email or "").lower() == (record.pending_email or "").lower()
    )
    if set_up == record.set_up_at and not confirmed:
        return record
    # Facts learned, not edits: the version stays, so nobody's open form is called stale for them.
    with the.store.session(immediate=True) as session:
        if set_up is not None:
            session.execute(
                update(PersonRecord)
                .where(PersonRecord.id == record.id, PersonRecord.set_up_at.is_(None))
                .values(set_up_at=set_up)
            )
        if confirmed and details is not None and details.email:
            session.execute(
                update(PersonRecord)
                .where(PersonRecord.id == record.id, PersonRecord.pending_email == record.pending_email)
                .values(work_email=details.email, pending_email=None)
            )
        row = session.get(PersonRecord, record.id)
        if row is None:
            return record
        session.refresh(row)
        row.search_text = search_text_of(row)
        return row


def _drift(record: PersonRecord, details: AccountDetails) -> tuple[str, ...]:
    """The fields the directory holds otherwise than the record wrote them."""
    expected: list[tuple[str, str | None, str | None]] = [
        ("given_name", record.given_name, details.given_name),
        ("family_name", record.family_name, details.surname),
        ("work_email", record.work_email, details.email),
        ("job_title", record.job_title, details.title),
        ("department", record.department, details.department),
    ]
    if record.kind == Kind.CLINICIAN.value:
        expected.append(("mobile", record.mobile, details.mobile))
    found = [name for name, ours, theirs in expected if (ours or "") != (theirs or "")]
    awaiting = record.status == ACTIVE and record.set_up_at is None
    if details.disabled != (record.status == ENDED or awaiting):
        found.append("status")
    return tuple(found)


def open_record(the: Services, actor: Actor, member: Staff, kind: Kind, record_id: int | str) -> Opened | Reason:
    """The record with its account as the directory has it now; ``NO_SUCH_RECORD`` for absent and out of reach alike."""
    record = _find(the.store, member, kind, record_id)
    if record is None:
        _refuse(the, actor, Action.RECORD_VIEW, "no such record, or out of reach")
        return Reason.NO_SUCH_RECORD
    try:
        details = the.directory.account_details(record.account_id) if record.account_id else None
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "open a person's record")
    record = _reconcile(the, record, details)
    drift = _drift(record, details) if details is not None else ()
    awaiting = record.status == ACTIVE and record.set_up_at is None
    _audit(the, actor, Action.RECORD_VIEW, record, "shown")
    return Opened(record, details, drift, awaiting, _may_change(the.store, member, record))


# -- create ------------------------------------------------------------------------------------------------


def _manager(the: Services, typed: str) -> Account | Reason | None:
    """The manager's account from what was typed (None for nothing typed); NO_SUCH_MANAGER when nobody signs in so."""
    if not typed.strip():
        return None
    try:
        found = the.directory.find_account(typed.strip())
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "find a record's manager")
    return found if found is not None else Reason.NO_SUCH_MANAGER


def _registration_taken(store: Store, details: Details, record_id: int | None = None) -> bool:
    if not details.registration_number:
        return False
    with store.session() as session:
        query = select(PersonRecord.id).where(
            PersonRecord.college_key == key(details.college),
            PersonRecord.registration_number == details.registration_number,
        )
        if record_id is not None:
            query = query.where(PersonRecord.id != record_id)
        return session.scalar(query.limit(1)) is not None


def _email_taken(the: Services, email: str, account_id: str | None = None) -> bool | Reason:
    try:
        found = the.directory.find_account(email)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "check a work email is free")
    return found is not None and found.id != account_id


def _person(record: PersonRecord, *, directory_email: str | None, keep: AccountDetails | None = None) -> Person:
    """The directory's view of the record: ``directory_email`` is the proven address (never a pending one)."""
    mobile = record.mobile if record.kind == Kind.CLINICIAN.value else (keep.mobile if keep else None)
    return Person(
        given_name=record.given_name,
        surname=record.family_name,
        email=directory_email or None,
        phone=keep.phone if keep else None,
        title=record.job_title or None,
        department=record.department or None,
        mobile=mobile or None,
    )


def _location(the: Services, kind: Kind, organization: str) -> tuple[str, ...]:
    pattern = (
        the.settings.people_employees_location if kind is Kind.EMPLOYEE else the.settings.people_clinicians_location
    )
    return people_location(pattern, organization)


def _setup_lifetime(the: Services) -> timedelta:
    return timedelta(hours=the.settings.setup_link_hours)


def create(the: Services, actor: Actor, member: Staff, kind: Kind, organization: str, details: Details) -> Result:
    """Make the record and its account (awaiting set-up), then queue the set-up email to its owner."""
    where = key(organization)
    if not where or where == "*" or not may(member.grants, kind.writes, where):
        _refuse(the, actor, Action.RECORD_CREATE, f"may not create {kind.value} records in this organization")
        return Result(Reason.ORGANIZATION_REFUSED, field="organization")
    if kind is Kind.CLINICIAN and _registration_taken(the.store, details):
        return Result(Reason.REGISTRATION_TAKEN, field="registration_number")
    taken = _email_taken(the, details.work_email)
    if isinstance(taken, Reason):
        return Result(taken)
    if taken:
        return Result(Reason.WORK_EMAIL_TAKEN, field="work_email")
    manager = _manager(the, details.manager)
    if isinstance(manager, Reason):
        return Result(manager, field="manager" if manager is Reason.NO_SUCH_MANAGER else None)
    attribute = the.settings.directory.organization_attribute
    for login in candidates(details.given_name, details.family_name):
        record = _reserve(the, kind, where, details, manager, login)
        if record is None:
            continue
        if isinstance(record, Reason):
            return Result(record, field="registration_number")
        person = replace(_person(record, directory_email=details.work_email), organization=where if attribute else None)
        try:
            outcome, account = the.directory.create_account(login, person, None, location=_location(the, kind, where))
        except LoginTaken:
            _release(the.store, record)
            continue  # the name (or, raced, the email) is someone's now: the next name, or the check below
        except NoSuchLocation:
            _release(the.store, record)
            log.error("the place for new %s of %s does not exist in the directory", kind.section, where)
            return Result(Reason.NO_PLACE)
        except ValueError as exc:
            _release(the.store, record)
            log.warning("the directory's rules refused a new person's details: %s", exc)
            return Result(Reason.RECORD_REFUSED)
        except DirectoryError as exc:
            _release(the.store, record)
            return Result(reasons.directory_failed(exc, "create a person's account"))
        if outcome is not Outcome.OK or account is None:  # no password was given: nothing to refuse
            _release(the.store, record)
            return Result(Reason.RECORD_REFUSED)
        with the.store.session() as session:
            row = session.get(PersonRecord, record.id)
            assert row is not None
            row.account_id = account.id
            record = row
        _audit(the, actor, Action.RECORD_CREATE, record)
        sent = _send_setup_link(the, actor, record, account)
        return Result(record=record, email_not_sent=not sent)
    taken = _email_taken(the, details.work_email)
    if taken is True:
        return Result(Reason.WORK_EMAIL_TAKEN, field="work_email")
    return Result(Reason.RECORD_REFUSED)


def _reserve(
    the: Services, kind: Kind, organization: str, details: Details, manager: Account | None, login: str
) -> PersonRecord | Reason | None:
    """The record with ``login`` held for it (unique in the store), or None when the name is taken already."""
    with the.store.session() as session:
        if session.scalar(select(PersonRecord.id).where(PersonRecord.username == login)) is not None:
            return None
    try:
        if the.directory.find_account(login) is not None:
            return None  # held in the directory, by anyone: never given twice
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "check a user name is free")
    now = utcnow()
    record = PersonRecord(
        kind=kind.value,
        organization=organization,
        given_name=details.given_name,
        family_name=details.family_name,
        language=details.language,
        work_email=details.work_email,
        job_title=details.job_title,
        department=details.department,
        manager_account_id=manager.id if manager else None,
        manager_name=manager.display_name if manager else "",
        start_date=details.start_date,
        end_date=details.end_date,
        status=ACTIVE,
        username=login,
        college=details.college or None if kind is Kind.CLINICIAN else None,
        college_key=key(details.college) or None if kind is Kind.CLINICIAN else None,
        registration_number=details.registration_number or None if kind is Kind.CLINICIAN else None,
        specialty=details.specialty or None if kind is Kind.CLINICIAN else None,
        mobile=details.mobile or None if kind is Kind.CLINICIAN else None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    record.search_text = search_text_of(record)
    try:
        with the.store.session() as session:
            session.add(record)
    except IntegrityError as exc:
        if "registration" in str(exc.orig).lower() or "college" in str(exc.orig).lower():
            return Reason.REGISTRATION_TAKEN
        return None  # the user name, taken a moment ago by another create
    return record


def _release(store: Store, record: PersonRecord) -> None:
    """Give back a name held for an account that was not made."""
    with store.session() as session:
        row = session.get(PersonRecord, record.id)
        if row is not None and row.account_id is None:
            session.delete(row)


def _send_setup_link(the: Services, actor: Actor, record: PersonRecord, account: Account) -> bool:
    try:
        setup_links.issue_setup_link(the.store, the.outbox, account, record.language, _setup_lifetime(the))
    except EmailUnavailable:
        _audit(the, actor, Action.RECORD_SETUP_LINK, record, "email_unavailable")
        return False
    _audit(the, actor, Action.RECORD_SETUP_LINK, record, "queued")
    return True


# -- change ------------------------------------------------------------------------------------------------


def _changeable(
    the: Services, actor: Actor, member: Staff, kind: Kind, record_id: int | str, action: Action
) -> PersonRecord | Reason:
    record = _find(the.store, member, kind, record_id)
    if record is None or not _may_change(the.store, member, record):
        _refuse(the, actor, action, "no such record, out of reach, or not theirs to change", record=record)
        return Reason.NO_SUCH_RECORD
    return record


def _account(the: Services, record: PersonRecord) -> AccountDetails | Reason:
    if record.account_id is None:
        return Reason.ACCOUNT_GONE
    try:
        details = the.directory.account_details(record.account_id)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "read a person's account")
    return details if details is not None else Reason.ACCOUNT_GONE


def update_record(
    the: Services, actor: Actor, member: Staff, kind: Kind, record_id: int | str, version: int, details: Details
) -> Result:
    """Save what was typed over the record at ``version`` (else ``RECORD_CHANGED``) and write the directory."""
    record = _changeable(the, actor, member, kind, record_id, Action.RECORD_UPDATE)
    if isinstance(record, Reason):
        return Result(record)
    if record.status == ENDED:
        return Result(Reason.RECORD_ENDED, record=record)
    if record.version != version:
        return Result(Reason.RECORD_CHANGED, record=record)
    if kind is Kind.CLINICIAN and _registration_taken(the.store, details, record.id):
        return Result(Reason.REGISTRATION_TAKEN, record=record, field="registration_number")
    found = _account(the, record)
    if isinstance(found, Reason):
        return Result(found, record=record)
    manager = _manager(the, details.manager)
    if isinstance(manager, Reason):
        return Result(manager, record=record, field="manager" if manager is Reason.NO_SUCH_MANAGER else None)
    typed_email = details.work_email
    email_changed = typed_email.lower() not in {record.work_email.lower(), (record.pending_email or "").lower()}
    awaiting = record.set_up_at is None and found.disabled
    if email_changed:
        taken = _email_taken(the, typed_email, record.account_id)
        if isinstance(taken, Reason):
            return Result(taken, record=record)
        if taken:
            return Result(Reason.WORK_EMAIL_TAKEN, record=record, field="work_email")
    values: dict[str, Any] = {
        "given_name": details.given_name,
        "family_name": details.family_name,
        "language": details.language,
        "job_title": details.job_title,
        "department": details.department,
        "start_date": details.start_date,
        "end_date": details.end_date,
        "updated_at": utcnow(),
        "version": record.version + 1,
    }
    values["manager_account_id"] = manager.id if manager else None
    values["manager_name"] = manager.display_name if manager else ""
    if kind is Kind.CLINICIAN:
        values.update(
            college=details.college or None,
            college_key=key(details.college) or None,
            registration_number=details.registration_number or None,
            specialty=details.specialty or None,
            mobile=details.mobile or None,
        )
    dropped_pending = False
    if email_changed and awaiting:
        values["work_email"], values["pending_email"] = typed_email, None  # the set-up link proves it
    elif email_changed:
        values["pending_email"] = typed_email
    elif typed_email.lower() == record.work_email.lower() and record.pending_email:
        values["pending_email"] = None  # back to the proven address: the change asked for is dropped
        dropped_pending = True
    try:
        with the.store.session(immediate=True) as session:
            done = session.execute(
                update(PersonRecord)
                .where(PersonRecord.id == record.id, PersonRecord.version == version)
                .values(**values)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                current = session.get(PersonRecord, record.id)
                return Result(Reason.RECORD_CHANGED, record=current or record)
            saved = session.get(PersonRecord, record.id)
            assert saved is not None
            saved.search_text = search_text_of(saved)
            session.flush()
            # In the same transaction: a directory that refuses leaves the record as it was.
            the.directory.update_account(found.account, _person(saved, directory_email=saved.work_email, keep=found))
    except DirectoryError as exc:
        return Result(reasons.directory_failed(exc, "change a person's account"), record=record)
    except LoginTaken:
        return Result(Reason.WORK_EMAIL_TAKEN, record=record, field="work_email")
    except ValueError as exc:
        log.warning("the directory's rules refused a person's details: %s", exc)
        return Result(Reason.RECORD_REFUSED, record=record)
    _audit(the, actor, Action.RECORD_UPDATE, saved, email_pending=bool(email_changed and not awaiting))
    if dropped_pending and saved.account_id:
        tokens.void(the.store, saved.account_id, email_change.VERIFY_EMAIL_PURPOSE)
    if email_changed and awaiting:
        sent = _send_setup_link(the, actor, saved, found.account)
        return Result(record=saved, email_not_sent=not sent)
    if email_changed:
        sent = _ask_email_proof(the, actor, saved, found.account, typed_email)
        return Result(record=saved, email_pending=True, email_not_sent=not sent)
    return Result(record=saved)


def _ask_email_proof(the: Services, actor: Actor, record: PersonRecord, account: Account, address: str) -> bool:
    """Send ``address`` the profile's verification link; the directory keeps the old address until it is used."""
    lifetime = timedelta(hours=the.settings.setup_link_hours)
    try:
        the.outbox.email_verification(account, address, record.language, lifetime)
        email_change.note_asked(the.state, account.id, address, lifetime)
    except (EmailUnavailable, StateUnavailable):
        _audit(the, actor, Action.RECORD_UPDATE, record, "verification_not_sent")
        return False
    return True


def end_record(the: Services, actor: Actor, member: Staff, kind: Kind, record_id: int | str) -> Result:
    """End by hand: the account disabled, its sessions ended, its links void, the manager told."""
    record = _changeable(the, actor, member, kind, record_id, Action.RECORD_END)
    if isinstance(record, Reason):
        return Result(record)
    if record.status == ENDED:
        return Result(Reason.ALREADY_DONE, record=record)
    return _end(the, actor, record)


def end_due_records(the: Services, actor: Actor, today: date) -> tuple[int, int]:
    """End every active record whose end date has come (the scheduled job's work); (ended, failed).

    The same ending as by hand, done by ``actor`` (the job): the account
    disabled, its sessions ended, its links void, the manager told. A record
    the directory could not end now stays active and is tried at the next run.
    """
    with the.store.session() as session:
        due = list(
            session.scalars(select(PersonRecord).where(PersonRecord.status != ENDED, PersonRecord.end_date <= today))
        )
    ended = failed = 0
    for record in due:
        if _end(the, actor, record).reason is None:
            ended += 1
        else:
            failed += 1
    return ended, failed


def _end(the: Services, actor: Actor, record: PersonRecord) -> Result:
    found = _account(the, record)
    if isinstance(found, Reason) and found is not Reason.ACCOUNT_GONE:
        return Result(found, record=record)
    today = utcnow().date()
    set_up = record.set_up_at or (_set_up_seen(the.store, record.account_id) if record.account_id else None)
    if isinstance(found, AccountDetails):
        try:
            the.directory.disable_account(found.account)
        except DirectoryError as exc:
            return Result(reasons.directory_failed(exc, "disable a person's account"), record=record)
    with the.store.session(immediate=True) as session:
        row = session.get(PersonRecord, record.id)
        assert row is not None
        row.status, row.set_up_at = ENDED, set_up
        row.end_date = today if row.end_date is None or row.end_date > today else row.end_date
        row.version += 1
        row.updated_at = utcnow()
        record = row
    if record.account_id:
        tokens.void_all(the.store, record.account_id)
        try:
            ended = sessions.end_all(the.state, record.account_id) + sessions.end_all(
                the.state, record.account_id, Realm.STAFF
            )
        except StateUnavailable:
            ended = -1
        _audit(the, actor, Action.RECORD_END, record, sessions_ended=ended)
    else:
        _audit(the, actor, Action.RECORD_END, record)
    _tell_manager(the, record)
    return Result(record=record)


def _tell_manager(the: Services, record: PersonRecord) -> bool:
    """Queue the manager's notice (sspm.people.jobs); a notice that cannot be queued is logged, nothing undone."""
    if not record.manager_account_id:
        return False
    event_id = uuid.uuid4().hex
    delays = list(the.settings.email_retry_seconds)
    try:
        jobs.Queues(the.state.redis).enqueue(
            jobs.EMAIL,
            SEND_RECORD_ENDED,
            str(record.id),
            record.manager_account_id,
            event_id,
            job_id=event_id,
            retry=Retry(max=len(delays), interval=delays) if delays else None,
            failure_ttl=FAILURE_TTL,
        )
    except RedisError as exc:
        log.warning("the manager's notice for record %s was not queued: %s", record.id, exc)
        return False
    return True


def reactivate_record(the: Services, actor: Actor, member: Staff, kind: Kind, record_id: int | str) -> Result:
    """Undo an end: the account enabled again, or (never set up) a new set-up link to its owner."""
    record = _changeable(the, actor, member, kind, record_id, Action.RECORD_REACTIVATE)
    if isinstance(record, Reason):
        return Result(record)
    if record.status == ACTIVE:
        return Result(Reason.ALREADY_DONE, record=record)
    found = _account(the, record)
    if isinstance(found, Reason):
        return Result(found, record=record)
    still_disabled = False
    if record.set_up_at is not None:
        try:
            still_disabled = the.directory.enable_account(found.account) is not Outcome.OK
        except DirectoryError as exc:
            return Result(reasons.directory_failed(exc, "enable a person's account"), record=record)
    with the.store.session(immediate=True) as session:
        row = session.get(PersonRecord, record.id)
        assert row is not None
        row.status, row.end_date = ACTIVE, None
        row.version += 1
        row.updated_at = utcnow()
        record = row
    _audit(the, actor, Action.RECORD_REACTIVATE, record, "still_disabled" if still_disabled else "ok")
    if record.set_up_at is None:
        sent = _send_setup_link(the, actor, record, found.account)
        return Result(record=record, email_not_sent=not sent)
    return Result(record=record, still_disabled=still_disabled)


def resend_setup_link(the: Services, actor: Actor, member: Staff, kind: Kind, record_id: int | str) -> Result:
    """A new set-up email to the record's person; the link sent before dies at once."""
    record = _changeable(the, actor, member, kind, record_id, Action.RECORD_SETUP_LINK)
    if isinstance(record, Reason):
        return Result(record)
    if record.status == ENDED:
        return Result(Reason.RECORD_ENDED, record=record)
    found = _account(the, record)
    if isinstance(found, Reason):
        return Result(found, record=record)
    record = _reconcile(the, record, found)
    if record.set_up_at is not None or not found.disabled:
        return Result(Reason.ALREADY_SET_UP, record=record)
    sent = _send_setup_link(the, actor, record, found.account)
    return Result(Reason.EMAIL_UNAVAILABLE if not sent else None, record=record)
