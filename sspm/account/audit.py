"""The audit trail: every attempt, success and refusal, in SSPM's store.

A row says who acted (an ``Actor``), on which account (its immutable id,
and its user name when known), what (one ``Action``), when, from which
address, how it ended, and structured details. Never a password or an
answer; and never a raw typed user name for an unknown account, since that
is often a password typed in the wrong box: a short digest stands in for it.

Rows are hash-chained (sspm.auditchain) so that editing, deleting or
inserting one shows: ``python -m sspm audit verify``. Appends are
serialised on the chain's head row, so several app processes and workers
writing at once never fork the chain. An operator may also ship each event
as it happens to syslog or a JSON-lines file, a copy out of reach of
whoever can write to the database (``ship_to``).
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, event, func, select
from sqlalchemy.orm import Session

from connectors.directory import Account
from sspm.infra import logs
from sspm.infra.store import AuditChainHead, AuditEvent, Store, utcnow
from sspm.policy import auditchain, logins
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.auditchain import GENESIS, Break, Entry, Head, Link, refuse_secrets, verify

#: The worker's name: its rows are written by ``WORKER_ACTOR``, and say "worker" where an address goes.
WORKER = "worker"
WORKER_ACTOR = Actor.job(WORKER)


class Action(StrEnum):
    """Everything the audit trail can say was attempted: one closed vocabulary.

    The values are what the rows store (and what rows written before this
    enum already say).
    """

    SIGN_IN = "sign_in"
    CHANGE = "change"
    ENROLL = "enroll"
    RE_ENROLL = "re-enroll"
    FORGOT_START = "forgot_start"
    FORGOT_ANSWERS = "forgot_answers"
    FORGOT_RESET = "forgot_reset"
    UNLOCK_START = "unlock_start"
    UNLOCK_ANSWERS = "unlock_answers"
    UNLOCK = "unlock"
    RESET_EMAIL_REQUEST = "reset_email_request"
    RESET_BY_EMAIL = "reset_by_email"
    #: Staff set a user's password (the helpdesk, after verifying the caller).
    HELPDESK_RESET = "helpdesk_reset"
    #: The helpdesk (sspm.helpdesk): a search (how many shown, never who else matched), an account opened
    #: (before verification or with its lockout insight), a caller's verification (asked, passed, refused:
    #: the method in the details), an unlock, its security questions cleared. Resets are HELPDESK_RESET.
    HELPDESK_SEARCH = "helpdesk_search"
    #: Staff opened an account's details in the helpdesk (merely viewing is audited; what one opened, one may audit).
    HELPDESK_VIEW = "helpdesk_view"
    HELPDESK_VERIFY = "helpdesk_verify"
    HELPDESK_UNLOCK = "helpdesk_unlock"
    HELPDESK_CLEAR_ENROLLMENT = "helpdesk_clear_enrollment"
    #: People's records (sspm.people): a record opened, created (its account provisioned), saved, ended by
    #: hand, re-activated, its owner's set-up email queued; refusals (out of reach answers like absent) too.
    RECORD_VIEW = "record_view"
    RECORD_CREATE = "record_create"
    RECORD_UPDATE = "record_update"
    RECORD_END = "record_end"
    RECORD_REACTIVATE = "record_reactivate"
    RECORD_SETUP_LINK = "record_setup_link"
    #: A manager told that a record of someone reporting to them ended (sspm.people.jobs).
    EMAIL_RECORD_ENDED = "email_record_ended"
    #: A new account's owner chose its first password through the set-up link (sspm.setup).
    SETUP = "setup"
    #: A live set-up link was opened: the address it was sent to is the owner's (sspm.account.setup_links).
    EMAIL_VERIFIED = "email_verified"
    EMAIL_RESET_LINK = "email_reset_link"
    EMAIL_SETUP_LINK = "email_setup_link"
    EMAIL_ACCOUNT_READY = "email_account_ready"
    EMAIL_PASSWORD_CHANGED = "email_password_changed"  # noqa: S105 (an email's name, not a password)
    EMAIL_PASSWORD_RESET = "email_password_reset"  # noqa: S105
    EMAIL_ACCOUNT_UNLOCKED = "email_account_unlocked"
    EMAIL_ENROLLED = "email_enrolled"
    EMAIL_RE_ENROLLED = "email_re_enrolled"
    EMAIL_CALLER_CODE = "email_caller_code"
    EMAIL_ENROLLMENT_CLEARED = "email_enrollment_cleared"
    #: A password-expiry reminder (a bulk send: one row per recipient).
    EMAIL_PASSWORD_EXPIRES_SOON = "email_password_expires_soon"  # noqa: S105 (an email's name)
    #: Every signed-in session of an account ended (after a password was set); the outcome says how many.
    SESSIONS_ENDED = "sessions_ended"
    #: A request refused before any use case ran (a rate limit); the endpoint is in the details.
    REQUEST = "request"
    #: A staff role granted to, or revoked from, an account (sspm.account.staff); role and organization in the details.
    STAFF_GRANT = "staff_grant"
    STAFF_REVOKE = "staff_revoke"
    #: A staff member's authenticator proved (a first TOTP code after enrollment), or not.
    STAFF_TOTP_ENROLL = "staff_totp_enroll"
    #: A staff member's second factor checked: the outcome says by what (totp, recovery-code) or why not.
    STAFF_SECOND_FACTOR = "staff_second_factor"
    #: A staff member's recovery codes (re)issued; the older ones void.
    STAFF_RECOVERY_CODES = "staff_recovery_codes"
    #: An operator made a staff member enroll a new authenticator (a lost phone, no recovery code left).
    STAFF_TOTP_RESET = "staff_totp_reset"
    #: The audit trail exported from the console (a CSV of one filter, given in the details).
    AUDIT_EXPORT = "audit_export"
    #: The checkpoint row that stands for the rows archived before it (``archive``; sspm.policy.auditchain).
    AUDIT_CHECKPOINT = auditchain.CHECKPOINT
    #: A console report exported (sspm.reports: which report, organization and days in the details).
    REPORT_EXPORT = "report_export"
    #: The staff console's sign-in (password, then second factor), re-authentication before a sensitive action,
    #: and sign-out; the outcome says how each ended.
    STAFF_SIGN_IN = "staff_sign_in"
    STAFF_REAUTH = "staff_reauth"
    STAFF_SIGN_OUT = "staff_sign_out"
    #: The profile (sspm.profile): a new login email asked for (the link sent to it, the old address told),
    #: then confirmed through that link and written to the directory (the addresses in the details).
    EMAIL_CHANGE_ASKED = "email_change_asked"
    EMAIL_CHANGED = "email_changed"
    #: A new mobile number asked for (a code texted to it), then proved with the code and written to the
    #: directory; PHONE_CHANGED's details say ``mobile_credentials``: the clinicians' mobile app signs in with it.
    PHONE_CHANGE_ASKED = "phone_change_asked"
    PHONE_CHANGED = "phone_changed"
    EMAIL_VERIFY_EMAIL = "email_verify_email"
    EMAIL_ADDRESS_CHANGE_ASKED = "email_address_change_asked"
    EMAIL_ADDRESS_CHANGED = "email_address_changed"
    EMAIL_PHONE_CHANGED = "email_phone_changed"

    @classmethod
    def recovery_start(cls, purpose: str) -> Action:
        """Forgot Password or Unlock Account asked for: "forgot" or "unlock"."""
        return {"forgot": cls.FORGOT_START, "unlock": cls.UNLOCK_START}[purpose]

    @classmethod
    def recovery_answers(cls, purpose: str) -> Action:
        return {"forgot": cls.FORGOT_ANSWERS, "unlock": cls.UNLOCK_ANSWERS}[purpose]

    @classmethod
    def email(cls, kind: str) -> Action:
        """An email of ``kind`` (sspm.email.jobs.SUBJECTS) sent, failed or not queued."""
        return {
            "reset_link": cls.EMAIL_RESET_LINK,
            "setup_link": cls.EMAIL_SETUP_LINK,
            "account_ready": cls.EMAIL_ACCOUNT_READY,
            "password_changed": cls.EMAIL_PASSWORD_CHANGED,
            "password_reset": cls.EMAIL_PASSWORD_RESET,
            "account_unlocked": cls.EMAIL_ACCOUNT_UNLOCKED,
            "enrolled": cls.EMAIL_ENROLLED,
            "re_enrolled": cls.EMAIL_RE_ENROLLED,
            "caller_code": cls.EMAIL_CALLER_CODE,
            "enrollment_cleared": cls.EMAIL_ENROLLMENT_CLEARED,
            "verify_email": cls.EMAIL_VERIFY_EMAIL,
            "address_change_asked": cls.EMAIL_ADDRESS_CHANGE_ASKED,
            "address_changed": cls.EMAIL_ADDRESS_CHANGED,
            "phone_changed": cls.EMAIL_PHONE_CHANGED,
            "password_expires_soon": cls.EMAIL_PASSWORD_EXPIRES_SOON,
        }[kind]


def subject_of(account: Account | None, typed: str | None, username: str | None = None) -> str:
    if account is not None:
        return account.username
    if username:
        return username
    # The canonical login's digest: every spelling of one name is one subject,
    # so an operator can follow a guesser across ｊｓｍｉｔｈ, JSMITH and jsmith@.
    return f"unknown:{logins.digest(typed or '', logins.app_mail_domains())[:16]}"


def record(
    store: Store,
    action: Action,
    outcome: str,
    *,
    actor: Actor,
    account: Account | None = None,
    account_id: str | None = None,
    username: str | None = None,
    typed: str | None = None,
    details: Mapping[str, Any] | None = None,
    session: Session | None = None,
) -> None:
    """Append one event to the chain; the one writer of the audit trail.

    ``actor`` is who acted and from where; the account (or ``typed``) is
    who it was done to. Kept apart, so "jsmith changed her own password"
    and "helpdesk agent X reset jsmith's" are two different rows. With
    ``session``, the row is written in the caller's transaction, so it
    commits or rolls back with the change it describes; that session must
    come from ``store.session(immediate=True)``.
    """
    address = actor.client_address or _place_of(actor)
    extra = dict(details or {})
    refuse_secrets(extra)
    fields = {
        "at": utcnow(),
        "actor_kind": actor.kind.value,
        "actor_id": _cut(actor.id, 256),
        "actor_role": _cut(actor.role, 64),
        "action": Action(action).value,
        "outcome": outcome[:64],
        "account_id": account.id if account else account_id,
        "subject": subject_of(account, typed, username)[:256],
        "source_ip": address[:64],
        "details": extra,
    }
    if session is None:
        with store.session(immediate=True) as own:
            written = _append(store, own, fields)
        _ship(written)
        return
    if store.is_sqlite and not session.info.get("immediate"):
        raise RuntimeError("audit.record in a caller's transaction needs store.session(immediate=True)")
    written = _append(store, session, fields)
    event.listen(session, "after_commit", lambda _session: _ship(written), once=True)


def _place_of(actor: Actor) -> str:
    """Where an actor with no client address acted: a job or an operator is named by what it is.

    So the worker's rows keep saying "worker" in the address column, as
    they always have (migration 0003 reads them back as jobs by it).
    """
    if actor.kind in (ActorKind.JOB, ActorKind.OPERATOR) and actor.id:
        return actor.id
    return ""


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None


def _append(store: Store, session: Session, fields: dict[str, Any]) -> Link:
    """Add the row after the chain's head, holding the head until the transaction ends.

    PostgreSQL: SELECT ... FOR UPDATE on the head row makes a second writer
    wait, then read the head the first one left. SQLite: the transaction
    began IMMEDIATE, so it holds the database's one write lock already.
    Several rows in one transaction (what a password change writes) read
    the head once and move it once, just before the commit. Plain
    statements rather than the ORM's unit of work: this runs on every
    request that is audited.
    """
    head: Head | None = session.info.get(_HEAD_KEY)
    if head is None:
        head = _locked_head(store, session)
        event.listen(session, "before_commit", _move_head, once=True)
    entry = Entry(seq=head.seq + 1, **fields)
    mine = auditchain.digest(entry, head.digest)
    session.execute(_INSERT, [{"seq": entry.seq, "prev_digest": head.digest, "digest": mine, **fields}])
    session.info[_HEAD_KEY] = Head(entry.seq, mine)
    return Link(0, entry, head.digest, mine)


#: Where a transaction keeps the chain's head once it has read (and locked) it.
_HEAD_KEY = "sspm.audit.head"


def _move_head(session: Session) -> None:
    head: Head = session.info.pop(_HEAD_KEY)
    session.execute(_MOVE_HEAD, {"new_seq": head.seq, "new_digest": head.digest})


# Built once, with bound parameters, so SQLAlchemy compiles each once (cached) rather than per row.
_EVENTS = cast(Table, AuditEvent.__table__)
_HEAD = cast(Table, AuditChainHead.__table__)
_INSERT = _EVENTS.insert()
_MOVE_HEAD = _HEAD.update().where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), digest=bindparam("new_digest"))
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.digest).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()


def _locked_head(store: Store, session: Session) -> Head:
    found = session.execute(_READ_HEAD if store.is_sqlite else _LOCK_HEAD).first()
    if found is not None:
        return Head(found.seq, found.digest)
    # Only a database whose head row was deleted gets here: start again from
    # the last row (``verify`` still reports the deletion). Two PostgreSQL
    # writers could both see no head: one inserts it, the other's insert fails.
    last = session.execute(select(_EVENTS.c.seq, _EVENTS.c.digest).order_by(_EVENTS.c.seq.desc()).limit(1)).first()
    head = Head(last.seq, last.digest) if last else Head(0, GENESIS)
    session.execute(_HEAD.insert().values(id=1, seq=head.seq, digest=head.digest))
    return head


# -- verification --------------------------------------------------------------------------------------


def link_of(row: AuditEvent) -> Link:
    entry = Entry(
        seq=row.seq,
        at=row.at,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        actor_role=row.actor_role,
        action=row.action,
        outcome=row.outcome,
        account_id=row.account_id,
        subject=row.subject,
        source_ip=row.source_ip,
        details=row.details or {},
    )
    return Link(row.id, entry, row.prev_digest, row.digest)


class _StoreIndex:
    """Finds rows by digest, only once a break is found: a full scan is fine then."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def with_digest(self, value: str) -> Sequence[Link]:
        return [link_of(r) for r in self._session.scalars(select(AuditEvent).where(AuditEvent.digest == value))]

    def with_prev(self, value: str) -> Sequence[Link]:
        return [link_of(r) for r in self._session.scalars(select(AuditEvent).where(AuditEvent.prev_digest == value))]


