"""What the worker runs for people's records: the manager's notice that a record ended.

Queued by name (sspm.people.service) on the email queue with ids only: the
record and the manager's account, never an address. The message is made
here from what the store and the directory say when it runs, in the
manager's own language (their last email's, else the default), and goes
out once per event: the event is claimed in the store before sending, as
every email SSPM sends (sspm.email.jobs), so a retried job never sends twice.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from sspm.account import audit
from sspm.infra import jobs, smtp
from sspm.infra.mail_templates import _l
from sspm.infra.services import Services
from sspm.infra.store import EmailEvent, PersonRecord, utcnow
from sspm.people import service
from sspm.policy.actor import Actor

log = logging.getLogger(__name__)

KIND = "record_ended"
SUBJECT = _l("Someone who reports to you no longer has an active account")


@jobs.job
def send_record_ended(the: Services, record_id: str, manager_id: str, event_id: str) -> str:
    """Tell the manager that the record ``record_id`` ended: whose, since when, by which organization."""
    with the.store.session() as session:
        record = session.get(PersonRecord, int(record_id))
    manager = the.directory.get_account(manager_id)
    if record is None or manager is None or not manager.email:
        return "no-recipient"
    try:
        with the.store.session() as session:
            session.add(EmailEvent(event_id=event_id, kind=KIND, account_id=manager.id, state="sending"))
    except IntegrityError:
        return "already-sent"
    language = the.outbox.language_of(manager.id, the.settings.default_language)
    context = {
        "account": manager,
        "person": f"{record.given_name} {record.family_name}",
        "username": record.username,
        "organization": record.organization,
        "ended": the.mail_templates.format_datetime(record.updated_at, language),
    }
    message = EmailMessage()
    message["Subject"] = the.mail_templates.gettext(language, SUBJECT)
    message["From"] = the.settings.smtp.sender
    message["To"] = manager.email
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring=event_id[:16], domain="sspm.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(the.mail_templates.render(f"email/{KIND}.txt", language, **context))
    message.add_alternative(the.mail_templates.render(f"email/{KIND}.html", language, **context), subtype="html")
    try:
        smtp.send(the.settings.smtp, message)
    except BaseException as exc:
        with the.store.session() as session:  # not sent: a retry may have it
            session.execute(delete(EmailEvent).where(EmailEvent.event_id == event_id))
        if isinstance(exc, Exception):
            audit.record(
                the.store,
                audit.Action.EMAIL_RECORD_ENDED,
                f"send_failed: {type(exc).__name__}",
                actor=audit.WORKER_ACTOR,
                account=manager,
            )
        raise
    with the.store.session() as session:
        session.execute(
            update(EmailEvent).where(EmailEvent.event_id == event_id).values(state="sent", sent_at=utcnow())
        )
    audit.record(
        the.store,
        audit.Action.EMAIL_RECORD_ENDED,
        "sent",
        actor=audit.WORKER_ACTOR,
        account=manager,
        details={"record": record.id},
    )
    return "sent"


@jobs.job
def end_due_records(the: Services) -> str:
    """The scheduled job (sspm.infra.schedule): end the records whose end date has come, as staff would by hand."""
    ended, failed = service.end_due_records(the, Actor.job("people-end-dates"), utcnow().date())
    if failed:
        log.error("%d record(s) past their end date could not be ended now; tried again at the next run", failed)
    return f"ended {ended}" + (f", {failed} failed" if failed else "")
