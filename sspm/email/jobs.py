"""What the worker runs for email: every email SSPM sends.

Jobs carry no secret: a reset job gets an account id and makes the token
itself, storing only its hash, so the raw token exists only in the email.
Every job has an event id; the event is claimed in the store before the
message goes out, so a job run twice (a retry after a crash, a requeue)
never sends twice. If sending fails the claim is released and RQ retries.

A batch (``send_batch``, queued by sspm.infra.outbox.Outbox.bulk) sends
one email to each of many recipients over one SMTP connection, claiming
each recipient's event just before its message goes out, so that a batch
run again (after a crash, after one recipient was refused) sends only
what was not sent. See ``send_batch``.

No web app here: a job gets the process's Services from the job runtime
(sspm.infra.jobs) and renders its email with sspm.infra.mail_templates,
so the worker never builds Flask.
"""

from __future__ import annotations

import binascii
import logging
import math
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from smtplib import SMTPException
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.directory import Account
from sspm.account import audit, callercode, email_change, reminders, setup_links, tokens
from sspm.infra import jobs, metrics, smtp
from sspm.infra.mail_templates import _l
from sspm.infra.services import Services
from sspm.infra.store import AccountPreference, EmailEvent, Store, utcnow

log = logging.getLogger(__name__)

#: The queue these jobs are put on (the outbox's, by purpose).
QUEUE = jobs.EMAIL
RESET_PURPOSE = "reset"


#: Translated when the email is made, in the language it is for.
SUBJECTS: dict[str, str] = {
    "reset_link": _l("Your password reset link"),
    "setup_link": _l("Set up your new account"),
    "account_ready": _l("Your account is ready"),
    "password_changed": _l("Your password was changed"),
    "password_reset": _l("Your password was reset"),
    "account_unlocked": _l("Your account was unlocked"),
    "enrolled": _l("Your security questions were set up"),
    "re_enrolled": _l("Your security questions were changed"),
    "password_expires_soon": _l("Your password expires soon"),
    "caller_code": _l("Your code for the helpdesk"),
    "enrollment_cleared": _l("Your security questions were cleared"),
    "verify_email": _l("Confirm your new email address"),
    "address_change_asked": _l("A new email address was asked for your account"),
    "address_changed": _l("Your login email was changed"),
    "phone_changed": _l("Your mobile number was changed"),
}
#: Sent in batches (``send_batch``), each from templates/email/<kind>.txt and .html.
BULK = frozenset({"password_expires_soon"})
NOTIFICATIONS = frozenset(SUBJECTS) - {"reset_link", "setup_link", "caller_code", "verify_email"} - BULK
#: Notifications sent to a given address rather than the account's current one (``send_address_notice``).
ADDRESS_NOTICES = frozenset({"address_change_asked", "address_changed"})


@contextmanager
def _claim(store: Store, event_id: str, kind: str, account_id: str) -> Iterator[bool]:
    """True if this run owns the event; False if another run already sent (or is sending) it."""
    try:
        with store.session() as session:
            session.add(EmailEvent(event_id=event_id, kind=kind, account_id=account_id, state="sending"))
    except IntegrityError:
        yield False
        return
    try:
        yield True
    except BaseException:
        # Not sent: let a retry have it. (A killed worker never gets here,
        # and its claim stays: the message may have left, so never again.)
        with store.session() as session:
            session.execute(delete(EmailEvent).where(EmailEvent.event_id == event_id))
        raise
    with store.session() as session:
        session.execute(
            update(EmailEvent).where(EmailEvent.event_id == event_id).values(state="sent", sent_at=utcnow())
        )


def _message(
    the: Services,
    account: Account,
    kind: str,
    language: str,
    event_id: str,
    *,
    template: str | None = None,
    to: str | None = None,
    **values: object,
) -> EmailMessage:
    settings = the.settings
    own = ("reset_link", "setup_link", "caller_code", "verify_email")
    template = template or (kind if kind in own else "notification")
    context = {"account": account, "kind": kind, **values}
    message = EmailMessage()
    message["Subject"] = the.mail_templates.gettext(language, SUBJECTS[kind])
    message["From"] = settings.smtp.sender
    message["To"] = to or account.email
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring=event_id[:16], domain="sspm.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(the.mail_templates.render(f"email/{template}.txt", language, **context))
    message.add_alternative(the.mail_templates.render(f"email/{template}.html", language, **context), subtype="html")
    return message


