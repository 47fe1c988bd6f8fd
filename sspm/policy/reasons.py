"""Why something was refused: one closed vocabulary for pages, emails, audit and the API.

A use case answers with a :class:`Reason`, never a free string, so a typo
fails type-checking instead of becoming a 500 at the page that looks the
sentence up (sspm.web.messages holds one sentence per member, and a unit
test keeps the two in step). Members are strings, so they are stored and
compared as the words the audit trail has always used.

Directory failures are turned into a reason here, and logged here, once:
a misconfigured service account is an operator's problem wherever it
shows up (change, sign-in, recovery, a job), so it is logged loudly by
the same line everywhere.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from connectors.directory import DirectoryError, DirectoryMisconfigured, Outcome

log = logging.getLogger("sspm.directory")


class Reason(StrEnum):
    """Everything a user (or a staff member, or an API client) can be told was wrong."""

    # What the directory decided (one per connectors.directory.Outcome that is not OK).
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    DISABLED = "disabled"
    EXPIRED = "expired"
    MUST_CHANGE = "must_change"
    TOO_SHORT = "too_short"
    TOO_WEAK = "too_weak"
    IN_HISTORY = "in_history"
    TOO_YOUNG = "too_young"
    UNUSABLE_CHARACTERS = "unusable_characters"
    # SSPM's own password rules.
    CONTAINS_NAME = "contains_name"
    SAME_AS_OLD = "same_as_old"
    MISMATCH = "mismatch"
    # Something SSPM relies on did not answer: nothing was changed.
    UNAVAILABLE = "unavailable"
    EMAIL_UNAVAILABLE = "email_unavailable"
    # A new password was sent but its answer never came: it may have been set.
    UNCONFIRMED = "unconfirmed"
    # Recovery.
    CAPTCHA_WRONG = "captcha_wrong"
    ANSWERS_REFUSED = "answers_refused"
    TOO_LATE = "too_late"
    CHALLENGE_GONE = "challenge_gone"
    LINK_GONE = "link_gone"
    # Enrollment.
    QUESTION_TWICE = "question_twice"
    ANSWER_TOO_SHORT = "answer_too_short"
    ANSWERS_SAME = "answers_same"
    ANSWER_CONTAINS_NAME = "answer_contains_name"
    ANSWER_CONTAINS_PASSWORD = "answer_contains_password"  # noqa: S105 (a reason, not a password)
    # Limits.
    RATE_LIMITED = "rate_limited"
    # People's records (staff keeping Employees and Clinicians).
    NO_SUCH_RECORD = "no_such_record"
    RECORD_CHANGED = "record_changed"
    RECORD_ENDED = "record_ended"
    RECORD_REFUSED = "record_refused"
    WORK_EMAIL_TAKEN = "work_email_taken"
    REGISTRATION_TAKEN = "registration_taken"
    NO_SUCH_MANAGER = "no_such_manager"
    ORGANIZATION_REFUSED = "organization_refused"
    NO_PLACE = "no_place"
    ACCOUNT_GONE = "account_gone"
    ALREADY_SET_UP = "already_set_up"
    # The helpdesk (staff, about someone else's account).
    NO_SUCH_ACCOUNT = "no_such_account"
    NOT_VERIFIED = "not_verified"
    CODE_REFUSED = "code_refused"
    CALLER_ANSWERS_REFUSED = "caller_answers_refused"
    VERIFICATION_PAUSED = "verification_paused"
    NO_EMAIL_ADDRESS = "no_email_address"
    NOT_ENROLLED = "not_enrolled"
    ALREADY_DONE = "already_done"
    ACCOUNT_DISABLED = "account_disabled"
    STAFF_EMAIL_UNAVAILABLE = "staff_email_unavailable"
    # Staff sign-in.
    STAFF_CODE_WRONG = "staff_code_wrong"
    STAFF_REAUTH_REFUSED = "staff_reauth_refused"
    # The console's roles page and audit trail.
    NO_SUCH_STAFF_TARGET = "no_such_staff_target"
    OWN_GRANTS = "own_grants"
    NOT_GRANTABLE = "not_grantable"
    NO_SUCH_GRANT = "no_such_grant"
    NOT_IN_ROLE = "not_in_role"
    # The profile: one's own login email and mobile number.
    EMAIL_SAME = "email_same"
    EMAIL_TAKEN = "email_taken"
    WRONG_ACCOUNT = "wrong_account"
    PHONE_INVALID = "phone_invalid"
    PHONE_NOT_MOBILE = "phone_not_mobile"
    PHONE_SAME = "phone_same"
    PHONE_CODE_WRONG = "phone_code_wrong"
    PHONE_CODE_GONE = "phone_code_gone"
    SMS_UNAVAILABLE = "sms_unavailable"
    CONTACTS_NOT_EDITABLE = "contacts_not_editable"


#: Reasons about the new password: said next to that field.
NEW_PASSWORD_REASONS = frozenset(
    {
        Reason.TOO_SHORT,
        Reason.TOO_WEAK,
        Reason.CONTAINS_NAME,
        Reason.IN_HISTORY,
        Reason.SAME_AS_OLD,
        Reason.TOO_YOUNG,
        Reason.MISMATCH,
        Reason.UNUSABLE_CHARACTERS,
    }
)

#: Reasons that mean "not now, try again": a 503, not a 422.
UNAVAILABLE = frozenset(
    {
        Reason.UNAVAILABLE,
        Reason.UNCONFIRMED,
        Reason.EMAIL_UNAVAILABLE,
        Reason.STAFF_EMAIL_UNAVAILABLE,
        Reason.SMS_UNAVAILABLE,
    }
)


def of(outcome: Outcome) -> Reason:
    """The reason for a directory's refusal (``Outcome.OK`` is not a refusal)."""
    if outcome is Outcome.OK:
        raise ValueError("Outcome.OK is not a reason to refuse")
    return Reason(outcome.value)


def directory_failed(exc: DirectoryError, doing: str, *, setting_password: bool = False) -> Reason:
    """Log a directory failure once, the same way everywhere, and say what the user is told.

    ``doing`` names the work in a few words ("change password"); never a
    password or an answer. A misconfiguration is an ERROR an operator must
    fix; a directory that is away is a WARNING that passes by itself.
    ``setting_password``: the failure came from the call that sets it (or
    that unlocks the account, which decides as much which password works).
    A directory that froze after receiving it applies it when it wakes, so
    "nothing was changed" would send the user back to a password that may
    no longer work, or an agent to tell a caller so: they are told it is
    unconfirmed instead.
    """
    if isinstance(exc, DirectoryMisconfigured):
        log.error("%s: the directory refused SSPM's own set-up; an operator must act: %s", doing, exc)
        return Reason.UNAVAILABLE
    if setting_password:
        log.warning("%s: directory unavailable, the change may be made: %s", doing, exc)
        return Reason.UNCONFIRMED
    log.warning("%s: directory unavailable: %s", doing, exc)
    return Reason.UNAVAILABLE
