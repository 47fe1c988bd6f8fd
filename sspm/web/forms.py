"""Forms more than one feature shows, defined once (their fields come from sspm.web.fields).

The home page carries Change Password's form; Forgot Password by questions
and by emailed link ask for the new password with the same one.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from sspm.web import fields


class ChangePasswordForm(FlaskForm):
    """Change Password's form, on its own page and on the home page (posted to /change)."""

    username = fields.username()
    current = fields.password(_l("Current, expired or temporary password"), _l("Enter your current password."))
    new = fields.new_password()
    confirm = fields.confirm_password()


class NewPasswordForm(FlaskForm):
    """A new password twice, after who the user is was proven another way (questions, an emailed link)."""

    new = fields.new_password()
    confirm = fields.confirm_password()
