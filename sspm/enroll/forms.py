"""The enrollment form: N question/answer pairs, built for the offered questions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, SelectChoice, SelectField
from wtforms.validators import DataRequired

from sspm.policy.reasons import Reason
from sspm.web import fields


class EnrollForm(FlaskForm):
    password = fields.password(_l("Your password, to confirm it is you"), _l("Enter your password."))

    def pairs(self) -> list[tuple[Field, Field]]:
        count = sum(1 for name in self._fields if name.startswith("question_"))
        return [(self[f"question_{i}"], self[f"answer_{i}"]) for i in range(count)]

    def field_for(self, reason: Reason) -> Field | None:
        """The list where a question was chosen again: the service says only that one was (sspm.pages)."""
        if reason is not Reason.QUESTION_TWICE:
            return None
        seen: set[object] = set()
        for question, _ in self.pairs():
            if question.data in seen:
                return question
            seen.add(question.data)
        return None


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
                # Each list named on its own ("Question 2 of 3"): a screen reader's list of
                # form fields would otherwise show three lists all called "Question".
                _l("Question %(n)s of %(count)s", n=i + 1, count=count),
                choices=options,
                validators=[DataRequired(_l("Choose a question."))],
            ),
        )
        setattr(
            Form,
            f"answer_{i}",
            fields.answer(_l("Answer %(n)s of %(count)s", n=i + 1, count=count)),
        )
    return Form()