#: What each store's archive checkpoints are checked with (``use_secret_key``: the web app calls it at start).
_checkpoint_keys: weakref.WeakKeyDictionary[Store, bytes] = weakref.WeakKeyDictionary()


def use_secret_key(store: Store, secret_key: str) -> None:
    """Check ``store``'s archive checkpoints with the key derived from SSPM_SECRET_KEY, when not given one."""
    _checkpoint_keys[store] = auditchain.checkpoint_key(secret_key)


def check_chain(store: Store, secret_key: str | None = None) -> tuple[int, Break | None]:
    """How many rows the trail holds, and the first break in its chain (None: intact).

    Streams the rows in chain order in one read transaction, so a trail of
    millions of rows is walked in constant memory. A checkpoint left by
    ``archive`` is checked with ``secret_key``'s key, else ``use_secret_key``'s.
    """
    key = auditchain.checkpoint_key(secret_key) if secret_key is not None else _checkpoint_keys.get(store)
    counted = 0
    with store.session() as session:
        stored = session.get(AuditChainHead, 1)
        head = Head(stored.seq, stored.digest) if stored else None

        def links() -> Iterator[Link]:
            nonlocal counted
            rows = session.scalars(
                select(AuditEvent).order_by(AuditEvent.seq, AuditEvent.id).execution_options(yield_per=1000)
            )
            for row in rows:
                counted += 1
                yield link_of(row)
                session.expunge(row)

        found = verify(links(), head, _StoreIndex(session), key)
    return counted, found


