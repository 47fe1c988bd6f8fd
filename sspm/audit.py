"""The audit trail: every attempt, success and refusal, in SSPM's store.

A row says who (account id and user name when known), what, when, from
which address and how it ended. Never a password or an answer; and never a
raw typed user name for an unknown account, since that is often a password
typed in the wrong box: a short digest stands in for it.
"""

from __future__ import annotations

import hashlib

from connectors.directory import Account
from sspm.store import AuditEvent, Store


def subject_of(account: Account | None, typed: str | None, username: str | None = None) -> str:
    if account is not None:
        return account.username
    if username:
        return username
    digest = hashlib.sha256((typed or "").strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()
    return f"unknown:{digest[:16]}"


def record(
    store: Store,
    action: str,
    outcome: str,
    *,
    source_ip: str,
    account: Account | None = None,
    account_id: str | None = None,
    username: str | None = None,
    typed: str | None = None,
) -> None:
    with store.session() as session:
        session.add(
            AuditEvent(
                action=action,
                outcome=outcome,
                account_id=account.id if account else account_id,
                subject=subject_of(account, typed, username),
                source_ip=source_ip[:64],
            )
        )
