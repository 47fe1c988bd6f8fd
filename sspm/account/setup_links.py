"""Set-up links: how the owner of a new account proves their email and chooses its first password.

Staff create a record; its directory account waits, with no usable password
(``Provisioning.create_account(..., None)``), for its owner. They get an
email with a one-time link (``tokens``, purpose ``SETUP_PURPOSE``: a reset
link never opens the set-up page, nor the other way round). Opening it
proves the address; choosing a password there makes the account usable
(``Provisioning.activate_account``, in sspm.setup).

The token is made by the worker as the email goes out, as a reset link's is
(sspm.email.jobs), so the raw token exists only in the email; the newest
link voids the older ones, so a re-sent email kills the one before.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connectors.directory import Account
from sspm.account import audit, tokens
from sspm.infra.outbox import Outbox
from sspm.infra.store import PersonRecord, Store
from sspm.policy.actor import Actor

#: The purpose set-up tokens are bound to (sspm.account.tokens).
SETUP_PURPOSE = "setup"


def issue_setup_link(store: Store, outbox: Outbox, account: Account, language: str, lifetime: timedelta) -> None:
    """Queue the set-up email of ``account``, in ``language``, with a link that works for ``lifetime``.

    Every older set-up link of the account dies now (a re-send kills the
    one before at once); the worker makes the new token as it sends. Raises
    EmailUnavailable when the job could not be queued: nothing was sent,
    the older links are dead all the same; the caller audits and may try again.
    """
    tokens.void(store, account.id, SETUP_PURPOSE)
    outbox.setup_link(account, language, lifetime)


def email_verified(store: Store, account: Account, *, actor: Actor) -> None:
    """The owner of ``account`` opened a live set-up link: the address the link went to is theirs.

    The one place that fact is recorded; the hook a record of the person
    (sspm's staff records) marks its email verified from.
    """
    audit.record(store, audit.Action.EMAIL_VERIFIED, "ok", actor=actor, account=account)


def still_to_set_up(store: Store, account_id: str) -> bool:
    """Whether the person behind ``account_id`` may still set the account up; asked before a link is made and
    again each time one is used.

    The directory cannot tell an account awaiting set-up from one that was
    also disabled since (a record ended before its owner came), and
    ``activate_account`` would enable both: so the person's record decides
    (sspm.people): an account whose record ended may not; one without a
    record (made another way) may.
    """
    with store.session() as session:
        ended = session.scalar(
            select(PersonRecord.id).where(PersonRecord.account_id == account_id, PersonRecord.status == "ended")
        )
    return ended is None
