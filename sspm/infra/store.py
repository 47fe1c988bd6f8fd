"""SSPM's own store: enrollments, answer hashes, reset tokens, audit events, staff and their grants, people's records.

Also the synced copy of the directory's accounts (read-only to every feature
but sspm.account.sync).

SQLAlchemy on SQLite by default, PostgreSQL by URL. The schema is made and
evolved only by the Alembic migrations in migrations/ (``migrate()``); the
app checks at start that the database is at the latest revision rather than
creating anything itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Enrollment(Base):
    """One account's security questions; keyed by the directory's immutable id."""

    __tablename__ = "enrollment"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answers: Mapped[list[Answer]] = relationship(
        back_populates="enrollment", cascade="all, delete-orphan", order_by="Answer.position"
    )


class Answer(Base):
    """An argon2id hash of one normalised answer; never the answer itself."""

    __tablename__ = "answer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("enrollment.account_id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(String(64))
    answer_hash: Mapped[str] = mapped_column(String(255))
    enrollment: Mapped[Enrollment] = relationship(back_populates="answers")


class AuditEvent(Base):
    """Who did what to which account, when, from where, and how it ended; never a secret.

    Rows form a hash chain (sspm.auditchain): ``seq`` is the position,
    ``prev_digest`` the digest of the row before, ``digest`` that of this
    row's content with it. Only ``sspm.account.audit.record`` writes here.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The position in the chain, 1, 2, 3...; unique, so two writers can never fork it silently.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    #: Who acted (sspm.actor.ActorKind), their immutable id and role when they have one.
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(256))
    actor_role: Mapped[str | None] = mapped_column(String(64))
    #: One of sspm.account.audit.Action.
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(64))
    #: The account acted on, by its immutable id.
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The account's user name when known; otherwise a digest of what was typed,
    #: since a mistyped user name is often a password.
    subject: Mapped[str] = mapped_column(String(256))
    #: The client address ("worker" for the email worker).
    source_ip: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last position and digest: one row, locked by each append.

    Kept apart from the rows so that cutting rows off the end of the trail
    shows, and so that appending has one row to serialise on.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))


class ResetToken(Base):
    """A one-time link token: only its SHA-256 is kept, so the store cannot replay it."""

    __tablename__ = "reset_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Set when used, or when a newer token or a password change made it void.
    spent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailEvent(Base):
    """One email per event, ever: claimed before sending so a retry cannot send twice."""

    __tablename__ = "email_event"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountPreference(Base):
    """What SSPM remembers about an account besides security questions: its language."""

    __tablename__ = "account_preference"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class JobRun(Base):
    """One run of a background job (sspm.infra.jobs): which, on which queue, how long, how it ended.

    Never its arguments: what a job was run for is in its own records (an
    email event, the audit trail); this says what the workers did.
    """

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: RQ's job id (an email job's is its event id); none for a job called directly.
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The job function's dotted name.
    name: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    #: What the job returned ("sent", "no-recipient"...), or "failed: <exception>".
    outcome: Mapped[str] = mapped_column(String(64))


class StaffMember(Base):
    """A directory account SSPM grants staff roles to (sspm.account.staff), and its second factor.

    Keyed by the account's immutable id, so a renamed account keeps its
    roles; ``login`` is only what it was found by, for lists. The TOTP
    secret is stored encrypted (Fernet, key ``Settings.staff_totp_key``): a
    copy of the database alone does not give anyone's codes.
    """

    __tablename__ = "staff_member"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), unique=True)
    login: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The Fernet token of the base32 TOTP secret; None until enrollment starts.
    totp_secret: Mapped[str | None] = mapped_column(String(512))
    #: When a first code proved the authenticator holds the secret; until then it is no second factor.
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The TOTP time step of the last code accepted: a code is good once, so one seen over a shoulder is spent.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    grants: Mapped[list[StaffGrant]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", passive_deletes=True, order_by="StaffGrant.id"
    )
    recovery_codes: Mapped[list[StaffRecoveryCode]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", passive_deletes=True
    )


