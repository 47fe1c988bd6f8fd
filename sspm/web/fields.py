"""Form fields every feature asks for, defined once.

DataRequired also refuses whitespace-only values, so an empty password
never reaches a bind; the length caps bound the work one request can cause.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from sspm.policy import logins

#: Longer than any real user name or password, short enough to bound work.
MAX_USERNAME = logins.MAX_LENGTH
MAX_PASSWORD = 512
MAX_ANSWER = 200


def username(label: LazyString | None = None, *, or_email: bool = False) -> StringField:
    required = (
        _l("Enter your user name or email, for example Jsmith.")
        if or_email
        else _l("Enter your user name, for example Jsmith.")
    )
    return StringField(
        label or (_l("User name or email") if or_email else _l("User name")),
        validators=[
            DataRequired(required),
            Length(max=MAX_USERNAME, message=_l("This user name is too long. Check it and try again.")),
        ],
    )


def password(label: LazyString, required: LazyString) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(required), Length(max=MAX_PASSWORD, message=_l("This password is too long."))],
    )


def new_password() -> PasswordField:
    return password(_l("New password"), _l("Enter a new password."))


def confirm_password() -> PasswordField:
    return password(_l("Confirm new password"), _l("Type the new password again."))


def answer(label: str | LazyString) -> StringField:
    """A security-question answer; labelled with the question itself where one is asked."""
    return StringField(
        label,
        validators=[
            DataRequired(_l("Type an answer.")),
            Length(max=MAX_ANSWER, message=_l("This answer is too long.")),
        ],
    )
