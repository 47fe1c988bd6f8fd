"""The outside systems one SSPM process uses, built once, with no Flask.

The web app, the worker, the command line and the benchmarks all start
from ``build()``: the same directory, store, Redis state and outbox, checked
the same way, so a job never needs the web app to reach them. ``build()``
also sets what is process-wide (the login mail domains, the audit copies)
and hands the Services to the job runtime, so a job run in this process
gets them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from connectors import open_directory
from connectors.directory import Directory
from sspm.infra import jobs, logs, metrics
from sspm.infra.mail_templates import MailTemplates
from sspm.infra.outbox import Outbox
from sspm.infra.settings import ConfigError, Settings
from sspm.infra.sms import SmsSender, open_sender
from sspm.infra.state import State
from sspm.infra.store import Store, head_revision, unusable
from sspm.policy import logins
from sspm.policy.questions import AnswerHasher, Catalogue


@dataclass(frozen=True)
class Services:
    """The outside systems and shared tools one app instance uses."""

    settings: Settings
    directory: Directory
    store: Store
    state: State
    hasher: AnswerHasher
    catalogue: Catalogue
    outbox: Outbox
    #: The emails' templates in every language, rendered without Flask.
    mail_templates: MailTemplates
    #: Where text messages go (SSPM_SMS_SENDER): the codes that prove a new mobile number.
    sms: SmsSender

    def close(self) -> None:
        jobs.detach(self)
        self.directory.close()
        self.store.close()
        self.state.close()


def build(settings: Settings, *, directory: Directory | None = None, check: bool = True) -> Services:
    """Open every outside system once; with ``check``, prove each answers first.

    A wrong CA, an unreachable server, a refused service account, Redis
    away or a database behind its migrations stops the start with one line
    (DirectoryError, StateUnavailable, ConfigError) instead of failing the
    first user or the first job.
    """
    logins.configure(settings.login_mail_domains)
    if directory is None:
        directory = open_directory(settings.directory_kind, settings.directory)
    directory = metrics.timed(directory)  # every call counted and timed, connectors/ untouched
    try:
        store = Store(settings.database_url)
    except SQLAlchemyError as exc:  # a URL SQLAlchemy cannot read, or a driver it does not have
        raise ConfigError(unusable(exc)) from None
    try:
        logs.ship_to(settings.audit_syslog, settings.audit_json_file)
    except OSError as exc:
        raise ConfigError(f"SSPM_AUDIT_SYSLOG or SSPM_AUDIT_JSON_FILE cannot be used: {exc}") from None
    state = State(settings.redis_url)
    if check:
        directory.check()
        state.check()
        try:
            revision = store.revision()
        except SQLAlchemyError as exc:  # away, refused, or a file that cannot be opened: one line, not a traceback
            raise ConfigError(unusable(exc)) from None
        if revision != head_revision():
            raise ConfigError("the database schema is not current: run `python -m sspm migrate`")
        # Connections opened by the checks must not be shared with forked
        # processes (gunicorn --preload): drop them, each process opens its own.
        directory.close()
        store.close()
        state.close()
    try:
        catalogue = Catalogue.load(settings.questions_file, settings.languages)
    except ValueError as exc:
        raise ConfigError(f"SSPM_QUESTIONS_FILE: {exc}") from None
    if len(catalogue.offered(settings.questions_offered)) < settings.questions_offered:
        raise ConfigError("SSPM_QUESTIONS_OFFERED is more than the catalogue offers")
    outbox = Outbox(state.redis, store, settings.email_retry_seconds)
    services = Services(
        settings,
        directory,
        store,
        state,
        AnswerHasher(),
        catalogue,
        outbox,
        MailTemplates(settings),
        open_sender(settings.sms),
    )
    jobs.attach(services)
    return services
