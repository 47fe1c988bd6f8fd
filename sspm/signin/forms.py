"""The sign-in form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField

from sspm.web import fields


class SignInForm(FlaskForm):
    username = fields.username(or_email=True)
    password = fields.password(_l("Password"), _l("Enter your password."))
    next = HiddenField()
