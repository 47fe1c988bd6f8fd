"""The change-password form: field rules only; the policy lives in sspm.passwords."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

#: Longer than any real user name or password, short enough to bound work.
MAX_USERNAME = 256
MAX_PASSWORD = 512


class ChangePasswordForm(FlaskForm):
    # DataRequired also refuses whitespace-only values, before any bind.
    username = StringField(
        _l("User name"),
        validators=[
            DataRequired(_l("Enter your user name, for example Jsmith.")),
            Length(max=MAX_USERNAME, message=_l("This user name is too long. Check it and try again.")),
        ],
    )
    current = PasswordField(
        _l("Current, expired or temporary password"),
        validators=[
            DataRequired(_l("Enter your current password.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )
    new = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(_l("Enter a new password.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )
    confirm = PasswordField(
        _l("Confirm new password"),
        validators=[
            DataRequired(_l("Type the new password again.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )
