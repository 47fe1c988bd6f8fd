"""Wrong answers about one account, counted once whoever asks: the account's recovery limit.

Forgot Password and Unlock Account (sspm.recovery) count failed challenges
per account, and pause recovery for that account once too many failed in
the window. A helpdesk agent checking a caller's emailed code or security
answers is the same guess by another road, so the helpdesk counts into the
same counter and obeys the same pause: someone who failed the questions
online cannot ring the helpdesk for more tries, nor the other way round.
"""

from __future__ import annotations

from sspm.infra.state import State

#: The Redis kind of the counters (kept as it was when recovery alone used it).
KIND = "recovery-failures"


def account_key(account_id: str) -> str:
    """The counter of an account the directory found, however its name was typed."""
    return f"account:{account_id}"


def paused(state: State, key: str, max_failures: int) -> bool:
    """Whether ``key`` already failed ``max_failures`` times in its window: every answer fails until it ends."""
    return state.count(KIND, key) >= max_failures


def attempt(state: State, key: str, max_failures: int, window_seconds: int) -> bool:
    """Count a try against ``key`` before it is judged; False when it comes past the limit (it must fail).

    Counted first, in one step, so that tries sent at once cannot each read
    "not paused yet" before any of them is counted: of any number racing, no
    more than ``max_failures`` in the window may succeed. A try that proves
    who it is is taken back (:func:`succeeded`), so the counter still counts
    failures.
    """
    return state.hit(KIND, key, window_seconds) <= max_failures


def succeeded(state: State, key: str) -> None:
    """Take back the count of a try :func:`attempt` let through and that proved who it was."""
    state.unhit(KIND, key)
