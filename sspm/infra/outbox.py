"""The web side of the email pipeline: putting jobs on the RQ queue.

Only ids, a language, a time and an address go into a job; never a token,
a password or an answer. A notification that cannot be queued (Redis away)
is logged and audited but does not undo what the user just did; a reset
email that cannot be queued is reported to the user, who can ask again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

from connectors.directory import Account
from sspm.account import audit
from sspm.email import jobs
from sspm.infra.store import AccountPreference, Store, utcnow

log = logging.getLogger(__name__)


class EmailUnavailable(Exception):
    """The queue could not take the job: nothing was sent, nothing was lost."""


class Outbox:
    def __init__(self, redis: Redis, store: Store, retry_seconds: tuple[int, ...]) -> None:
        self._queue = Queue(jobs.QUEUE, connection=redis)
        self._store = store
        self._retry = Retry(max=len(retry_seconds), interval=list(retry_seconds)) if retry_seconds else None

    def _enqueue(self, function: Callable[..., str], *args: str) -> str:
        event_id = uuid.uuid4().hex
        try:
            self._queue.enqueue(function, *args, event_id, job_id=event_id, retry=self._retry, failure_ttl=7 * 86400)
        except RedisError as exc:
            raise EmailUnavailable(str(exc)) from None
        return event_id

    def reset_link(self, account: Account | None, language: str) -> None:
        """Queue a reset email. Queued for unknown accounts too (as a no-op job),
        so the request costs the same whoever it names."""
        eligible = account is not None and bool(account.email) and not account.disabled
        self._enqueue(jobs.send_reset_link, account.id if account and eligible else "", language)

    def notify(self, account: Account, kind: str, language: str, source_ip: str) -> None:
        """Queue "this just happened to your account" (the worker remembers the language)."""
        try:
            self._enqueue(jobs.send_notification, account.id, kind, language, utcnow().isoformat(), source_ip)
        except EmailUnavailable as exc:
            log.warning("notification %s for %s not queued: %s", kind, account.id, exc)
            audit.record(self._store, audit.Action.email(kind), "not_queued", source_ip=source_ip, account=account)

    def language_of(self, account_id: str, default: str) -> str:
        with self._store.session() as session:
            preference = session.get(AccountPreference, account_id)
            return preference.language if preference else default