def _deliver(
    the: Services,
    kind: str,
    account_id: str,
    language: str,
    event_id: str,
    build: Callable[[Account], EmailMessage],
    *,
    disabled_too: bool = False,
    to: str | None = None,
) -> str:
    """Send what ``build`` makes to the account, once per event; ``disabled_too``: also to a disabled
    account (a new one reads as disabled until it is set up); ``to``: to this address rather than the
    account's (a login email being changed)."""
    account = the.directory.get_account(account_id) if account_id else None
    if account is None or not (to or account.email) or (account.disabled and not disabled_too):
        return "no-recipient"
    with _claim(the.store, event_id, kind, account.id) as mine:
        if not mine:
            log.info("email event %s already handled; not sending it twice", event_id)
            return "already-sent"
        try:
            message = build(account)
            smtp.send(the.settings.smtp, message)
        except (SMTPException, OSError) as exc:
            metrics.email_not_sent()
            audit.record(
                the.store,
                audit.Action.email(kind),
                f"send_failed: {type(exc).__name__}",
                actor=audit.WORKER_ACTOR,
                account=account,
            )
            raise
    metrics.email_sent()
    audit.record(the.store, audit.Action.email(kind), "sent", actor=audit.WORKER_ACTOR, account=account)
    _remember_language(the.store, account.id, language)
    return "sent"


def _remember_language(store: Store, account_id: str, language: str) -> None:
    """Keep the language of an account's last email, for emails nobody asked for (reminders).

    Written by the worker as it sends, not by the request that asked: the
    request for a reset email must cost the same whether or not an account
    was found, and this write happens only when one was.
    """
    with store.session() as session:
        preference = session.get(AccountPreference, account_id)
        if preference is None:
            session.add(AccountPreference(account_id=account_id, language=language))
        elif preference.language != language:
            preference.language = language


@jobs.job
def send_reset_link(the: Services, account_id: str, language: str, event_id: str) -> str:
    """Email a fresh reset link; does nothing for an empty id (an unknown user name)."""

    def build(account: Account) -> EmailMessage:
        minutes = the.settings.reset_link_minutes
        token = tokens.issue(the.store, account.id, RESET_PURPOSE, timedelta(minutes=minutes))
        link = f"{the.settings.public_base_url}/reset?token={token}"
        return _message(the, account, "reset_link", language, event_id, link=link, minutes=minutes)

    return _deliver(the, "reset_link", account_id, language, event_id, build)


@jobs.job
def send_setup_link(the: Services, account_id: str, language: str, minutes: str, event_id: str) -> str:
    """Email a new account's set-up link (sspm.account.setup_links), in the language staff chose for its owner.

    Sent to an account that reads as disabled too: one awaiting set-up does,
    until the link makes it usable. Whether the person may still be set up
    (a record ended since the email was asked for) is asked here, just
    before a token is made (setup_links.still_to_set_up).
    """
    if account_id and not setup_links.still_to_set_up(the.store, account_id):
        return "not-awaiting-setup"  # a record ended since the email was asked for
    lifetime = timedelta(minutes=int(minutes))

    def build(account: Account) -> EmailMessage:
        token = tokens.issue(the.store, account.id, setup_links.SETUP_PURPOSE, lifetime)
        link = f"{the.settings.public_base_url}/setup?token={token}"
        until = the.mail_templates.format_datetime(utcnow() + lifetime, language)
        return _message(the, account, "setup_link", language, event_id, link=link, until=until)

    return _deliver(the, "setup_link", account_id, language, event_id, build, disabled_too=True)


@jobs.job
def send_notification(
    the: Services, account_id: str, kind: str, language: str, at: str, source_ip: str, event_id: str
) -> str:
    """Tell the account's owner what just happened to it, from where.

    ``language`` empty: someone else acted (staff, a job); the owner reads it
    in the language of their last email, else the default.
    """
    if kind not in NOTIFICATIONS:
        raise ValueError(f"unknown notification {kind!r}")
    language = language or the.outbox.language_of(account_id, the.settings.default_language)

    def build(account: Account) -> EmailMessage:
        when = the.mail_templates.format_datetime(datetime.fromisoformat(at), language)
        return _message(the, account, kind, language, event_id, when=when, source_ip=source_ip)

    return _deliver(the, kind, account_id, language, event_id, build)


