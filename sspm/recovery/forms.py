"""Forms for Forgot Password and Unlock Account."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, StringField
from wtforms.validators import DataRequired, Length

from sspm.web import fields


def _captcha_field() -> StringField:
    return StringField(
        _l("Characters in the image"),
        validators=[
            DataRequired(_l("Type the characters you see in the image (or hear in the audio version).")),
            Length(max=32, message=_l("Type only the characters shown.")),
        ],
    )


class StartForm(FlaskForm):
    username = fields.username()
    captcha = _captcha_field()


class ChallengeForm(FlaskForm):
    captcha = _captcha_field()

    def answers(self) -> list[Field]:
        count = sum(1 for name in self._fields if name.startswith("answer_"))
        return [self[f"answer_{i}"] for i in range(count)]


def challenge_form(questions: list[str]) -> ChallengeForm:
    """One answer field per question, labelled with the question itself."""

    class Form(ChallengeForm):
        pass

    for i, text in enumerate(questions):
        setattr(
            Form,
            f"answer_{i}",
            fields.answer(text),
        )
    return Form()
