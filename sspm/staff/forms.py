"""The staff sign-in's forms: password, second factor, authenticator enrollment, re-authentication, sign-out."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, StringField
from wtforms.validators import DataRequired, Length

from sspm.policy.reasons import Reason
from sspm.web import fields

#: A recovery code typed with spaces is about 20 characters; anything much longer is not a code.
MAX_CODE = 40


def _code(label: str | None = None) -> StringField:
    return StringField(
        label or _l("Code"),
        validators=[
            DataRequired(_l("Enter the 6-digit code from your authenticator app, or a recovery code.")),
            Length(max=MAX_CODE, message=_l("This code is too long. Check it and try again.")),
        ],
    )


class _CodeReasons:
    """Say a wrong code next to the code box, where the staff member types the next one."""

    code: StringField

    def field_for(self, reason: Reason) -> Field | None:
        return self.code if reason is Reason.STAFF_CODE_WRONG else None


class StaffSignInForm(FlaskForm):
    # Named "username" so the shared per-login limit (sspm.web.limits.guarded) counts it.
    username = fields.username(or_email=True)
    password = fields.password(_l("Password"), _l("Enter your password."))
    next = HiddenField()


class CodeForm(_CodeReasons, FlaskForm):
    code = _code()
    next = HiddenField()


class EnrollForm(_CodeReasons, FlaskForm):
    code = StringField(
        _l("Code from your authenticator app"),
        validators=[
            DataRequired(_l("Enter the 6-digit code your authenticator app shows now.")),
            Length(max=MAX_CODE, message=_l("This code is too long. Check it and try again.")),
        ],
        render_kw={"inputmode": "numeric"},
    )
    #: The page's own secret, sealed (sspm.staff.service.Enrollment.sealed), to show the same QR code after a typo.
    pending = HiddenField()
    next = HiddenField()


class ReauthForm(FlaskForm):
    # A refusal here is said in the summary: it does not tell which of the two was wrong.
    password = fields.password(_l("Password"), _l("Enter your password."))
    code = _code()
    next = HiddenField()


class SignOutForm(FlaskForm):
    """Nothing but the CSRF token: signing out is a POST a page of this site asked for."""
