"""The enrollment form: N question/answer pairs, built for the offered questions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from sspm.change.forms import MAX_PASSWORD

MAX_ANSWER = 200


class EnrollForm(FlaskForm):
    password = PasswordField(
        _l("Your password, to confirm it is you"),
        validators=[
            DataRequired(_l("Enter your password.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )

    def pairs(self) -> list[tuple[Field, Field]]:
        count = sum(1 for name in self._fields if name.startswith("question_"))
        return [(self[f"question_{i}"], self[f"answer_{i}"]) for i in range(count)]


def enroll_form(choices: list[tuple[str, str]], count: int) -> EnrollForm:
    """A form class with ``count`` pairs; the choices are in the page's language."""

    class Form(EnrollForm):
        pass

    placeholder = [("", str(_l("Choose a question")))]
    for i in range(count):
        setattr(
            Form,
            f"question_{i}",
            SelectField(
                _l("Question %(n)s", n=i + 1),
                choices=placeholder + choices,
                validators=[DataRequired(_l("Choose a question."))],
            ),
        )
        setattr(
            Form,
            f"answer_{i}",
            StringField(
                _l("Answer %(n)s", n=i + 1),
                validators=[
                    DataRequired(_l("Type an answer.")),
                    Length(max=MAX_ANSWER, message=_l("This answer is too long.")),
                ],
            ),
        )
    return Form()