@jobs.job
def send_email_verification(
    the: Services, account_id: str, address: str, language: str, minutes: str, event_id: str
) -> str:
    """Email ``address`` the link that makes it the account's login email (sspm.account.email_change).

    Sent to the new address, which the link proves; the token is made here,
    so the raw token lives only in the email, and what it confirms is kept
    by its digest: this address for this account, nothing a later request
    asked. A newer link voids this one (``tokens.issue``).
    """
    lifetime = timedelta(minutes=int(minutes))

    def build(account: Account) -> EmailMessage:
        token = tokens.issue(the.store, account.id, email_change.VERIFY_EMAIL_PURPOSE, lifetime)
        pending = email_change.Pending(account.id, address, account.username)
        email_change.remember(the.state, tokens.digest(token), pending, lifetime)
        link = f"{the.settings.public_base_url}/profile/email/verify?token={token}"
        return _message(
            the, account, "verify_email", language, event_id, to=address, link=link, minutes=minutes, address=address
        )

    return _deliver(the, "verify_email", account_id, language, event_id, build, to=address)


@jobs.job
def send_address_notice(
    the: Services,
    account_id: str,
    kind: str,
    address: str,
    new_address: str,
    language: str,
    at: str,
    source_ip: str,
    event_id: str,
) -> str:
    """Tell ``address``, the account's login email before a change, that ``new_address`` was asked for or now
    replaces it: sent there by name, since by the time this runs the account's address may be the new one."""
    if kind not in ADDRESS_NOTICES:
        raise ValueError(f"unknown address notice {kind!r}")

    def build(account: Account) -> EmailMessage:
        when = the.mail_templates.format_datetime(datetime.fromisoformat(at), language)
        return _message(
            the, account, kind, language, event_id, to=address, when=when, source_ip=source_ip, new_address=new_address
        )

    return _deliver(the, kind, account_id, language, event_id, build, to=address)


@jobs.job
def send_caller_code(the: Services, account_id: str, agent_id: str, nonce: str, event_id: str) -> str:
    """Email the one-time code a helpdesk agent asked for (sspm.account.callercode), in the owner's language.

    The code is made here, just before it goes out, so it never sat in a
    queue; a request already void (checked, replaced, past its time) sends nothing.
    """
    if not callercode.asked(the.state, agent_id, account_id, nonce):
        return "void"
    language = the.outbox.language_of(account_id, the.settings.default_language)
    minutes = the.settings.helpdesk_verify_minutes

    def build(account: Account) -> EmailMessage:
        code = callercode.issue(the.state, agent_id, account.id, nonce, key=the.settings.secret_key)
        if code is None:  # voided this very moment: not sent, and the retry finds it void
            raise ValueError("the helpdesk's request for a code is void")
        return _message(the, account, "caller_code", language, event_id, code=code, minutes=minutes)

    return _deliver(the, "caller_code", account_id, language, event_id, build)


# -- many at once -------------------------------------------------------------------------


class NotAllSent(Exception):
    """Some messages of a batch were not sent (their claims released): RQ runs the batch again
    later, and that run sends those alone."""


#: One recipient as the job carries it: account id, language ("" for theirs), the time the
#: email is about (ISO, or ""), the event id (sspm.infra.outbox.Recipient).
Row = tuple[str, str, str, str]


