"""Every refusal a user can meet, in plain words: the one place they live.

Use cases answer with a :class:`sspm.policy.reasons.Reason`; pages,
emails and the API look the sentence up here. Each sentence says what
happened and what to do next, and none of them names a directory code.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from sspm.policy.reasons import Reason

REASONS: dict[Reason, LazyString] = {
    # Also said for locked and disabled accounts: directories answer "locked"
    # without checking the password, so a distinct sentence would tell anyone
    # which user names exist.
    Reason.BAD_CREDENTIALS: _l(
        "The user name or password is not right, or the account is locked. Check both (is Caps Lock on?) "
        "and try again. After too many wrong tries the account locks: you can unlock it yourself. "
        "If it is still refused, contact %(lra)s."
    ),
    Reason.LOCKED: _l(
        "Your account is locked after too many wrong passwords. Wait until it unlocks by itself, then try again."
    ),
    Reason.DISABLED: _l("Your account is disabled. Contact %(lra)s to have it enabled."),
    Reason.EXPIRED: _l("Your password has expired. Change it here with your expired password."),
    Reason.MUST_CHANGE: _l("Your password is temporary. Change it here before you use it anywhere else."),
    Reason.TOO_SHORT: _l("The new password is too short. Use at least %(min_length)s characters."),
    Reason.TOO_WEAK: _l(
        "The new password is too easy to guess. Make it longer, for example with a few unrelated words."
    ),
    Reason.CONTAINS_NAME: _l("The new password must not contain your user name or your name. Choose another one."),
    Reason.IN_HISTORY: _l("You have used this password recently. Choose one you have not used before."),
    Reason.SAME_AS_OLD: _l("The new password must be different from your current password."),
    Reason.TOO_YOUNG: _l(
        "Your password was changed too recently to change it again. Try again later, or contact %(lra)s."
    ),
    Reason.MISMATCH: _l("The two new passwords do not match. Type the same new password in both boxes."),
    # A control character (tab, NUL...) usually comes with a paste; it could not be typed at a sign-in prompt.
    Reason.UNUSABLE_CHARACTERS: _l(
        "The new password contains an invisible control character, such as a tab, that cannot be used in a "
        "password. Type it again without it: letters in any language, digits, spaces and punctuation all work."
    ),
    Reason.UNAVAILABLE: _l("We could not reach the directory, so nothing was changed. Wait a minute and try again."),
    # Said after a new password, an unlock, or a helpdesk agent's reset or unlock: true of each.
    Reason.UNCONFIRMED: _l(
        "The directory did not answer in time, so we cannot tell whether the change was made. "
        "Wait a minute, then check: sign in with the new password, or see whether the account is still locked. "
        "If nothing changed, you can try again."
    ),
    Reason.CAPTCHA_WRONG: _l(
        "The characters you typed do not match the image. "
        "Type the characters of the new image, or listen to the audio version."
    ),
    Reason.ANSWERS_REFUSED: _l(
        "We could not confirm your identity with these answers. Start again and check your answers. "
        "If you never set up security questions, get a reset link by email instead, or contact %(lra)s."
    ),
    Reason.TOO_LATE: _l(
        "The time to answer ran out, so your answers were not checked. Start again: you will get a new countdown."
    ),
    Reason.CHALLENGE_GONE: _l("This step has expired or was already used. Start again from the beginning."),
    Reason.QUESTION_TWICE: _l("Choose a different question in each box."),
    Reason.ANSWER_TOO_SHORT: _l("Each answer needs at least %(min_length)s characters."),
    Reason.ANSWERS_SAME: _l("Give a different answer to each question."),
    Reason.ANSWER_CONTAINS_NAME: _l("An answer must not contain your user name."),
    Reason.ANSWER_CONTAINS_PASSWORD: _l("An answer must not contain your password."),
    Reason.EMAIL_UNAVAILABLE: _l(
        "We could not send the email right now, and nothing was changed. "
        "Wait a few minutes and ask again, or answer your security questions instead."
    ),
    Reason.LINK_GONE: _l("This link no longer works. Ask for a new one."),
    Reason.RATE_LIMITED: _l("Too many attempts. For your security, wait a few minutes before you try again."),
    Reason.STAFF_CODE_WRONG: _l(
        "This code is not right, or it was already used. Type the code your authenticator app shows now, "
        "or one of your unused recovery codes."
    ),
    Reason.STAFF_REAUTH_REFUSED: _l(
        "The password or the code is not right. Type your password again, and the code your authenticator app "
        "shows now (or an unused recovery code)."
    ),
    # Said alike for a name the directory does not know and for a person outside the member's reach.
    Reason.NO_SUCH_STAFF_TARGET: _l(
        "No one you may give roles to signs in with this email or user name. Check the spelling. "
        "People outside your organizations, and people whose role is equal to or above yours, need an "
        "administrator whose role covers them."
    ),
    Reason.OWN_GRANTS: _l("You cannot change your own roles. Ask another administrator to do it."),
    Reason.NOT_GRANTABLE: _l(
        "Your role does not allow giving this role in this organization. Choose one from the lists, "
        "or ask a Super Admin."
    ),
    # Said alike for a grant that does not exist and for one outside the member's reach.
    Reason.NO_SUCH_GRANT: _l(
        "There is no such role that you can take back: it may have been taken back already. "
        "Go back to the roles page to see who holds which role now."
    ),
    Reason.NOT_IN_ROLE: _l(
        "This page is not part of your role. Go back to the staff console; if you need it, "
        "ask whoever granted you your role."
    ),
    # People's records: said to staff. One sentence for a record that does not exist and one out of reach.
    Reason.NO_SUCH_RECORD: _l(
        "There is no record here that your role lets you open. Go back to the list and search for the person; "
        "if they belong to an organization you do not serve, ask its administrator."
    ),
    Reason.RECORD_CHANGED: _l(
        "Someone else saved this record since you opened it, so nothing was saved. What you typed is still below, "
        "beside what is saved now: check it, then save again to keep your version."
    ),
    Reason.RECORD_ENDED: _l("This record has ended, so it cannot be changed. Re-activate it first if it should go on."),
    Reason.RECORD_REFUSED: _l(
        "The directory refused these details, and nothing was saved. Check the names and titles for unusual "
        "characters, then try again; if it happens again, contact %(lra)s."
    ),
    Reason.WORK_EMAIL_TAKEN: _l(
        "Another account already signs in with this email address. Type the person’s own work email."
    ),
    Reason.REGISTRATION_TAKEN: _l(
        "Another clinician already has this registration number with this college. Check the number and the "
        "college, or open that clinician’s record from the list."
    ),
    Reason.NO_SUCH_MANAGER: _l(
        "No account signs in with this. Type the user name or email address the manager signs in with, "
        "or leave it empty."
    ),
    Reason.ORGANIZATION_REFUSED: _l(
        "Your role does not let you create records in this organization. Choose one of the organizations listed."
    ),
    Reason.NO_PLACE: _l(
        "The directory has no place for new accounts of this organization yet, so nothing was created. "
        "Ask %(lra)s to create it, then try again."
    ),
    Reason.ACCOUNT_GONE: _l(
        "The directory account of this record was removed outside SSPM, so nothing could be changed. "
        "Ask %(lra)s what happened to it."
    ),
    Reason.ALREADY_SET_UP: _l(
        "This person already set up their account, so there is no set-up email to send. "
        "If they forgot their password, they can use Forgot password."
    ),
    # The helpdesk: said to a staff member about someone else's account. One sentence for an account
    # that does not exist and one outside the agent's reach, so neither tells the other apart.
    Reason.NO_SUCH_ACCOUNT: _l(
        "There is no account here that you can help with. Search for the person again; if they belong to "
        "an organization you do not serve, pass the call to its helpdesk."
    ),
    Reason.NOT_VERIFIED: _l(
        "The caller is not verified, or the verification ran out. Verify the caller again, then try once more."
    ),
    Reason.CODE_REFUSED: _l(
        "This is not the code we emailed, or it was already used or ran out. "
        "Send a new code and ask the caller to read it out again."
    ),
    Reason.CALLER_ANSWERS_REFUSED: _l(
        "These answers do not match the ones the caller set up. Ask the questions again, or send a code by email."
    ),
    Reason.VERIFICATION_PAUSED: _l(
        "Too many wrong codes or answers were given for this account recently, so verification is paused. "
        "Ask the caller to call back later."
    ),
    Reason.NO_EMAIL_ADDRESS: _l(
        "This account has no email address, so nothing can be emailed to it. "
        "Use the security questions, or ask an administrator to add an address."
    ),
    Reason.NOT_ENROLLED: _l("The caller has not set up security questions. Send a code by email instead."),
    Reason.ALREADY_DONE: _l(
        "This was already done, or this page is too old: a second click or a reloaded page does nothing twice. "
        "The account below shows where it stands; do it again from there if it is still needed."
    ),
    Reason.ACCOUNT_DISABLED: _l(
        "An administrator disabled this account, so it cannot be unlocked or reset here. "
        "Pass the call to an administrator."
    ),
    Reason.STAFF_EMAIL_UNAVAILABLE: _l(
        "We could not send the email right now, and nothing was sent. Wait a minute and try again."
    ),
    # The profile: the signed-in owner changing their own login email or mobile number.
    Reason.EMAIL_SAME: _l("This is already your login email. Type the new address you want to use."),
    Reason.EMAIL_TAKEN: _l(
        "Another account already uses this address, so it cannot be yours too. Type another address, "
        "or contact %(lra)s if it should be yours."
    ),
    # A link opened while someone else is signed in on this browser: it never changes the wrong account.
    Reason.WRONG_ACCOUNT: _l(
        "This link is for another account than the one signed in here, so nothing was changed. "
        "Sign out, then open the link again and confirm with the password of the account that asked for it."
    ),
    Reason.PHONE_INVALID: _l(
        "This is not a phone number we can use. Type it with its area code, for example 613 555 0123, "
        "or with + and the country code, for example +33 6 12 34 56 78."
    ),
    Reason.PHONE_NOT_MOBILE: _l("This is a landline number: text messages cannot reach it. Type a mobile number."),
    Reason.PHONE_SAME: _l("This is already your mobile number. Type the new number you want to use."),
    Reason.PHONE_CODE_WRONG: _l(
        "This code is not right. Type the 6 digits of the newest text message we sent to your new number."
    ),
    Reason.PHONE_CODE_GONE: _l(
        "This code no longer works: it ran out, was already used, or was typed wrong too many times. "
        "Your number was not changed. Ask for a new code."
    ),
    Reason.SMS_UNAVAILABLE: _l(
        "We could not send the text message right now, and nothing was changed. Wait a few minutes and try again."
    ),
    Reason.CONTACTS_NOT_EDITABLE: _l(
        "Your email and phone number cannot be changed here for this account. Contact %(lra)s to change them."
    ),
}


def lra_contact() -> str:
    """Who to contact when SSPM cannot help, in the page's language.

    SSPM_LRA_CONTACT names it (a name or a number reads the same in every
    language); left empty, the translated generic wording is used.
    """
    return current_app.config["SSPM_SETTINGS"].lra_contact or str(_l("your Local Registration Authority"))


def reason_text(reason: Reason, **values: object) -> str:
    """The translated sentence for ``reason``, with its placeholders filled."""
    values.setdefault("lra", lra_contact())
    values.setdefault("min_length", 8)
    return str(REASONS[reason]) % values
