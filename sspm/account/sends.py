"""How many messages one account is sent an hour, of each kind: the one cap.

A message someone else can make SSPM send to a person (a helpdesk caller
code, a link to confirm a new login email, a code to a new mobile number)
is a way to flood that person's mailbox or phone. Each kind is counted per
account, whoever asks and from whichever app process (the counters are in
Redis), and refused past the cap; the refusal is said only to whoever asked.
"""

from __future__ import annotations

from sspm.infra.state import State

#: Messages of one kind one account may be sent in an hour.
SENDS_PER_HOUR = 5
_WINDOW_SECONDS = 3600


def over(state: State, kind: str, account_id: str) -> bool:
    """Count one more message of ``kind`` to ``account_id``; True once past the cap (send nothing then)."""
    return state.hit(kind, account_id, _WINDOW_SECONDS) > SENDS_PER_HOUR