@jobs.job
def send_batch(the: Services, kind: str, recipients: tuple[Row, ...]) -> str:
    """One ``kind`` email to each recipient, over one SMTP connection; exactly once each.

    What was claimed before (sent, or sending when a worker died: it may
    have left) is skipped without reading the directory. Each other
    recipient is read from the directory once, just before its message: one
    disabled or without an address since gets nothing, nor one whose
    password no longer expires at the time the email quotes (changed since
    the copy the reminders run read: ``reminders.still_true``); neither is
    claimed. Each recipient's
    event is claimed in the same transaction that marks the previous one
    sent, just before its message goes out: a worker killed mid-batch leaves
    at most the message in hand unknown (never sent again), the rest
    unclaimed for the rerun. A refused message (its recipient, its content)
    or one lost with the connection is released and audited, and the batch
    goes on; if the server cannot be reached at all, the batch stops there.
    Either way NotAllSent at the end, so RQ retries the batch (the outbox's
    SSPM_EMAIL_RETRY_SECONDS), and the rerun sends only what was not sent.
    """
    if kind not in BULK:
        raise ValueError(f"{kind!r} is not sent in bulk")
    store = the.store
    with store.session() as session:
        events = [row[3] for row in recipients]
        claimed = set(session.scalars(select(EmailEvent.event_id).where(EmailEvent.event_id.in_(events))))
        todo = [row for row in recipients if row[3] not in claimed]
        unsaid = [row[0] for row in todo if not row[1]]
        preferences = select(AccountPreference.account_id, AccountPreference.language)
        remembered = {
            account_id: language
            for account_id, language in session.execute(preferences.where(AccountPreference.account_id.in_(unsaid)))
        }
    batch = _Batch(the, kind, _From(the.settings.smtp.sender))

    def prepare(row: Row) -> tuple[str, Account, bytes] | str:
        """The account and its message, or why it gets none (``_SKIPPED``); a skipped one is not claimed."""
        account_id, language, at, event_id = row
        # One read gives the account and its password's expiry as the directory has it now.
        found = the.directory.account_details(account_id) if account_id else None
        if found is None or not found.email or found.disabled:
            return _NO_ADDRESS
        if at and not reminders.still_true(found.expires_at, datetime.fromisoformat(at), utcnow()):
            log.info("reminder for %s no longer true (its password changed since); not sending it", account_id)
            return _NO_LONGER_DUE
        account = found.account
        language = language or remembered.get(account_id) or the.settings.default_language
        try:
            return event_id, account, batch.message(account, language, at, event_id)
        except ValueError:  # an address that is not one line of ASCII
            log.warning("no email for %s: its address cannot go in a header", account_id)
            return _NO_ADDRESS

    skipped = Counter[str]()
    with smtp.Connection(the.settings.smtp) as connection:
        try:
            for ready in map(prepare, todo):
                if isinstance(ready, str):
                    skipped[ready] += 1
                    continue
                event_id, account, message = ready
                if not batch.claim(event_id, account):
                    continue
                try:
                    connection.send(message, batch.sender.address, str(account.email))
                except (SMTPException, OSError) as exc:
                    batch.failed(exc)
                    if isinstance(exc, smtp.ServerAway):
                        break
                else:
                    batch.sent()
        except BaseException as exc:
            if batch.in_hand is not None:  # not sent (a killed worker never gets here)
                batch.failed(exc)
            raise
        finally:
            batch.flush()
    if batch.failures:
        raise NotAllSent(f"{len(batch.failures)} not sent ({batch.failures[0]}); {batch.sent_count} sent")
    outcome = f"sent {batch.sent_count}" + "".join(f", {skipped[why]} {why}" for why in _SKIPPED if skipped[why])
    if claimed:
        outcome += f", {len(claimed)} sent before"
    return outcome


#: Why a recipient of a batch gets nothing, as the job's outcome says it.
_NO_ADDRESS = "without an address"  # no account, no usable address, or disabled
_NO_LONGER_DUE = "no longer due"  # the date it quotes is not its password's now (reminders.still_true)
_SKIPPED = (_NO_ADDRESS, _NO_LONGER_DUE)


def days_left(at: datetime | None, now: datetime) -> int:
    """Whole days until ``at``, rounded up (an expiry in 30 hours is "in 2 days"); 0 once past."""
    if at is None:
        return 0
    return max(0, math.ceil((at - now).total_seconds() / 86400))


