"""A login email waiting for its proof: where the new address is kept until its owner confirms it.

Changing the address people sign in and recover with, without proof that
the new one is theirs, or dropping the old one before that proof, are the
takeover bugs this avoids. So the directory keeps the old address until the
link sent to the new one is used (sspm.profile), and the new address lives
only here, in Redis, for as long as the link lives:

- keyed by the link's digest (``tokens.Digest``): what the link confirms is
  exactly the address it was sent to, and nothing a later request asked;
- bound to the account the token was issued for (``tokens``, purpose
  ``VERIFY_EMAIL_PURPOSE``): the confirmation checks both agree.

The worker writes it as it makes the token (sspm.email.jobs), since only it
ever holds the raw token; the request that asked writes what the profile
page shows meanwhile (``asked``). Both go with a Redis flush: the user asks
again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sspm.account.tokens import Digest
from sspm.infra.state import State

#: The purpose of the link that proves a new login email (sspm.account.tokens).
VERIFY_EMAIL_PURPOSE = "verify_email"

_PENDING = "email-change"
_ASKED = "email-change-asked"


@dataclass(frozen=True)
class Pending:
    """What one link confirms: this account's login email becomes ``address``."""

    account_id: str
    address: str
    #: The account's user name when the link was made: the attempt limits key on it (sspm.web.limits).
    username: str


def remember(state: State, link: Digest, pending: Pending, lifetime: timedelta) -> None:
    """Keep what the link ``link`` confirms, for as long as it works."""
    value = {"account_id": pending.account_id, "address": pending.address, "username": pending.username}
    state.put(_PENDING, link, value, ttl=math.ceil(lifetime.total_seconds()))


def pending(state: State, link: Digest) -> Pending | None:
    found = state.get(_PENDING, link)
    if found is None:
        return None
    return Pending(str(found["account_id"]), str(found["address"]), str(found.get("username", "")))


def forget(state: State, link: Digest) -> None:
    state.delete(_PENDING, link)


def note_asked(state: State, account_id: str, address: str, lifetime: timedelta) -> None:
    """Remember, for the profile page, that a link was asked for to ``address`` (the newest ask wins)."""
    state.put(_ASKED, account_id, {"address": address}, ttl=math.ceil(lifetime.total_seconds()))


def asked(state: State, account_id: str) -> str | None:
    """The address the account's newest link went (or is going) to, while it may still work."""
    found = state.get(_ASKED, account_id)
    return str(found["address"]) if found else None


def settled(state: State, account_id: str) -> None:
    """The change was confirmed (or is moot): the profile page stops saying one is waiting."""
    state.delete(_ASKED, account_id)