class StaffGrant(Base):
    """One role in one organization (``*``: every one, a Super Admin's); see sspm.policy.roles."""

    __tablename__ = "staff_grant"
    __table_args__ = (UniqueConstraint("staff_id", "role", "organization", name="uq_staff_grant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    #: As sspm.policy.organizations.key has it.
    organization: Mapped[str] = mapped_column(String(256), index=True)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    staff: Mapped[StaffMember] = relationship(back_populates="grants")


class StaffRecoveryCode(Base):
    """A one-time code for when the authenticator is lost: its SHA-256 only (the code is random, 80 bits)."""

    __tablename__ = "staff_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    staff: Mapped[StaffMember] = relationship(back_populates="recovery_codes")


class PersonRecord(Base):
    """An Employee or a Clinician (sspm.people), and the directory account SSPM provisioned for them.

    The record is SSPM's; the account is the directory's, found by its
    immutable id: what the record says of names, title, unit and contacts
    was written there by SSPM, and a difference on opening means someone
    changed the account outside SSPM. ``version`` goes up by one at every
    save, and a save names the version it started from (optimistic
    concurrency): two staff editing one record never silently overwrite
    each other. Records are never deleted by a click; an ended one stays.
    """

    __tablename__ = "person_record"
    __table_args__ = (UniqueConstraint("college_key", "registration_number", name="uq_person_registration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: "employee" or "clinician": which section, and whose roles reach it.
    kind: Mapped[str] = mapped_column(String(16), index=True)
    #: As sspm.policy.organizations.key has it.
    organization: Mapped[str] = mapped_column(String(256), index=True)
    given_name: Mapped[str] = mapped_column(String(64))
    family_name: Mapped[str] = mapped_column(String(64))
    #: "en" or "fr": the language of the emails its person gets.
    language: Mapped[str] = mapped_column(String(8))
    #: The verified work email, as the directory has it (sign-in and recovery use it).
    work_email: Mapped[str] = mapped_column(String(256))
    #: A new address staff typed, not yet proven by its owner: never in the directory until then.
    pending_email: Mapped[str | None] = mapped_column(String(256))
    job_title: Mapped[str] = mapped_column(String(64), default="")
    department: Mapped[str] = mapped_column(String(64), default="")
    #: The manager's directory account (immutable id) and name as shown when it was chosen.
    manager_account_id: Mapped[str | None] = mapped_column(String(64))
    manager_name: Mapped[str] = mapped_column(String(256), default="")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    #: "active" or "ended".
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: The directory account provisioned for the record (None only while it is being created).
    account_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The user name SSPM made for it: never given to anyone else, even once the account is gone.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: Clinicians only: the regulatory college (as typed, and folded for uniqueness), the number, the specialty.
    college: Mapped[str | None] = mapped_column(String(128))
    college_key: Mapped[str | None] = mapped_column(String(128))
    registration_number: Mapped[str | None] = mapped_column(String(32))
    specialty: Mapped[str | None] = mapped_column(String(64))
    #: E.164 (phonenumbers), written to the directory's mobile attribute.
    mobile: Mapped[str | None] = mapped_column(String(20))
    #: Names, user name and emails folded (case, accents) for the lists' search.
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    #: When the owner chose a first password (seen by SSPM); None while the account awaits set-up.
    set_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DirectoryAccount(Base):
    """The last synced copy of one directory account, for reports and reminders (sspm.account.sync).

    Never a source for a decision: sign-in, reset, unlock and every check
    ask the directory itself; this copy may be minutes old. ``gone_at`` flags
    an account the last full sync did not see (kept, not deleted, so a report
    can say it left).
    """

    __tablename__ = "directory_account"

    #: The directory's immutable id (entryUUID / objectGUID).
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    phone: Mapped[str | None] = mapped_column(String(64))
    #: As sspm.policy.organizations.key has it.
    organization: Mapped[str | None] = mapped_column(String(256), index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    locked_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Whether SSPM's enrollment table had the account when it was synced.
    enrolled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: False for an account SSPM provisioned that still awaits its owner's set-up.
    set_up: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SyncCheckpoint(Base):
    """Where the incremental sync resumes: the connector's opaque checkpoint, saved after its batch commits."""

    __tablename__ = "sync_checkpoint"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Store:
    """The engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """One transaction; ``immediate`` takes SQLite's write lock at its start.

        SQLite's default transaction reads before it locks, so two processes
        could both read the audit chain's head and then both append after it;
        BEGIN IMMEDIATE makes a read-then-write transaction wait its turn.
        (PostgreSQL locks the head row itself: see sspm.account.audit.)
        """
        with self._sessions.begin() as session:
            if immediate and self.is_sqlite:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            session.info["immediate"] = immediate
            yield session

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Safe with WAL against a crashed process; only a power cut may lose the last commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def unusable(exc: SQLAlchemyError) -> str:
    """One line for an operator when the database cannot be used: what its driver said, never the URL."""
    said = str(getattr(exc, "orig", None) or exc).strip()
    return f"the database (SSPM_DATABASE_URL) cannot be used: {said.splitlines()[0] if said else type(exc).__name__}"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def migrate(url: str) -> None:
    """Bring the database to the latest schema (``python -m sspm migrate``)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
