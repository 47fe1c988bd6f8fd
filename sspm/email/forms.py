"""Forms for Forgot Password by email."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from sspm.change.forms import MAX_USERNAME


class RequestLinkForm(FlaskForm):
    # Named "username" so the per-name attempt limit counts it.
    username = StringField(
        _l("User name or email"),
        validators=[
            DataRequired(_l("Enter your user name or email, for example Jsmith.")),
            Length(max=MAX_USERNAME, message=_l("This user name is too long. Check it and try again.")),
        ],
    )
