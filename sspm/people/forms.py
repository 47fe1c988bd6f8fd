"""The record forms: every field checked with a plain-language sentence tied to it, in the page's language.

Names may be written in any script (Zoë, Nguyễn, 李): they are refused
only for what no directory can hold, a control character (a NUL, a tab)
or more than 64 characters, Active Directory's bound. Characters that mean
something in a DN or a filter (``*``, ``,``, ``+``, ``=``, ``\\``, a leading
``#``) are names like any other: the connectors escape every value they
write. A mobile number is read with ``phonenumbers`` and kept in E.164.
What the organization list offers is what the staff member's grants allow
now; the service checks again whatever comes back.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

import phonenumbers
from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, HiddenField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from sspm.people.service import Details, Kind
from sspm.policy.reasons import Reason

#: Active Directory's bound for names, titles and departments (connectors.ldapbase.MAX_NAME).
MAX_NAME = 64
MAX_EMAIL = 256
MAX_COLLEGE = 128
MAX_MANAGER = 256
_EMAIL = re.compile(r"[!-~]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_REGISTRATION = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
LANGUAGES = (("en", "English"), ("fr", "Français"))


def _no_control_characters(_form: FlaskForm, field: Field) -> None:
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in field.data or ""):
        raise ValidationError(_l("This holds an invisible control character (such as a tab). Type it again."))


def _email(_form: FlaskForm, field: Field) -> None:
    value = (field.data or "").strip()
    if value and (not _EMAIL.fullmatch(value) or value.count("@") != 1):
        raise ValidationError(
            _l("This is not an email address we can use. Type it like name@example.org, in plain letters.")
        )


def _strip(value: object) -> object:
    return " ".join(value.split()) if isinstance(value, str) else value


def phone_region() -> str:
    """The country of a number typed without its +country code (SSPM_PHONE_REGION), CA when none is set."""
    settings = current_app.config["SSPM_SETTINGS"]
    return str(getattr(settings, "phone_region", "") or "CA")


def mobile_e164(typed: str, region: str) -> str | None:
    """``typed`` as E.164 when it is a valid mobile (or possibly mobile) number, else None."""
    try:
        number = phonenumbers.parse(typed, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    kind = phonenumbers.number_type(number)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _mobile(_form: FlaskForm, field: Field) -> None:
    if not field.data:
        return
    e164 = mobile_e164(field.data, phone_region())
    if e164 is None:
        raise ValidationError(
            _l("This is not a mobile number we can use. Type it with its area code, or with + and the country code.")
        )
    field.data = e164


class Day(DateField):
    """A date typed or picked as YYYY-MM-DD, refused with a sentence saying how to write it."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not "".join(valuelist or []).strip():
            self.data = None  # empty: DataRequired or Optional says what it means
            return
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            message = _l("This is not a date we can read. Write it like 2026-03-02 (year, month, day).")
            raise ValueError(message) from None


def _language(_form: FlaskForm, field: Field) -> None:
    if field.data not in dict(LANGUAGES):
        raise ValidationError(_l("Choose English or French."))


def _name(label: Any, required: Any) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[
            DataRequired(required),
            Length(max=MAX_NAME, message=_l("This is longer than %(max)d characters. Shorten it.")),
            _no_control_characters,
        ],
    )


def _optional_text(label: Any, longest: int = MAX_NAME) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=longest, message=_l("This is longer than %(max)d characters. Shorten it.")),
            _no_control_characters,
        ],
    )


