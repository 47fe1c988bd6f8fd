"""The web side of the email pipeline: putting email jobs on the email queue.

Only ids, a language, a time and an address go into a job; never a token,
a password or an answer. The jobs are named, not imported (they are the
email feature's, sspm.email.jobs): this layer only queues them. Whoever
asked decides what a job that could not be queued means, and audits it: a
notification that cannot be queued (Redis away) does not undo what the
user just did; a reset email that cannot be queued is reported to the user,
who can ask again.
"""

from __future__ import annotations

import logging
import uuid

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry

from connectors.directory import Account
from sspm.infra import jobs
from sspm.infra.store import AccountPreference, Store, utcnow

log = logging.getLogger(__name__)

SEND_RESET_LINK = "sspm.email.jobs.send_reset_link"
SEND_NOTIFICATION = "sspm.email.jobs.send_notification"
SEND_CALLER_CODE = "sspm.email.jobs.send_caller_code"
#: A failed email job stays this long in RQ's failed registry, for an operator to requeue.
FAILURE_TTL = 7 * 86400


class EmailUnavailable(Exception):
    """The queue could not take the job: nothing was sent, nothing was lost."""


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

    def caller_code(self, account: Account, agent_id: str, nonce: str) -> None:
        """Queue the email of a helpdesk verification code (sspm.account.callercode): ids and a nonce, never
        the code, which the worker makes. In the owner's own language. Raises EmailUnavailable."""
        self._enqueue(SEND_CALLER_CODE, account.id, agent_id, nonce)

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

    def language_of(self, account_id: str, default: str) -> str:
        with self._store.session() as session:
            preference = session.get(AccountPreference, account_id)
            return preference.language if preference else default
