"""The helpdesk's forms: the search, the caller's code and answers, and one small form per action.

Every form that changes anything is a POST with its CSRF token; each
action form also carries the single-use token the account page was given
(sspm.helpdesk.service), so a second click does nothing twice.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, StringField
from wtforms.validators import DataRequired, Length

from sspm.policy.reasons import Reason
from sspm.web import fields

#: Longer than any name, login or address a helpdesk types.
MAX_TERM = 256


class SearchForm(FlaskForm):
    """Read from the query string (a search changes nothing, so it is a GET and can be bookmarked)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Name, user name or email"),
        validators=[
            DataRequired(_l("Type the beginning of a name, a user name or an email address.")),
            Length(max=MAX_TERM, message=_l("This is too long. Type the beginning of the name only.")),
        ],
    )


class SendCodeForm(FlaskForm):
    """Email the caller a code: nothing to type, the account is in the URL."""


class AskQuestionsForm(FlaskForm):
    """Pick two of the caller's questions for the agent to ask."""


class CodeForm(FlaskForm):
    code = StringField(
        _l("Code the caller reads out"),
        validators=[
            DataRequired(_l("Type the code the caller reads from their email.")),
            Length(max=32, message=_l("This code is too long. Check it with the caller.")),
        ],
        render_kw={"inputmode": "numeric"},
    )

    def field_for(self, reason: Reason) -> Field | None:
        return self.code if reason is Reason.CODE_REFUSED else None


class AnswersForm(FlaskForm):
    def answers(self) -> list[Field]:
        count = sum(1 for name in self._fields if name.startswith("answer_"))
        return [self[f"answer_{i}"] for i in range(count)]


def answers_form(questions: list[str]) -> AnswersForm:
    """One box per question asked, labelled with the question itself."""

    class Form(AnswersForm):
        pass

    for i, text in enumerate(questions):
        setattr(Form, f"answer_{i}", fields.answer(text))
    return Form()


class ActionForm(FlaskForm):
    #: The single-use token this button was given when the page was made.
    action = HiddenField()
