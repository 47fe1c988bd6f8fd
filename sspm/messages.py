"""Every refusal a user can meet, in plain words: the one place they live.

Services answer with a reason code (a connector Outcome value or a local
problem); pages look the sentence up here. Each sentence says what
happened and what to do next, and none of them names a directory code.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

REASONS: dict[str, LazyString] = {
    "bad_credentials": _l("The user name or password is not right. Check both (is Caps Lock on?) and try again."),
    "locked": _l(
        "Your account is locked after too many wrong passwords. Wait until it unlocks by itself, then try again."
    ),
    "disabled": _l("Your account is disabled. Contact %(lra)s to have it enabled."),
    "expired": _l("Your password has expired. Change it here with your expired password."),
    "must_change": _l("Your password is temporary. Change it here before you use it anywhere else."),
    "too_short": _l("The new password is too short. Use at least %(min_length)s characters."),
    "too_weak": _l("The new password is too easy to guess. Make it longer, for example with a few unrelated words."),
    "contains_name": _l("The new password must not contain your user name or your name. Choose another one."),
    "in_history": _l("You have used this password recently. Choose one you have not used before."),
    "same_as_old": _l("The new password must be different from your current password."),
    "too_young": _l("Your password was changed too recently to change it again. Try again later, or contact %(lra)s."),
    "mismatch": _l("The two new passwords do not match. Type the same new password in both boxes."),
    "unavailable": _l("We could not reach the directory, so nothing was changed. Wait a minute and try again."),
    "rate_limited": _l("Too many attempts. For your security, wait a few minutes before you try again."),
}


def reason_text(reason: str, **values: object) -> str:
    """The translated sentence for ``reason``, with its placeholders filled."""
    return str(REASONS[reason]) % values
