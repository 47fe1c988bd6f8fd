"""The web side of the email pipeline: putting email jobs on the email queue.

Only ids, a language, a time and an address go into a job; never a token,
a password or an answer. The jobs are named, not imported (they are the
email feature's, sspm.email.jobs): this layer only queues them. Whoever
asked decides what a job that could not be queued means, and audits it: a
notification that cannot be queued (Redis away) does not undo what the
user just did; a reset email that cannot be queued is reported to the user,
who can ask again.

Emails nobody asked for and many get at once (expiry reminders) go out in
batches (``bulk``): one job per ``BATCH_SIZE`` recipients, on the
housekeeping queue so a reminder run never holds up a reset link, each
recipient with an event id of its own, so a batch run again after a crash
or a refusal sends to nobody twice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry

from connectors.directory import Account
from sspm.infra import jobs
from sspm.infra.store import AccountPreference, Store, utcnow

log = logging.getLogger(__name__)

SEND_RESET_LINK = "sspm.email.jobs.send_reset_link"
SEND_SETUP_LINK = "sspm.email.jobs.send_setup_link"
SEND_NOTIFICATION = "sspm.email.jobs.send_notification"
SEND_CALLER_CODE = "sspm.email.jobs.send_caller_code"
SEND_EMAIL_VERIFICATION = "sspm.email.jobs.send_email_verification"
SEND_ADDRESS_NOTICE = "sspm.email.jobs.send_address_notice"
SEND_BATCH = "sspm.email.jobs.send_batch"
#: Recipients per batch job: RQ's bookkeeping (~20 ms a job) shared by this many, and
#: a batch still short enough (about half a second) that stopping a worker waits little.
BATCH_SIZE = 100
#: Seconds a batch may run before RQ stops it (well above a batch against a slow server).
BATCH_TIMEOUT = 900
#: A failed email job stays this long in RQ's failed registry, for an operator to requeue.
FAILURE_TTL = 7 * 86400


class EmailUnavailable(Exception):
    """The queue could not take the job: nothing was sent, nothing was lost."""


@dataclass(frozen=True)
class Recipient:
    """Who gets one email of a bulk send, in which language, about what time.

    ``language`` empty: the language of the account's last email, else the
    default. ``at``: the time the email is about (when a password expires).
    ``key``: the same kind with the same key is sent at most once, whoever
    queues it and however often (a reminder per threshold per password:
    ``f"{account_id}:{days}:{password_changed_at}"``); only its digest goes
    into the job. None: a fresh event, sent once.
    """

    account_id: str
    language: str = ""
    at: datetime | None = None
    key: str | None = None


def event_id_for(kind: str, key: str | None) -> str:
    """The email event of ``(kind, key)``: a digest (64 hex), or a random id (32 hex) for no key."""
    if key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{kind}\0{key}".encode()).hexdigest()


class Outbox:
    def __init__(self, redis: Redis, store: Store, retry_seconds: tuple[int, ...]) -> None:
        self._queues = jobs.Queues(redis)
        self._store = store
        self._retry = Retry(max=len(retry_seconds), interval=list(retry_seconds)) if retry_seconds else None

    def _enqueue(self, function: str, *args: str) -> str:
        event_id = uuid.uuid4().hex
        try:
            self._queues.enqueue(
                jobs.EMAIL, function, *args, event_id, job_id=event_id, retry=self._retry, failure_ttl=FAILURE_TTL
            )
        except RedisError as exc:
            raise EmailUnavailable(str(exc)) from None
        return event_id

    def reset_link(self, account: Account | None, language: str) -> None:
        """Queue a reset email. Queued for unknown accounts too (as a no-op job),
        so the request costs the same whoever it names. Raises EmailUnavailable."""
        eligible = account is not None and bool(account.email) and not account.disabled
        self._enqueue(SEND_RESET_LINK, account.id if account and eligible else "", language)

    def setup_link(self, account: Account, language: str, lifetime: timedelta) -> None:
        """Queue a new account's set-up email (sspm.account.setup_links): its id, a language and
        the link's lifetime in whole minutes; the worker makes the token. Raises EmailUnavailable."""
        self._enqueue(SEND_SETUP_LINK, account.id, language, str(math.ceil(lifetime.total_seconds() / 60)))

    def caller_code(self, account: Account, agent_id: str, nonce: str) -> None:
        """Queue the email of a helpdesk verification code (sspm.account.callercode): ids and a nonce, never
        the code, which the worker makes. In the owner's own language. Raises EmailUnavailable."""
        self._enqueue(SEND_CALLER_CODE, account.id, agent_id, nonce)

    def email_verification(self, account: Account, address: str, language: str, lifetime: timedelta) -> None:
        """Queue the link that proves ``address`` as the account's new login email, sent there
        (sspm.account.email_change); the worker makes the token. Raises EmailUnavailable."""
        self._enqueue(
            SEND_EMAIL_VERIFICATION, account.id, address, language, str(math.ceil(lifetime.total_seconds() / 60))
        )

    def address_notice(
        self, account: Account, kind: str, address: str, new_address: str, language: str, source_ip: str
    ) -> bool:
        """Queue a notice about the login email to ``address`` (the old one), naming ``new_address``;
        False if it could not be queued (logged here; the caller audits it)."""
        try:
            self._enqueue(
                SEND_ADDRESS_NOTICE, account.id, kind, address, new_address, language, utcnow().isoformat(), source_ip
            )
        except EmailUnavailable as exc:
            log.warning("address notice %s for %s not queued: %s", kind, account.id, exc)
            return False
        return True

    def notify(self, account: Account, kind: str, language: str, source_ip: str) -> bool:
        """Queue "this just happened to your account" (the worker remembers the language).

        False if it could not be queued (logged here; the caller audits it).
        """
        try:
            self._enqueue(SEND_NOTIFICATION, account.id, kind, language, utcnow().isoformat(), source_ip)
        except EmailUnavailable as exc:
            log.warning("notification %s for %s not queued: %s", kind, account.id, exc)
            return False
        return True

    def bulk(
        self,
        kind: str,
        recipients: Iterable[Recipient],
        *,
        queue: str = jobs.HOUSEKEEPING,
        batch_size: int = BATCH_SIZE,
    ) -> list[str]:
        """Queue one ``kind`` email to each recipient, ``batch_size`` to a job; the jobs' ids.

        All the batches go to Redis in one transaction. Raises EmailUnavailable
        if Redis cannot take them: none was queued, and calling again with
        the same recipients (keyed or not) is safe.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        rows = [
            (r.account_id, r.language, r.at.isoformat() if r.at else "", event_id_for(kind, r.key)) for r in recipients
        ]
        calls = [(kind, tuple(rows[i : i + batch_size])) for i in range(0, len(rows), batch_size)]
        if not calls:
            return []
        try:
            return self._queues.enqueue_many(
                queue, SEND_BATCH, calls, retry=self._retry, failure_ttl=FAILURE_TTL, timeout=BATCH_TIMEOUT
            )
        except RedisError as exc:
            raise EmailUnavailable(str(exc)) from None

    def language_of(self, account_id: str, default: str) -> str:
        with self._store.session() as session:
            preference = session.get(AccountPreference, account_id)
            return preference.language if preference else default
