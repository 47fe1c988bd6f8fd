"""Every refusal a user can meet, in plain words: the one place they live.

Services answer with a reason code (a connector Outcome value or a local
problem); pages look the sentence up here. Each sentence says what
happened and what to do next, and none of them names a directory code.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

REASONS: dict[str, LazyString] = {
    # Also said for locked and disabled accounts: directories answer "locked"
    # without checking the password, so a distinct sentence would tell anyone
    # which user names exist.
    "bad_credentials": _l(
        "The user name or password is not right, or the account is locked. Check both (is Caps Lock on?) "
        "and try again. After too many wrong tries the account locks: you can unlock it yourself. "
        "If it is still refused, contact %(lra)s."
    ),
    "locked": _l(
        "Your account is locked after too many wrong passwords. Wait until it unlocks by itself, then try again."
    ),
    "disabled": _l("Your account is disabled. Contact %(lra)s to have it enabled."),
    "expired": _l("Your password has expired. Change it here with your expired password."),
    "must_change": _l("Your password is temporary. Change it here before you use it anywhere else."),
    "too_short": _l("The new password is too short. Use at least %(min_length)s characters."),
    "too_weak": _l("The new password is too easy to guess. Make it longer, for example with a few unrelated words."),
    "contains_name": _l("The new password must not contain your user name or your name. Choose another one."),
    "in_history": _l("You have used this password recently. Choose one you have not used before."),
    "same_as_old": _l("The new password must be different from your current password."),
    "too_young": _l("Your password was changed too recently to change it again. Try again later, or contact %(lra)s."),
    "mismatch": _l("The two new passwords do not match. Type the same new password in both boxes."),
    # A control character (tab, NUL...) usually comes with a paste; it could not be typed at a sign-in prompt.
    "unusable_characters": _l(
        "The new password contains an invisible control character, such as a tab, that cannot be used in a "
        "password. Type it again without it: letters in any language, digits, spaces and punctuation all work."
    ),
    "unavailable": _l("We could not reach the directory, so nothing was changed. Wait a minute and try again."),
    "captcha_wrong": _l(
        "The characters you typed do not match the image. "
        "Type the characters of the new image, or listen to the audio version."
    ),
    "answers_refused": _l(
        "We could not confirm your identity with these answers. Start again and check your answers. "
        "If you never set up security questions, get a reset link by email instead, or contact %(lra)s."
    ),
    "too_late": _l(
        "The time to answer ran out, so your answers were not checked. Start again: you will get a new countdown."
    ),
    "challenge_gone": _l("This step has expired or was already used. Start again from the beginning."),
    "question_twice": _l("Choose a different question in each box."),
    "answer_too_short": _l("Each answer needs at least %(min_length)s characters."),
    "answers_same": _l("Give a different answer to each question."),
    "answer_contains_name": _l("An answer must not contain your user name."),
    "answer_contains_password": _l("An answer must not contain your password."),
    "email_unavailable": _l(
        "We could not send the email right now, and nothing was changed. "
        "Wait a few minutes and ask again, or answer your security questions instead."
    ),
    "link_gone": _l("This link no longer works. Ask for a new one."),
    "rate_limited": _l("Too many attempts. For your security, wait a few minutes before you try again."),
}


#: Reasons about the new password: shown next to that field.
NEW_PASSWORD_REASONS = frozenset(
    {
        "too_short",
        "too_weak",
        "contains_name",
        "in_history",
        "same_as_old",
        "too_young",
        "mismatch",
        "unusable_characters",
    }
)


def lra_contact() -> str:
    """Who to contact when SSPM cannot help, in the page's language.

    SSPM_LRA_CONTACT names it (a name or a number reads the same in every
    language); left empty, the translated generic wording is used.
    """
    return current_app.config["SSPM_SETTINGS"].lra_contact or str(_l("your Local Registration Authority"))


def reason_text(reason: str, **values: object) -> str:
    """The translated sentence for ``reason``, with its placeholders filled."""
    values.setdefault("lra", lra_contact())
    values.setdefault("min_length", 8)
    return str(REASONS[reason]) % values
