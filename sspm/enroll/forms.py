"""The enrollment form: N question/answer pairs, built for the offered questions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, SelectChoice, SelectField
from wtforms.validators import DataRequired

from sspm import fields


class EnrollForm(FlaskForm):
    password = fields.password(_l("Your password, to confirm it is you"), _l("Enter your password."))

    def pairs(self) -> list[tuple[Field, Field]]:
        count = sum(1 for name in self._fields if name.startswith("question_"))
        return [(self[f"question_{i}"], self[f"answer_{i}"]) for i in range(count)]


def enroll_form(choices: list[tuple[str, str]], count: int) -> EnrollForm:
    """A form class with ``count`` pairs; the choices are in the page's language."""

    class Form(EnrollForm):
        pass

    options = [SelectChoice("", str(_l("Choose a question")))] + [
        SelectChoice(value, label) for value, label in choices
    ]
    for i in range(count):
        setattr(
            Form,
            f"question_{i}",
            SelectField(
                _l("Question %(n)s", n=i + 1),
                choices=options,
                validators=[DataRequired(_l("Choose a question."))],
            ),
        )
        setattr(
            Form,
            f"answer_{i}",
            fields.answer(_l("Answer %(n)s", n=i + 1)),
        )
    return Form()
