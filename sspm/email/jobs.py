"""What the RQ worker runs: every email SSPM sends.

Jobs carry no secret: a reset job gets an account id and makes the token
itself, storing only its hash, so the raw token exists only in the email.
Every job has an event id; the event is claimed in the store before the
message goes out, so a job run twice (a retry after a crash, a requeue)
never sends twice. If sending fails the claim is released and RQ retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from smtplib import SMTPException
from typing import TYPE_CHECKING

from flask import Flask, current_app, has_app_context, render_template
from flask_babel import force_locale
from flask_babel import format_datetime as babel_datetime
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from connectors.directory import Account
from sspm.account import audit, tokens
from sspm.infra import smtp
from sspm.infra.store import AccountPreference, EmailEvent, Store, utcnow

if TYPE_CHECKING:
    from sspm.infra.services import Services

log = logging.getLogger(__name__)

QUEUE = "email"
RESET_PURPOSE = "reset"

SUBJECTS: dict[str, LazyString] = {
    "reset_link": _l("Your password reset link"),
    "password_changed": _l("Your password was changed"),
    "password_reset": _l("Your password was reset"),
    "account_unlocked": _l("Your account was unlocked"),
    "enrolled": _l("Your security questions were set up"),
    "re_enrolled": _l("Your security questions were changed"),
}
NOTIFICATIONS = frozenset(SUBJECTS) - {"reset_link"}

_app: Flask | None = None


@contextmanager
def _context() -> Iterator[None]:
    """The app's context: the worker's own app, or the caller's in tests."""
    global _app
    if has_app_context():
        yield
        return
    if _app is None:
        from sspm.app import create_app

        _app = create_app(check=False)
    with _app.app_context():
        yield


def _services() -> Services:
    from sspm.web.context import services

    return services()


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


def _message(account: Account, kind: str, language: str, event_id: str, **values: object) -> EmailMessage:
    settings = current_app.config["SSPM_SETTINGS"]
    with force_locale(language):
        context = {"account": account, "kind": kind, "settings": settings, **values}
        subject = str(SUBJECTS[kind])
        text = render_template(f"email/{kind if kind == 'reset_link' else 'notification'}.txt", **context)
        html = render_template(f"email/{kind if kind == 'reset_link' else 'notification'}.html", **context)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp.sender
    message["To"] = account.email
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring=event_id[:16], domain="sspm.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _deliver(
    kind: str, account_id: str, language: str, event_id: str, build: Callable[[Services, Account], EmailMessage]
) -> str:
    the = _services()
    account = the.directory.get_account(account_id) if account_id else None
    if account is None or not account.email or account.disabled:
        return "no-recipient"
    with _claim(the.store, event_id, kind, account.id) as mine:
        if not mine:
            log.info("email event %s already handled; not sending it twice", event_id)
            return "already-sent"
        try:
            message = build(the, account)
            smtp.send(the.settings.smtp, message)
        except (SMTPException, OSError) as exc:
            audit.record(
                the.store,
                audit.Action.email(kind),
                f"send_failed: {type(exc).__name__}",
                source_ip="worker",
                account=account,
            )
            raise
    audit.record(the.store, audit.Action.email(kind), "sent", source_ip="worker", account=account)
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


def send_reset_link(account_id: str, language: str, event_id: str) -> str:
    """Email a fresh reset link; does nothing for an empty id (an unknown user name)."""
    with _context():

        def build(the: Services, account: Account) -> EmailMessage:
            minutes = the.settings.reset_link_minutes
            token = tokens.issue(the.store, account.id, RESET_PURPOSE, timedelta(minutes=minutes))
            link = f"{the.settings.public_base_url}/reset?token={token}"
            return _message(account, "reset_link", language, event_id, link=link, minutes=minutes)

        return _deliver("reset_link", account_id, language, event_id, build)


def send_notification(account_id: str, kind: str, language: str, at: str, source_ip: str, event_id: str) -> str:
    """Tell the account's owner what just happened to it, from where."""
    if kind not in NOTIFICATIONS:
        raise ValueError(f"unknown notification {kind!r}")
    with _context():

        def build(the: Services, account: Account) -> EmailMessage:
            with force_locale(language):
                when = babel_datetime(datetime.fromisoformat(at), "long")
            return _message(account, kind, language, event_id, when=when, source_ip=source_ip)

        return _deliver(kind, account_id, language, event_id, build)
