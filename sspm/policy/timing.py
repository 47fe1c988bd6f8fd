"""Refusals take the same time, whoever they are about.

A wrong password for a real account costs the directory a write (it records
the failure); an unknown user name costs it nothing. Padding every refusal
to the same floor hides that difference from anyone timing the answers.
"""

from __future__ import annotations

import time

#: Above any refusal's real cost here (a few ms), small enough not to be felt.
REFUSAL_FLOOR_SECONDS = 0.25


def pad_refusal(started: float, floor: float = REFUSAL_FLOOR_SECONDS) -> None:
    """Sleep until ``floor`` seconds have passed since ``started`` (perf_counter)."""
    left = floor - (time.perf_counter() - started)
    if left > 0:
        time.sleep(left)
