"""The console's forms: what they accept is what the staff member's grants allow, and the server checks again.

The grant form is built per request from ``GrantChoices``: its role and
organization lists hold only what ``roles.may_grant`` allows the member
now, and a value that is not in them (an edited page) is refused as a
field error, before any use case runs. The use case then checks once more
against the grants in the store.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from wtforms import DateField, Field, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from sspm.account.audit import Action
from sspm.console.service import GrantChoices
from sspm.policy import organizations
from sspm.policy.reasons import Reason
from sspm.policy.roles import Role
from sspm.web.fields import MAX_USERNAME

#: The longest immutable id a directory gives (the audit trail's ``account_id`` column).
MAX_ID = 64
MAX_ORGANIZATION = organizations.MAX_LENGTH
MAX_FILTER = 256

_ROLE_LABELS: dict[Role, LazyString] = {
    Role.SUPER_ADMIN: _l("Super Admin"),
    Role.ADMIN: _l("Admin"),
    Role.ASSIGNING_MANAGER: _l("Assigning manager"),
    Role.HELPDESK: _l("Helpdesk"),
}


def role_label(role: Role | str) -> str:
    """A role's name in the page's language."""
    return str(_ROLE_LABELS[Role(role)])


class GrantForm(FlaskForm):
    """Give a role: to whom (found in the directory), which role, in which organization."""

    account = StringField(
        _l("Email or user name of the person"),
        validators=[
            DataRequired(_l("Enter the email or user name of the person to give the role to.")),
            Length(max=MAX_USERNAME, message=_l("This is too long for an email or user name. Check it.")),
        ],
    )
    role = SelectField(_l("Role"), validate_choice=False)
    #: A list of the member's organizations; a Super Admin types one instead (see :func:`grant_form`).
    organization = SelectField(_l("Organization"), validate_choice=False)

    def field_for(self, reason: Reason) -> Field | None:
        if reason in (Reason.NO_SUCH_STAFF_TARGET, Reason.OWN_GRANTS):
            return self.account
        if reason is Reason.NOT_GRANTABLE:
            return self.role
        return None


class GrantAnywhereForm(GrantForm):
    """A Super Admin's: any organization may be named (a list suggests the ones already in use)."""

    organization = StringField(
        _l("Organization"),
        validators=[Length(max=MAX_ORGANIZATION, message=_l("This organization name is too long."))],
    )


def grant_form(choices: GrantChoices) -> GrantForm:
    """The grant form offering exactly ``choices``, refusing anything else."""
    form: GrantForm = GrantAnywhereForm() if choices.anywhere else GrantForm()
    form.role.choices = [(r.value, role_label(r)) for r in choices.roles]
    if not choices.anywhere:
        form.organization.choices = [(o, o) for o in choices.organizations]
    offered_roles = {r.value for r in choices.roles}

    def check_role(_form: Any, field: Field) -> None:
        if field.data not in offered_roles:
            raise ValidationError(str(_l("Choose one of the roles in the list.")))

    def check_organization(_form: Any, field: Field) -> None:
        if form.role.data == Role.SUPER_ADMIN.value:
            return  # a Super Admin's role covers every organization: none is asked
        value = (field.data or "").strip()
        if not value:
            raise ValidationError(str(_l("Choose the organization the role is for.")))
        if not choices.anywhere and value not in choices.organizations:
            raise ValidationError(str(_l("Choose one of the organizations in the list.")))

    form.role.validators = [check_role]
    form.organization.validators = [*form.organization.validators, check_organization]
    return form


class RevokeForm(FlaskForm):
    """Which grant to take away: its three parts ride in hidden fields, and are checked as if typed."""

    account = HiddenField(validators=[DataRequired(), Length(max=MAX_ID)])
    role = HiddenField(validators=[DataRequired(), Length(max=32)])
    organization = HiddenField(validators=[DataRequired(), Length(max=MAX_ORGANIZATION)])


def _action_choices() -> list[tuple[str, str]]:
    return [("", str(_l("Any action"))), *((a.value, a.value) for a in Action)]


class AuditFilterForm(FlaskForm):
    """The trail's filter, read from the query string: viewing changes nothing, so no CSRF token."""

    class Meta:
        csrf = False

    account = StringField(
        _l("Account (user name or id)"),
        validators=[Optional(), Length(max=MAX_FILTER, message=_l("This is too long. Check it."))],
    )
    actor = StringField(
        _l("Done by (user name or id)"),
        validators=[Optional(), Length(max=MAX_FILTER, message=_l("This is too long. Check it."))],
    )
    action = SelectField(_l("Action"), choices=_action_choices, validate_choice=False)
    outcome = StringField(
        _l("Outcome"), validators=[Optional(), Length(max=64, message=_l("This is too long. Check it."))]
    )
    since = DateField(_l("From (date)"), validators=[Optional()], format="%Y-%m-%d", render_kw={"type": "date"})
    until = DateField(_l("To (date, included)"), validators=[Optional()], format="%Y-%m-%d", render_kw={"type": "date"})

    def validate_action(self, field: Field) -> None:
        if field.data and field.data not in {a.value for a in Action}:
            raise ValidationError(str(_l("Choose one of the actions in the list.")))

    def validate_until(self, field: Field) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError(str(_l("The end date is before the start date. Change one of them.")))


class AuditExportForm(AuditFilterForm):
    """The same filter, posted with a CSRF token: an export writes an audit row, so it is a POST."""

    class Meta:
        csrf = True
