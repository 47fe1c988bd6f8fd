"""What the worker runs for email: every email SSPM sends.

Jobs carry no secret: a reset job gets an account id and makes the token
itself, storing only its hash, so the raw token exists only in the email.
Every job has an event id; the event is claimed in the store before the
message goes out, so a job run twice (a retry after a crash, a requeue)
never sends twice. If sending fails the claim is released and RQ retries.

No web app here: a job gets the process's Services from the job runtime
(sspm.infra.jobs) and renders its email with sspm.infra.mail_templates,
so the worker never builds Flask.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from smtplib import SMTPException

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from connectors.directory import Account
from sspm.account import audit, callercode, tokens
from sspm.infra import jobs, smtp
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
    "password_changed": _l("Your password was changed"),
    "password_reset": _l("Your password was reset"),
    "account_unlocked": _l("Your account was unlocked"),
    "enrolled": _l("Your security questions were set up"),
    "re_enrolled": _l("Your security questions were changed"),
    "caller_code": _l("Your code for the helpdesk"),
    "enrollment_cleared": _l("Your security questions were cleared"),
}
NOTIFICATIONS = frozenset(SUBJECTS) - {"reset_link", "caller_code"}


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
    the: Services, account: Account, kind: str, language: str, event_id: str, **values: object
) -> EmailMessage:
    settings = the.settings
    template = kind if kind in ("reset_link", "caller_code") else "notification"
    context = {"account": account, "kind": kind, **values}
    message = EmailMessage()
    message["Subject"] = the.mail_templates.gettext(language, SUBJECTS[kind])
    message["From"] = settings.smtp.sender
    message["To"] = account.email
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
) -> str:
    account = the.directory.get_account(account_id) if account_id else None
    if account is None or not account.email or account.disabled:
        return "no-recipient"
    with _claim(the.store, event_id, kind, account.id) as mine:
        if not mine:
            log.info("email event %s already handled; not sending it twice", event_id)
            return "already-sent"
        try:
            message = build(account)
            smtp.send(the.settings.smtp, message)
        except (SMTPException, OSError) as exc:
            audit.record(
                the.store,
                audit.Action.email(kind),
                f"send_failed: {type(exc).__name__}",
                actor=audit.WORKER_ACTOR,
                account=account,
            )
            raise
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