@dataclass
class _Batch:
    """A batch's store work, one transaction per message: the claim of the next message
    carries the outcome of the last (marked sent or released, and audited)."""

    the: Services
    kind: str
    sender: _From
    in_hand: tuple[str, Account] | None = None
    sent_count: int = 0
    failures: list[str] = field(default_factory=list)
    _done: list[tuple[str, Account]] = field(default_factory=list)
    _released: list[tuple[str, Account, str]] = field(default_factory=list)

    def message(self, account: Account, language: str, at: str, event_id: str) -> bytes:
        """The message as it goes on the wire: the headers and parts ``_message`` gives an
        EmailMessage, written out directly (the email package's header parsing and folding
        cost more than the rest of a reminder together: 1.3 ms of CPU, against 0.1)."""
        the = self.the
        when = datetime.fromisoformat(at) if at else None
        context = {
            "account": account,
            "kind": self.kind,
            "when": the.mail_templates.format_datetime(when, language) if when else "",
            "days": days_left(when, utcnow()),
            "link": f"{the.settings.public_base_url}/change",
        }
        subject = the.mail_templates.gettext(language, SUBJECTS[self.kind])
        headers = (
            (
                "Subject",
                subject
                if subject.isascii()
                else Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n"),
            ),
            ("From", self.sender.header),
            ("To", str(account.email)),
            ("Date", format_datetime(utcnow())),
            ("Message-ID", make_msgid(idstring=event_id[:16], domain="sspm.invalid")),
            ("Auto-Submitted", "auto-generated"),
        )
        text, page = (
            the.mail_templates.template(f"email/{self.kind}.{suffix}", language).render(context)
            for suffix in ("txt", "html")
        )
        return wire_message(headers, text, page)

    def claim(self, event_id: str, account: Account) -> bool:
        """True if this run owns the event now (another run may have claimed it since the batch began)."""
        claim = _CLAIM[self.the.store.engine.dialect.name == "postgresql"]
        values = {"event_id": event_id, "kind": self.kind, "account_id": account.id, "claimed_at": utcnow()}
        with self.the.store.session(immediate=True) as session:
            self._write(session)
            mine = session.connection().execute(claim, values).rowcount
        if not mine:
            log.info("email event %s already handled; not sending it twice", event_id)
            return False
        self.in_hand = (event_id, account)
        return True

    def sent(self) -> None:
        assert self.in_hand is not None
        self._done.append(self.in_hand)
        self.in_hand = None
        self.sent_count += 1
        metrics.email_sent()

    def failed(self, exc: BaseException) -> None:
        assert self.in_hand is not None
        event_id, account = self.in_hand
        self.in_hand = None
        metrics.email_not_sent()
        why = f"send_failed: {type(exc).__name__}"
        self._released.append((event_id, account, why))
        self.failures.append(f"{account.id}: {why}")

    def flush(self) -> None:
        if self._done or self._released:
            with self.the.store.session(immediate=True) as session:
                self._write(session)

    def _write(self, session: Session) -> None:
        action = _audited_as(self.kind)
        if self._done:
            done = [event_id for event_id, _ in self._done]
            session.connection().execute(_MARK_SENT, {"ids": done, "sent_at": utcnow()})
        if self._released:
            session.connection().execute(_RELEASE, {"ids": [event_id for event_id, _, _ in self._released]})
        if action is not None:
            for _, account in self._done:
                audit.record(self.the.store, action, "sent", actor=audit.WORKER_ACTOR, account=account, session=session)
            for _, account, why in self._released:
                audit.record(self.the.store, action, why, actor=audit.WORKER_ACTOR, account=account, session=session)
        self._done, self._released = [], []


def wire_message(headers: Sequence[tuple[str, str]], text: str, page: str) -> bytes:
    """A multipart/alternative message (text, then HTML; UTF-8, quoted-printable) with CRLF lines.

    Header values must be ASCII on one line (encode a Subject with
    email.header first); anything else raises ValueError, so a directory
    value cannot add a header. The boundary starts with "=_", which
    quoted-printable never writes, so no body can contain it.
    """
    lines = []
    for name, value in headers:
        unfolded = value.replace("\r\n ", " ")
        if not unfolded.isascii() or "\r" in unfolded or "\n" in unfolded:
            raise ValueError(f"header {name} is not one line of ASCII")
        lines.append(f"{name}: {value}")
    boundary = f"=_{secrets.token_hex(12)}"
    lines += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"', "", ""]
    out = ["\r\n".join(lines).encode("ascii")]
    for subtype, body in (("plain", text), ("html", page)):
        out.append(f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'.encode("ascii"))
        out.append(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        crlf = body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        out.append(binascii.b2a_qp(crlf, istext=True) + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)


@dataclass(frozen=True)
class _From:
    """SSPM_MAIL_FROM as a header (encoded if its name is not ASCII) and as the envelope's bare address."""

    header: str
    address: str

    def __init__(self, sender: str) -> None:
        name, address = parseaddr(sender)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "header", sender if sender.isascii() else formataddr((name, address), "utf-8"))


# Built once, with bound parameters, so SQLAlchemy compiles each once (cached), not per message.
_EVENTS = cast(Table, EmailEvent.__table__)
#: Insert the claim unless the event has one; the rowcount says which (a plain INSERT would
#: abort the transaction that also carries the last message's outcome). [SQLite, PostgreSQL]
_CLAIM = tuple(
    dialect.insert(_EVENTS).values(state="sending").on_conflict_do_nothing(index_elements=["event_id"])
    for dialect in (sqlite, postgresql)
)
_MARK_SENT = (
    _EVENTS.update()
    .where(_EVENTS.c.event_id.in_(bindparam("ids", expanding=True)))
    .values(state="sent", sent_at=bindparam("sent_at"))
)
_RELEASE = _EVENTS.delete().where(_EVENTS.c.event_id.in_(bindparam("ids", expanding=True)))


def _audited_as(kind: str) -> audit.Action | None:
    """The audit trail's action for an email kind; None for one its vocabulary does not name yet."""
    try:
        return audit.Action.email(kind)
    except KeyError:
        return None
