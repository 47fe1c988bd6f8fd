"""The sign-in form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from sspm.change.forms import MAX_PASSWORD, MAX_USERNAME


class SignInForm(FlaskForm):
    username = StringField(
        _l("User name or email"),
        validators=[
            DataRequired(_l("Enter your user name or email, for example Jsmith.")),
            Length(max=MAX_USERNAME, message=_l("This user name is too long. Check it and try again.")),
        ],
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Enter your password.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )
    next = HiddenField()