# -- archiving ------------------------------------------------------------------------------------------


class ArchiveRefused(Exception):
    """The trail cannot be archived as asked; the message says why, and nothing was changed."""


@dataclass(frozen=True)
class Archived:
    #: The rows written to the file (a checkpoint from an earlier archive among them), the last one's position.
    rows: int
    last_seq: int
    file_sha256: str


def archive(store: Store, before: datetime, into: Path, *, secret_key: str, actor: Actor) -> Archived | None:
    """Move the rows from the chain's start up to the last one before ``before`` into ``into``; None: none.

    The rows go to a new JSON-lines file (as shipped: each row's content,
    ``prev`` and ``digest``), written and flushed to disk before any row
    is deleted; then, in one transaction, they are deleted and a signed
    checkpoint row takes the last one's place and digest, so the chain
    verifies on from there. Refused, with nothing changed, if the file
    exists, or if the rows to archive do not verify (archiving must not
    launder a tampered trail). Only a prefix goes: a row stays if any row
    before it is recent (clocks that stepped back keep what follows).
    """
    if into.exists():
        raise ArchiveRefused(f"{into} exists: archive into a new file")
    key = auditchain.checkpoint_key(secret_key)
    with store.session(immediate=True) as session:
        first_recent = session.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.at >= before))
        upto = select(AuditEvent).order_by(AuditEvent.seq, AuditEvent.id)
        if first_recent is not None:
            upto = upto.where(AuditEvent.seq < first_recent)
        links = [link_of(row) for row in session.scalars(upto)]
        if not links or (len(links) == 1 and links[0].entry.action == auditchain.CHECKPOINT):
            return None
        last = links[-1]
        broken = verify(links, Head(last.seq, last.digest), auditchain.ListIndex(links), key)
        if broken is not None:
            raise ArchiveRefused(f"the rows to archive do not verify: {broken}")
        written = hashlib.sha256()
        with into.open("x", encoding="utf-8") as out:
            for link in links:
                line = json.dumps(
                    link.entry.as_dict() | {"prev": link.prev, "digest": link.digest},
                    sort_keys=True,
                    separators=(",", ":"),
                    ensure_ascii=False,
                )
                out.write(line + "\n")
                written.update((line + "\n").encode())
            out.flush()
            os.fsync(out.fileno())
        details: dict[str, Any] = {
            "archived_rows": len(links),
            "before": auditchain.utc_text(before),
            "file": into.name,
            "file_sha256": written.hexdigest(),
        }
        entry = Entry(
            seq=last.seq,
            at=last.entry.at,
            actor_kind=actor.kind.value,
            actor_id=_cut(actor.id, 256),
            actor_role=_cut(actor.role, 64),
            action=Action.AUDIT_CHECKPOINT.value,
            outcome="archived",
            account_id=None,
            subject=f"rows to {last.seq}",
            source_ip=(actor.client_address or _place_of(actor))[:64],
            details=details,
        )
        details[auditchain.SIGNATURE] = auditchain.sign_checkpoint(key, entry, last.prev, last.digest)
        session.execute(delete(AuditEvent).where(AuditEvent.seq <= last.seq))
        session.execute(
            _INSERT,
            [
                {
                    **{k: v for k, v in vars(entry).items() if k != "details"},
                    "details": details,
                    "prev_digest": last.prev,
                    "digest": last.digest,
                }
            ],
        )
    return Archived(len(links), last.seq, written.hexdigest())


