"""Forms for Forgot Password and Unlock Account."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from sspm.change.forms import MAX_PASSWORD, MAX_USERNAME
from sspm.enroll.forms import MAX_ANSWER


def _captcha_field() -> StringField:
    return StringField(
        _l("Characters in the image"),
        validators=[
            DataRequired(_l("Type the characters you see in the image (or hear in the audio version).")),
            Length(max=32, message=_l("Type only the characters shown.")),
        ],
    )


class StartForm(FlaskForm):
    username = StringField(
        _l("User name"),
        validators=[
            DataRequired(_l("Enter your user name, for example Jsmith.")),
            Length(max=MAX_USERNAME, message=_l("This user name is too long. Check it and try again.")),
        ],
    )
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
            StringField(
                text,
                validators=[
                    DataRequired(_l("Type an answer.")),
                    Length(max=MAX_ANSWER, message=_l("This answer is too long.")),
                ],
            ),
        )
    return Form()


class NewPasswordForm(FlaskForm):
    new = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(_l("Enter a new password.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )
    confirm = PasswordField(
        _l("Confirm new password"),
        validators=[
            DataRequired(_l("Type the new password again.")),
            Length(max=MAX_PASSWORD, message=_l("This password is too long.")),
        ],
    )
