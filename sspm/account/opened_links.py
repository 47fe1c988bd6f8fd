"""Opened one-time links: the browser keeps a random handle, never the token.

Every emailed link (a reset, a new user's set-up, a new login email) is
opened the same way: a GET trades the token in the address bar for a random
handle kept in the browser's session, while Redis keeps the handle's digest
→ the token's digest for as long as the link has left to live. The token
leaves the address bar (and the history, and the Referer), a mail scanner's
GET spends nothing, and what Redis holds cannot be replayed as a cookie.
Each feature names its own kind, so one feature's handle opens nothing in
another's.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from connectors.directory import Account, Directory
from sspm.account import tokens
from sspm.infra.state import State
from sspm.infra.store import Store, utcnow


@dataclass(frozen=True)
class OpenedLinks:
    """The opened links of one kind (``kind`` is the Redis namespace, ``purpose`` the tokens')."""

    kind: str
    purpose: str

    def open(self, store: Store, state: State, link: tokens.Digest) -> str | None:
        """A new handle for a live link; None when the link is not live (spent, expired, voided)."""
        until = tokens.live_until(store, link, self.purpose)
        if until is None:
            return None
        handle = secrets.token_urlsafe(32)
        ttl = math.ceil((until - utcnow()).total_seconds())
        state.put(self.kind, _key(handle), {"link": link}, ttl=ttl)
        return handle

    def link_of(self, state: State, handle: str) -> tokens.Digest | None:
        record = state.get(self.kind, _key(handle))
        return tokens.Digest(record["link"]) if record else None

    def forget(self, state: State, handle: str) -> None:
        """The handle opens nothing any more (the link was used, or found dead)."""
        state.delete(self.kind, _key(handle))

    def live_account(
        self, directory: Directory, store: Store, link: tokens.Digest, clock_skew: timedelta
    ) -> Account | None:
        """The account a live link was made for, or None.

        A link made before the password last changed, through SSPM or not,
        is void (tokens.outdated): whoever changed it holds the account now,
        and the email's reader must not take it over. Callers add their own
        refusals (a disabled account for a reset; an ended record for a
        set-up).
        """
        account_id = tokens.find(store, link, self.purpose)
        if account_id is None:
            return None
        account = directory.get_account(account_id)
        if account is None:
            return None
        changed = directory.status(account).password_changed_at
        found = tokens.find(store, link, self.purpose, changed_since=changed, clock_skew=clock_skew)
        return account if found else None


def _key(handle: str) -> str:
    # As for sessions: what Redis holds cannot be replayed as a cookie.
    return hashlib.sha256(handle.encode("utf-8", "surrogatepass")).hexdigest()
