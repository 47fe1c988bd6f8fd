"""The report filter: an organization from those in reach, and a number of days where the report has one.

The organization list is built per request from what the viewer's reach
covers; a value not in it (an edited address) is a field error, so an
organization out of reach is never even queried.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional, ValidationError

from sspm.reports.service import DEFAULT_DAYS, MAX_DAYS


class ReportFilterForm(FlaskForm):
    """Read from the query string: viewing changes nothing, so no CSRF token."""

    class Meta:
        csrf = False

    organization = SelectField(_l("Organization"), choices=[], validate_choice=False)
    days = IntegerField(
        _l("Days"),
        default=DEFAULT_DAYS,
        validators=[
            Optional(),
            NumberRange(min=1, max=MAX_DAYS, message=_l("Give a number of days from 1 to 3650.")),
        ],
        render_kw={"inputmode": "numeric"},
    )

    def offer(self, organizations: list[str], everywhere_label: str) -> None:
        self.organization.choices = [("", everywhere_label), *[(o, o) for o in organizations]]

    def validate_organization(self, field: Field) -> None:
        if field.data and field.data not in {value for value, _label in field.choices}:
            raise ValidationError(str(_l("Choose one of the organizations in the list.")))


class ReportExportForm(ReportFilterForm):
    """The same filter, posted with its CSRF token: an export is written to the trail."""

    class Meta:
        csrf = True
