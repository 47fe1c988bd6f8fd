"""What every form page does with a refusal: where the sentence goes, where the keyboard lands, and the status.

One rule for all pages, so a user meets the same behaviour everywhere and a
test can rely on it: 200 for a fresh form, 422 for any refusal, 503 when
something SSPM depends on is away (nothing was changed; try again).

A refusal about one field (a new password the rules refuse, two passwords
that differ, a CAPTCHA misread, a question chosen twice) is said next to that
field, marked invalid there and linked from the summary, exactly like a field
left empty: one mechanism, whatever found the problem (the form or a service).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field

from sspm.policy.reasons import NEW_PASSWORD_REASONS, UNAVAILABLE, Reason
from sspm.web.messages import reason_text

#: Refusals about one field, by the name every form gives that field (sspm.fields).
FIELD_OF_REASON: dict[Reason, str] = {
    **dict.fromkeys(NEW_PASSWORD_REASONS, "new"),
    # Said where the second typing went wrong, not on the first box.
    Reason.MISMATCH: "confirm",
    Reason.CAPTCHA_WRONG: "captcha",
}

#: Said next to a password box the server emptied: it never sends a password back into a page.
RETYPE = _l("For your security, this box was emptied. Type it again.")


@runtime_checkable
class LocatesReasons(Protocol):
    """A form whose field for a reason depends on what was typed (which of three questions was repeated)."""

    def field_for(self, reason: Reason) -> Field | None: ...


def status_for(form: FlaskForm, reason: Reason | None) -> int:
    if reason in UNAVAILABLE:
        return 503
    if form.is_submitted() and (reason or form.errors):
        return 422
    return 200


def explain(form: FlaskForm, reason: Reason | None, **values: object) -> str | None:
    """The sentence for ``reason`` for the page's summary, or None when it was put on its field.

    Also decides where the keyboard lands when the page comes back (see ``_land``).
    """
    message = reason_text(reason, **values) if reason is not None else None
    field = _field_for(form, reason) if reason is not None else None
    if field is not None and message is not None:
        field.errors = [*field.errors, message]
        message = None
    _land(form, message)
    return message


def focus(field: Field) -> None:
    """Put the keyboard on ``field`` when the page loads (the error summary then does not take it)."""
    field.render_kw = {**(field.render_kw or {}), "autofocus": True}


def _field_for(form: FlaskForm, reason: Reason) -> Field | None:
    found = form.field_for(reason) if isinstance(form, LocatesReasons) else None
    if found is not None:
        return found
    name = FIELD_OF_REASON.get(reason)
    field = getattr(form, name, None) if name else None
    return field if isinstance(field, Field) else None


def _land(form: FlaskForm, message: str | None) -> None:
    """Where the keyboard lands after a refusal, and why password boxes came back empty.

    Several problems, or one about the whole page: on the summary, which a
    screen reader reads first and whose links lead to each field. One
    problem on one field: on that field, whose label and message are read
    together, so the user fixes it where they are. Passwords are never sent
    back into a page, so every password box comes back empty after a
    refusal; those not in error say so, and why, next to them.
    """
    if not form.is_submitted():
        return
    visible = [f for f in form if f.type not in ("CSRFTokenField", "HiddenField")]
    emptied = [f for f in visible if f.type == "PasswordField" and f.raw_data and f.raw_data[0]]
    in_error = [f for f in visible if f.errors]
    if not (message or in_error):
        return
    for field in emptied:
        if not field.errors:
            field.description = RETYPE
    if message is None and len(in_error) == 1:
        focus(in_error[0])
