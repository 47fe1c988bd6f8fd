"""One-time codes a helpdesk agent sends to a caller's registered email, and checks once.

Someone on the phone says they are jsmith; the agent asks SSPM to email a
code to the address the directory has for jsmith, and the caller reads it
back. Only the holder of that mailbox can, so it proves the caller is the
account's owner (or has their mailbox, which is as good as their password:
a reset link goes there too).

The code never passes through a queue or the web process: the agent's
request leaves a *request* in Redis (who asked, for which account, a random
nonce) and queues an email job with ids only; the worker makes the code,
keeps its HMAC under that nonce, and emails it. So the code exists in one
place, the email. A code is bound to one agent and one account, lasts
``ttl`` seconds, and is checked once: right, wrong or refused because the
account's checks are paused, it is spent (a typo means sending another). A
newer request voids an older one, whose email then carries a code nothing
accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from sspm.infra.state import State

#: The agent's request, by agent and account.
REQUEST = "helpdesk-code"
#: The code's HMAC, by the request's nonce: a newer request (another nonce) never finds an older code.
SENT = "helpdesk-code-sent"
DIGITS = 6


class Check(StrEnum):
    """How checking a typed code ended; also the audit row's outcome."""

    RIGHT = "right"
    WRONG = "wrong"
    #: No code was waiting: none asked for, already checked, not sent yet, or past its time.
    GONE = "gone"


def _key(agent_id: str, account_id: str) -> str:
    return f"{agent_id}:{account_id}"


def _digest(secret: str, agent_id: str, account_id: str, nonce: str, code: str) -> str:
    material = "\0".join(("helpdesk-code", agent_id, account_id, nonce, code)).encode()
    return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()


def request(state: State, agent_id: str, account_id: str, ttl: int) -> str:
    """Record that ``agent_id`` asked for a code for ``account_id``; the nonce the email job is given.

    Replaces any earlier request of the same agent for the same account.
    """
    nonce = secrets.token_urlsafe(16)
    record = {"agent": agent_id, "account": account_id, "nonce": nonce, "until": time.time() + ttl}
    state.put(REQUEST, _key(agent_id, account_id), record, ttl)
    return nonce


def waiting(state: State, agent_id: str, account_id: str) -> bool:
    """Whether a code this agent asked for this account can still be checked."""
    return state.get(REQUEST, _key(agent_id, account_id)) is not None


def asked(state: State, agent_id: str, account_id: str, nonce: str) -> bool:
    """Whether the request ``nonce`` still stands (not checked, replaced or past its time): the worker asks first."""
    record = state.get(REQUEST, _key(agent_id, account_id))
    return record is not None and record.get("nonce") == nonce and record.get("account") == account_id


def issue(state: State, agent_id: str, account_id: str, nonce: str, *, key: str) -> str | None:
    """A fresh code for the request ``nonce`` (the worker, just before it emails it); None if it is void.

    Void: checked already, past its time, or replaced by a newer request.
    Called again for the same request (a retried email), it makes another
    code and only the newest counts: the earlier email never left.
    """
    record = state.get(REQUEST, _key(agent_id, account_id))
    if record is None or record.get("nonce") != nonce or record.get("account") != account_id:
        return None
    left = int(float(record["until"]) - time.time())
    if left <= 0:
        return None
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    state.put(SENT, nonce, {"digest": _digest(key, agent_id, account_id, nonce, code)}, left)
    return code


@dataclass(frozen=True)
class Pending:
    """A code taken out of Redis to be judged: whatever the judgement, nothing else can take it again."""

    nonce: str
    digest: str


def take(state: State, agent_id: str, account_id: str) -> Pending | None:
    """The code emailed for this agent's request about this account, spent now; None if none is waiting.

    None: none asked for, already checked, not sent yet, or past its time.
    Taken apart from :func:`judge` so that the helpdesk counts the try
    against the account's limit between the two, and only for a code that
    was there to guess (sspm.account.attempts.attempt).
    """
    record = state.take(REQUEST, _key(agent_id, account_id))
    if record is None or record.get("agent") != agent_id or record.get("account") != account_id:
        return None
    sent = state.take(SENT, str(record["nonce"]))
    if sent is None:
        return None
    return Pending(str(record["nonce"]), str(sent["digest"]))


def judge(pending: Pending, agent_id: str, account_id: str, typed: str, *, key: str) -> Check:
    """Whether ``typed`` is the code ``pending`` was made from (spaces and dashes as the caller reads them)."""
    digits = "".join(typed.split()).replace("-", "")
    given = _digest(key, agent_id, account_id, pending.nonce, digits)
    return Check.RIGHT if hmac.compare_digest(pending.digest, given) else Check.WRONG
