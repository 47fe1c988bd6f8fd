"""When to remind someone their password expires: the days before, read from SSPM_REMINDER_DAYS.

Pure, so the settings refuse a bad value at start (one line naming the key)
and the reminder job reads the same days the same way.
"""

from __future__ import annotations

#: No password lasts ten years (AD's maxPwdAge stops at 999 days); past that a date leaves datetime's range,
#: and every reminders and clean-up run would fail on it.
LONGEST = 3650


class BadThresholds(ValueError):
    """SSPM_REMINDER_DAYS is not whole numbers of days, each from 1 to LONGEST, separated by commas."""


def thresholds(text: str) -> tuple[int, ...]:
    """The reminder days, largest first and each once: ``"1, 7,14,7"`` → (14, 7, 1)."""
    try:
        days = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise BadThresholds(f"SSPM_REMINDER_DAYS must be whole numbers of days separated by commas: {text!r}") from None
    if not days or min(days) < 1 or max(days) > LONGEST:
        raise BadThresholds(f"SSPM_REMINDER_DAYS needs at least one number of days, each from 1 to {LONGEST}: {text!r}")
    return tuple(sorted(days, reverse=True))


__all__ = ["BadThresholds", "thresholds"]
