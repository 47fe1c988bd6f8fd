"""The profile's forms: a new login email, a new mobile number, its texted code, and confirming a link."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from sspm.policy.reasons import Reason
from sspm.web import fields

#: An address as HTML's email input accepts one (WHATWG), in ASCII: what OpenLDAP's mail
#: (IA5String) can hold, and what a person can type at a sign-in prompt.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
#: RFC 5321's longest path, less the angle brackets.
MAX_EMAIL = 254
MAX_PHONE = 40


def _password() -> PasswordField:
    return fields.password(_l("Your password"), _l("Enter your password, to show it is you."))


class _SaysPassword:
    """A wrong password is said next to the password box."""

    password: PasswordField

    def field_for(self, reason: Reason) -> Field | None:
        return self.password if reason in (Reason.BAD_CREDENTIALS, Reason.LOCKED, Reason.DISABLED) else None


class EmailForm(_SaysPassword, FlaskForm):
    email = EmailField(
        _l("New login email"),
        validators=[
            DataRequired(_l("Enter the new email address, for example name@example.org.")),
            Length(max=MAX_EMAIL, message=_l("This address is too long. Check it and try again.")),
            Regexp(
                EMAIL_PATTERN,
                message=_l(
                    "This is not an email address we can use. Type it like name@example.org, "
                    "with no spaces and no accented letters."
                ),
            ),
        ],
    )
    password = _password()

    def field_for(self, reason: Reason) -> Field | None:
        if reason in (Reason.EMAIL_SAME, Reason.EMAIL_TAKEN):
            return self.email
        return super().field_for(reason)


class PhoneForm(_SaysPassword, FlaskForm):
    phone = StringField(
        _l("New mobile number"),
        validators=[
            DataRequired(_l("Enter your new mobile number, for example 613 555 0123.")),
            Length(max=MAX_PHONE, message=_l("This number is too long. Check it and try again.")),
        ],
        render_kw={"inputmode": "tel"},
    )
    password = _password()

    def field_for(self, reason: Reason) -> Field | None:
        if reason in (Reason.PHONE_INVALID, Reason.PHONE_NOT_MOBILE, Reason.PHONE_SAME):
            return self.phone
        return super().field_for(reason)


class CodeForm(FlaskForm):
    code = StringField(
        _l("Code from the text message"),
        validators=[
            DataRequired(_l("Enter the 6-digit code we texted to your new number.")),
            Length(max=20, message=_l("This code is too long. Type the 6 digits of the text message.")),
        ],
        render_kw={"inputmode": "numeric"},
    )

    def field_for(self, reason: Reason) -> Field | None:
        return self.code if reason is Reason.PHONE_CODE_WRONG else None


class ConfirmForm(FlaskForm):
    """Confirming an opened link while signed in as its account: the session is the proof."""


class ConfirmWithPasswordForm(_SaysPassword, FlaskForm):
    """Confirming an opened link while signed in as nobody: the account's password is the proof."""

    password = _password()