class RecordForm(FlaskForm):
    """An employee's record; :class:`ClinicianForm` adds the professional registration."""

    given_name = _name(_l("Given name"), _l("Enter the person’s given name."))
    family_name = _name(_l("Family name"), _l("Enter the person’s family name."))
    language = SelectField(
        _l("Preferred language"),
        choices=[SelectChoice(value, label) for value, label in LANGUAGES],
        validate_choice=False,
        validators=[DataRequired(_l("Choose the language the person reads their emails in.")), _language],
    )
    work_email = StringField(
        _l("Work email"),
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            DataRequired(_l("Enter the person’s work email: their set-up link goes there.")),
            Length(max=MAX_EMAIL, message=_l("This is too long for an email address. Check it.")),
            _email,
        ],
    )
    job_title = _optional_text(_l("Job title"))
    department = _optional_text(_l("Department or unit"))
    manager = _optional_text(_l("Manager"), MAX_MANAGER)
    start_date = Day(
        _l("Start date"),
        validators=[DataRequired(_l("Enter the start date, for example 2026-03-02."))],
    )
    end_date = Day(_l("End date"), validators=[Optional()])
    #: The version of the record the form was opened on (editing only).
    version = HiddenField()

    #: The field a refusal from the service is about (``Result.field``), for sspm.web.pages.
    located: str | None = None

    def validate_family_name(self, field: Field) -> None:
        """The directory keeps the full name too (cn, displayName), under the same bound as each name."""
        given, family = self.given_name.data or "", field.data or ""
        if self.given_name.errors or field.errors:
            return  # each name's own sentence says it first
        if len(f"{given} {family}") > MAX_NAME:
            raise ValidationError(
                _l(
                    "With the given name, this makes a full name longer than %(max)d characters, the most the "
                    "directory keeps. Shorten one of them, for example to the names the person uses every day.",
                    max=MAX_NAME,
                )
            )

    def validate_end_date(self, field: Field) -> None:
        start = self.start_date.data
        if field.data and isinstance(start, date) and field.data < start:
            raise ValidationError(_l("The end date is before the start date. Check both."))

    def field_for(self, reason: Reason) -> Field | None:
        found = getattr(self, self.located, None) if self.located else None
        return found if isinstance(found, Field) else None

    def details(self) -> Details:
        return Details(
            given_name=self.given_name.data or "",
            family_name=self.family_name.data or "",
            language=self.language.data or "en",
            work_email=self.work_email.data or "",
            job_title=self.job_title.data or "",
            department=self.department.data or "",
            manager=self.manager.data or "",
            start_date=self.start_date.data or date.today(),
            end_date=self.end_date.data,
            **self._more(),
        )

    def _more(self) -> dict[str, str]:
        return {}


class ClinicianForm(RecordForm):
    college = StringField(
        _l("Regulatory college"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter the college the clinician is registered with.")),
            Length(max=MAX_COLLEGE, message=_l("This is longer than %(max)d characters. Shorten it.")),
            _no_control_characters,
        ],
    )
    registration_number = StringField(
        _l("Registration number"),
        filters=[lambda value: "".join(value.split()).upper() if isinstance(value, str) else value],
        validators=[DataRequired(_l("Enter the clinician’s registration number with this college."))],
    )
    specialty = _name(_l("Specialty"), _l("Enter the clinician’s specialty."))
    mobile = StringField(_l("Mobile phone"), validators=[Optional(), Length(max=40), _mobile])

    def validate_registration_number(self, field: Field) -> None:
        if not _REGISTRATION.fullmatch(field.data or ""):
            raise ValidationError(_l("A registration number has letters, digits and dashes only, 32 at most."))

    def _more(self) -> dict[str, str]:
        return {
            "college": self.college.data or "",
            "registration_number": self.registration_number.data or "",
            "specialty": self.specialty.data or "",
            "mobile": self.mobile.data or "",
        }


def record_form(
    kind: Kind, organizations: list[str] | None = None, anywhere: bool = False, **kwargs: Any
) -> RecordForm:
    """The form of ``kind``; with ``organizations`` (creating), the organization field too.

    The list holds exactly what the member may create in; a Super Admin
    (``anywhere``) types the organization instead, any name.
    """
    base = ClinicianForm if kind is Kind.CLINICIAN else RecordForm
    if organizations is None and not anywhere:
        return base(**kwargs)
    if anywhere:

        class AnywhereForm(base):  # type: ignore[valid-type,misc]
            organization = StringField(
                _l("Organization"),
                filters=[_strip],
                validators=[
                    DataRequired(_l("Enter the organization the person belongs to, for example st-mary.")),
                    Length(max=MAX_NAME, message=_l("This is longer than %(max)d characters. Shorten it.")),
                    _no_control_characters,
                ],
            )

        return AnywhereForm(**kwargs)

    class ListedForm(base):  # type: ignore[valid-type,misc]
        organization = SelectField(
            _l("Organization"),
            choices=[SelectChoice(o, o) for o in organizations or []],
            validate_choice=False,
            validators=[DataRequired(_l("Choose the organization the person belongs to."))],
        )

    return ListedForm(**kwargs)


class ConfirmForm(FlaskForm):
    """A button that changes something (end, re-activate, send again): its CSRF token and the version seen."""

    version = HiddenField()