def verify_archives(store: Store, files: Sequence[Path], *, secret_key: str) -> tuple[int, str | None]:
    """How many rows the archive files hold, and what is wrong with them (None: nothing).

    ``files`` are the archives in the order they were made, oldest first.
    Each must chain within itself (from the trail's first row, or from the
    signed checkpoint an earlier archive left), and the checkpoint that took
    its place must name it by its SHA-256 and continue from its last row: the
    first line of the next file, or, for the last file, the trail's first
    row in the database. So a file edited, truncated, swapped or dropped
    from the list does not verify, even by someone who rewrote the file's
    digests to match.
    """
    key = auditchain.checkpoint_key(secret_key)
    with store.session() as session:
        first_row = session.scalars(select(AuditEvent).order_by(AuditEvent.seq, AuditEvent.id).limit(1)).first()
        in_database = link_of(first_row) if first_row is not None else None
    counted = 0
    for number, path in enumerate(files):
        try:
            raw = path.read_bytes()
            links = [
                Link(line_number, Entry.from_dict(data), str(data["prev"]), str(data["digest"]))
                for line_number, data in enumerate(map(json.loads, raw.decode("utf-8").splitlines()), start=1)
            ]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            return counted, f"{path} cannot be read as an audit archive: {type(exc).__name__}"
        if not links:
            return counted, f"{path} holds no rows"
        if number == 0 and links[0].entry.action != auditchain.CHECKPOINT and links[0].prev != GENESIS:
            return counted, f"{path} does not start at the trail's first row: an older archive is missing"
        last = links[-1]
        broken = verify(links, Head(last.seq, last.digest), auditchain.ListIndex(links), key)
        if broken is not None:
            return counted, f"{path}: {broken} (rows are numbered by line in the file)"
        successor = _first_of(files[number + 1]) if number + 1 < len(files) else in_database
        where = files[number + 1] if number + 1 < len(files) else "the database"
        sha = hashlib.sha256(raw).hexdigest()
        if (
            successor is None
            or not auditchain.checkpoint_holds(successor, key)
            or successor.entry.details.get("file_sha256") != sha
            or (successor.seq, successor.prev, successor.digest) != (last.seq, last.prev, last.digest)
        ):
            return counted, f"no signed checkpoint in {where} stands for {path} as it is now"
        counted += len(links)
    return counted, None


def _first_of(path: Path) -> Link | None:
    try:
        with path.open(encoding="utf-8") as lines:
            data = json.loads(lines.readline())
        return Link(1, Entry.from_dict(data), str(data["prev"]), str(data["digest"]))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


# -- shipping to a separate system ----------------------------------------------------------------------

_shipper = logs.AUDIT_EVENTS


def _ship(link: Link) -> None:
    if not _shipper.handlers:
        return
    event_json = link.entry.as_dict() | {"prev": link.prev, "digest": link.digest}
    _shipper.info(json.dumps(event_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
