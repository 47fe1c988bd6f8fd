"""The change-password form: field rules only; the policy lives in sspm.passwords."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from sspm.web import fields


class ChangePasswordForm(FlaskForm):
    username = fields.username()
    current = fields.password(_l("Current, expired or temporary password"), _l("Enter your current password."))
    new = fields.new_password()
    confirm = fields.confirm_password()
