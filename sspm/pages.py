"""What every form page does with a refusal: where the sentence goes, and the status.

One rule for all pages, so a user meets the same behaviour everywhere and a
test can rely on it: 200 for a fresh form, 422 for any refusal, 503 when
something SSPM depends on is away (nothing was changed; try again).
"""

from __future__ import annotations

from flask_wtf import FlaskForm

from sspm.messages import NEW_PASSWORD_REASONS, reason_text

UNAVAILABLE = frozenset({"unavailable", "email_unavailable"})


def status_for(form: FlaskForm, reason: str | None) -> int:
    if reason in UNAVAILABLE:
        return 503
    if form.is_submitted() and (reason or form.errors):
        return 422
    return 200


def explain(form: FlaskForm, reason: str | None, **values: object) -> str | None:
    """The sentence for ``reason`` for the page's summary, or None.

    A reason about the new password is put on that field instead, so it is
    read next to it (and linked from the summary).
    """
    if reason is None:
        return None
    message = reason_text(reason, **values)
    new = getattr(form, "new", None)
    if reason in NEW_PASSWORD_REASONS and new is not None:
        new.errors = [*new.errors, message]
        return None
    return message
