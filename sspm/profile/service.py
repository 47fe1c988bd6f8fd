"""One's own profile: what the directory says of the signed-in account, and changing its login email and mobile.

Both changes have one shape, because both are ways into the account (an
address gets password reset links; the clinicians' mobile app signs in
with the number):

1. the owner types the password again: a session left open on a ward PC
   is not enough to move the account's way in elsewhere;
2. the new value is proved by something only its holder reads: a link
   sent to the new address, a code texted to the new number;
3. only then does the directory get it, and until then the old value
   stays in force (changing it without proof, or dropping the old one
   before the proof, are the takeover bugs this avoids); the old contacts
   are told, and the audit trail keeps both values.

Directory writes go through ``Provisioning.update_account``, which writes
as the provisioning account and only below ``LDAP_PROVISION_BASE_DN``: an
account elsewhere can be seen here but its contacts not changed
(``editable``). The new login email waits in Redis, keyed by its link
(sspm.account.email_change); the texted code, in Redis too, keyed by the
account, as an HMAC under SSPM_SECRET_KEY so Redis alone never holds it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import phonenumbers
from redis.exceptions import RedisError

from connectors import dn
from connectors.directory import AccountDetails, Directory, DirectoryError, LoginTaken, Outcome, Person
from sspm.account import attempts, audit, email_change, sends, tokens
from sspm.account.enrollment import enrolled_questions
from sspm.account.opened_links import OpenedLinks
from sspm.infra import jobs
from sspm.infra.mail_templates import MailTemplates, _l
from sspm.infra.outbox import EmailUnavailable, Outbox
from sspm.infra.sms import SmsSender, SmsUnavailable
from sspm.infra.state import State
from sspm.infra.store import Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.reasons import Reason

log = logging.getLogger(__name__)

#: How long a texted code works, and how many wrong ones end it.
CODE_SECONDS = 10 * 60
CODE_TRIES = 5
#: Codes texted and links emailed are capped per account (sspm.account.sends): a stolen session plus
#: the password cannot be used to flood a phone (or an inbox), nor to run up the SMS gateway's bill.
#: The outbox event an operator hooks on when a mobile number changed (sspm.profile.events).
PHONE_CHANGED_EVENT = "sspm.profile.events.phone_changed"

_CODE = "phone-code"
_SMS_SENT = "profile-sms-sent"
_LINKS_SENT = "profile-email-links"
_LINKS = OpenedLinks("profile-email-link", email_change.VERIFY_EMAIL_PURPOSE)

#: The text messages, translated into the owner's language when sent (like the emails' subjects).
CODE_TEXT = _l(
    "%(code)s is your code to confirm this number for your %(domain)s account. It works for %(minutes)s minutes. "
    "If you did not ask for it, ignore this message."
)
OLD_NUMBER_TEXT = _l(
    "The mobile number of your %(domain)s account %(username)s was changed. "
    "If this was not you, contact %(lra)s right away."
)


@dataclass(frozen=True)
class Profile:
    """What the profile page shows: the account as the directory has it now, and what waits for proof."""

    details: AccountDetails
    enrolled_questions: int
    #: Whether this account's email and mobile can be changed here (it is under the provisioning base).
    editable: bool
    #: A new login email whose link was sent and not used yet, and a new number whose code was sent.
    email_waiting: str | None
    phone_waiting: str | None

    def password_age_days(self, now: datetime) -> int | None:
        changed = self.details.password_set_at
        return None if changed is None else max(0, (now - changed).days)


def editable(details: AccountDetails, provision_base: str) -> bool:
    """Whether provisioning may write this account: strictly below a configured provisioning base."""
    return bool(provision_base) and dn.within(details.dn, provision_base) and not dn.same(details.dn, provision_base)


def profile_of(
    directory: Directory, store: Store, state: State, account_id: str, *, provision_base: str
) -> Profile | Reason:
    """The signed-in account's profile, or why it cannot be shown (the directory away, the account gone)."""
    try:
        details = directory.account_details(account_id)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "show a profile")
    if details is None:
        return Reason.UNAVAILABLE
    return Profile(
        details=details,
        enrolled_questions=len(enrolled_questions(store, account_id)),
        editable=editable(details, provision_base),
        email_waiting=email_change.asked(state, account_id),
        phone_waiting=code_waiting(state, account_id),
    )


def _person(details: AccountDetails, *, email: str | None = None, mobile: str | None = None) -> Person:
    """The account's names and contacts as they are now, with a new ``email`` or ``mobile``: update_account
    replaces them whole (the organization, None, it leaves as it is)."""
    return Person(
        given_name=details.given_name,
        surname=details.surname,
        email=email or details.email,
        phone=details.phone,
        display_name=details.display_name,
        title=details.title,
        department=details.department,
        mobile=mobile or details.mobile,
    )


def _prove_password(
    directory: Directory, store: Store, details: AccountDetails, password: str, action: audit.Action, actor: Actor
) -> Reason | None:
    """The owner typed the password again; None if the directory agrees, else why not (audited)."""
    if not password.strip():
        return Reason.BAD_CREDENTIALS
    account, verdict = directory.verify_password(details.login, password)
    if account is None or account.id != details.id or verdict.outcome is not Outcome.OK:
        audit.record(store, action, verdict.outcome.value, actor=actor, account=details.account)
        return Reason.BAD_CREDENTIALS if account is None else reasons.of(verdict.outcome)
    return None


# -- login email -------------------------------------------------------------------------------


def ask_email_change(
    directory: Directory,
    store: Store,
    state: State,
    outbox: Outbox,
    *,
    account_id: str,
    address: str,
    password: str,
    lifetime: timedelta,
    provision_base: str,
    actor: Actor,
) -> Reason | None:
    """Send a link to ``address`` that makes it the account's login email, and tell the old address; None if sent.

    Nothing changes in the directory here. A newer ask voids the older link.
    """
    address = address.strip()
    try:
        details = directory.account_details(account_id)
        if details is None:
            return Reason.UNAVAILABLE
        if not editable(details, provision_base):
            return Reason.CONTACTS_NOT_EDITABLE
        if details.email and details.email.casefold() == address.casefold():
            return Reason.EMAIL_SAME
        refused = _prove_password(directory, store, details, password, audit.Action.EMAIL_CHANGE_ASKED, actor)
        if refused is not None:
            return refused
        # Said only to whoever proved the password: another account signs in with this address already.
        other = directory.find_account(logins.spelling(address))
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "ask for a new login email")
    if other is not None and other.id != account_id:
        audit.record(store, audit.Action.EMAIL_CHANGE_ASKED, Reason.EMAIL_TAKEN, actor=actor, account=details.account)
        return Reason.EMAIL_TAKEN
    if sends.over(state, _LINKS_SENT, account_id):
        audit.record(store, audit.Action.EMAIL_CHANGE_ASKED, Reason.RATE_LIMITED, actor=actor, account=details.account)
        return Reason.RATE_LIMITED
    account = details.account
    try:
        outbox.email_verification(account, address, actor.language, lifetime)
    except EmailUnavailable as exc:
        log.warning("email verification not queued: %s", exc)
        audit.record(store, audit.Action.EMAIL_CHANGE_ASKED, "not_queued", actor=actor, account=account)
        return Reason.EMAIL_UNAVAILABLE
    email_change.note_asked(state, account_id, address, lifetime)
    told = bool(details.email) and outbox.address_notice(
        account, "address_change_asked", str(details.email), address, actor.language, actor.client_address
    )
    audit.record(
        store,
        audit.Action.EMAIL_CHANGE_ASKED,
        "link_sent",
        actor=actor,
        account=account,
        details={"from": details.email, "to": address, "old_address_told": told},
    )
    return None


def open_link(store: Store, state: State, token: str) -> str | None:
    """The handle a browser keeps for an opened link (the token leaves the URL); None if the link is not live.

    Opening spends nothing: a mail scanner's GET confirms nothing.
    """
    link = tokens.digest(token)
    if email_change.pending(state, link) is None:
        return None
    return _LINKS.open(store, state, link)


def opened_username(state: State, handle: str) -> str | None:
    """The user name of the account an opened link names (the attempt limits key on it); Redis only."""
    link = _LINKS.link_of(state, handle)
    pending = email_change.pending(state, link) if link else None
    return pending.username if pending else None


def opened(store: Store, state: State, handle: str) -> email_change.Pending | None:
    """What an opened link would confirm, while it still can: its token live, bound to the account it names."""
    link = _LINKS.link_of(state, handle)
    found = _still_good(store, state, link) if link else None
    if found is None:
        _LINKS.forget(state, handle)
    return found


def _still_good(store: Store, state: State, link: tokens.Digest) -> email_change.Pending | None:
    pending = email_change.pending(state, link)
    if pending is None:
        return None
    if tokens.find(store, link, email_change.VERIFY_EMAIL_PURPOSE) != pending.account_id:
        return None
    return pending


def refuse_other_account(store: Store, pending: email_change.Pending, signed_in: str, *, actor: Actor) -> Reason:
    """Someone else is signed in where the link was opened: nothing changes, and the attempt is on the trail."""
    audit.record(
        store,
        audit.Action.EMAIL_CHANGED,
        Reason.WRONG_ACCOUNT,
        actor=actor,
        account_id=pending.account_id,
        username=pending.username,
        details={"signed_in": signed_in},
    )
    return Reason.WRONG_ACCOUNT


@dataclass(frozen=True)
class Confirmed:
    reason: Reason | None
    address: str | None = None


def confirm_email(
    directory: Directory,
    store: Store,
    state: State,
    outbox: Outbox,
    *,
    handle: str,
    signed_in: str | None,
    password: str,
    actor: Actor,
) -> Confirmed:
    """Make the opened link's address the account's login email; spends the link.

    Only for the account the link was made for: signed in as that account,
    or, signed in as nobody, with its password typed here. Signed in as
    anyone else, it is refused whatever the password: the link changes the
    account it names or none, never the one at the keyboard.
    """
    link = _LINKS.link_of(state, handle)
    pending = _still_good(store, state, link) if link else None
    if link is None or pending is None:
        _LINKS.forget(state, handle)
        return Confirmed(Reason.LINK_GONE)
    if signed_in is not None and signed_in != pending.account_id:
        return Confirmed(refuse_other_account(store, pending, signed_in, actor=actor))
    try:
        details = directory.account_details(pending.account_id)
        if details is not None and not details.disabled and signed_in is None:
            refused = _prove_password(directory, store, details, password, audit.Action.EMAIL_CHANGED, actor)
            if refused is not None:
                return Confirmed(refused)
    except DirectoryError as exc:
        return Confirmed(reasons.directory_failed(exc, "confirm a new login email"))
    # Spend first: of two requests racing with one link, one wins.
    if details is None or details.disabled or not tokens.spend(store, link):
        _LINKS.forget(state, handle)
        return Confirmed(Reason.LINK_GONE)
    try:
        updated = directory.update_account(details.account, _person(details, email=pending.address))
    except LoginTaken:
        # Someone took the address since the link was sent: this link can never work now.
        audit.record(store, audit.Action.EMAIL_CHANGED, Reason.EMAIL_TAKEN, actor=actor, account=details.account)
        _done_with(state, handle, link, pending.account_id)
        return Confirmed(Reason.EMAIL_TAKEN)
    except ValueError:
        audit.record(store, audit.Action.EMAIL_CHANGED, "not_editable", actor=actor, account=details.account)
        _done_with(state, handle, link, pending.account_id)
        return Confirmed(Reason.CONTACTS_NOT_EDITABLE)
    except DirectoryError as exc:
        tokens.restore(store, link)  # nothing was written: the link works again
        return Confirmed(reasons.directory_failed(exc, "confirm a new login email"))
    _done_with(state, handle, link, pending.account_id)
    old = details.email
    told = bool(old) and outbox.address_notice(
        updated, "address_changed", str(old), pending.address, actor.language, actor.client_address
    )
    audit.record(
        store,
        audit.Action.EMAIL_CHANGED,
        "ok",
        actor=actor,
        account=updated,
        details={"from": old, "to": pending.address, "old_address_told": told},
    )
    return Confirmed(None, pending.address)


def _done_with(state: State, handle: str, link: tokens.Digest, account_id: str) -> None:
    _LINKS.forget(state, handle)
    email_change.forget(state, link)
    email_change.settled(state, account_id)


# -- mobile number -----------------------------------------------------------------------------


def normalise_phone(typed: str, region: str) -> str | Reason:
    """``typed`` in E.164 (+16135550123), read in ``region`` unless it starts with +; or why it cannot be used."""
    try:
        number = phonenumbers.parse(typed.strip(), region)
    except phonenumbers.NumberParseException:
        return Reason.PHONE_INVALID
    if not phonenumbers.is_valid_number(number):
        return Reason.PHONE_INVALID
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE:
        return Reason.PHONE_NOT_MOBILE
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def code_waiting(state: State, account_id: str) -> str | None:
    """The number a live code was texted to, if one waits for the account."""
    found = state.get(_CODE, account_id)
    return str(found["number"]) if found else None


def _tries_key(account_id: str) -> str:
    """The count of tries at the account's texted code (sspm.account.attempts), apart from its recovery count."""
    return f"phone-code:{account_id}"


def _digest(secret_key: str, account_id: str, number: str, code: str) -> str:
    message = f"{account_id}\0{number}\0{code}".encode("utf-8", "surrogatepass")
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def ask_phone_change(
    directory: Directory,
    store: Store,
    state: State,
    sms: SmsSender,
    texts: MailTemplates,
    *,
    account_id: str,
    typed: str,
    password: str,
    region: str,
    secret_key: str,
    provision_base: str,
    domain: str,
    actor: Actor,
) -> Reason | None:
    """Text a code to the number ``typed`` (normalised to E.164); None once sent. Nothing changes in the directory.

    A new code replaces the one before, and its wrong tries start again.
    """
    number = normalise_phone(typed, region)
    if isinstance(number, Reason):
        return number
    try:
        details = directory.account_details(account_id)
        if details is None:
            return Reason.UNAVAILABLE
        if not editable(details, provision_base):
            return Reason.CONTACTS_NOT_EDITABLE
        if details.mobile and normalise_phone(details.mobile, region) == number:
            return Reason.PHONE_SAME
        refused = _prove_password(directory, store, details, password, audit.Action.PHONE_CHANGE_ASKED, actor)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "ask for a new mobile number")
    account = details.account
    if refused is not None:
        return refused
    if sends.over(state, _SMS_SENT, account_id):
        audit.record(store, audit.Action.PHONE_CHANGE_ASKED, Reason.RATE_LIMITED, actor=actor, account=account)
        return Reason.RATE_LIMITED
    code = f"{secrets.randbelow(10**6):06d}"
    record = {
        "number": number,
        "digest": _digest(secret_key, account_id, number, code),
        "nonce": secrets.token_hex(8),
        "until": time.time() + CODE_SECONDS,
    }
    state.put(_CODE, account_id, record, ttl=CODE_SECONDS)
    state.delete(attempts.KIND, _tries_key(account_id))
    language = actor.language
    text = texts.gettext(language, CODE_TEXT) % {"code": code, "domain": domain, "minutes": CODE_SECONDS // 60}
    try:
        sms.send(number, text)
    except SmsUnavailable as exc:
        log.warning("code for a new mobile number not sent: %s", exc)
        state.delete(_CODE, account_id)
        audit.record(store, audit.Action.PHONE_CHANGE_ASKED, "not_sent", actor=actor, account=account)
        return Reason.SMS_UNAVAILABLE
    audit.record(
        store, audit.Action.PHONE_CHANGE_ASKED, "code_sent", actor=actor, account=account, details={"to": number}
    )
    return None


@dataclass(frozen=True)
class PhoneChanged:
    reason: Reason | None
    number: str | None = None


def confirm_phone(
    directory: Directory,
    store: Store,
    state: State,
    outbox: Outbox,
    sms: SmsSender,
    texts: MailTemplates,
    *,
    account_id: str,
    code: str,
    secret_key: str,
    domain: str,
    lra: str,
    actor: Actor,
) -> PhoneChanged:
    """Write the number the code was texted to as the account's mobile, if ``code`` is that code; it works once.

    Wrong codes count; the CODE_TRIES-th ends the code. Then the old number
    (by text) and the address (by email) are told, the trail says mobile
    credentials changed, and an outbox event goes to the housekeeping queue
    for whatever the deployment hooks on it (sspm.profile.events).
    """
    record = state.get(_CODE, account_id)
    if record is None:
        return PhoneChanged(Reason.PHONE_CODE_GONE)
    # Counted before it is judged, so that codes sent at once (a script with
    # the stolen session) cannot each find the code still there and all be
    # judged: no more than CODE_TRIES are (sspm.account.attempts.attempt).
    tries = _tries_key(account_id)
    if not attempts.attempt(state, tries, CODE_TRIES, CODE_SECONDS):
        return PhoneChanged(Reason.PHONE_CODE_GONE)  # the try that reached the limit ends the code
    number = str(record["number"])
    typed = "".join(code.split())
    if not hmac.compare_digest(_digest(secret_key, account_id, number, typed), str(record["digest"])):
        ended = attempts.paused(state, tries, CODE_TRIES)
        if ended:
            state.delete(_CODE, account_id)
        outcome = "too_many_wrong_codes" if ended else Reason.PHONE_CODE_WRONG
        audit.record(store, audit.Action.PHONE_CHANGED, outcome, actor=actor, account_id=account_id)
        return PhoneChanged(Reason.PHONE_CODE_GONE if ended else Reason.PHONE_CODE_WRONG)
    attempts.succeeded(state, tries)
    taken = state.take(_CODE, account_id)
    if taken is None or taken.get("nonce") != record["nonce"]:
        return PhoneChanged(Reason.PHONE_CODE_GONE)  # used meanwhile, or replaced by a newer code
    try:
        details = directory.account_details(account_id)
        if details is None:
            return PhoneChanged(Reason.UNAVAILABLE)
        updated = directory.update_account(details.account, _person(details, mobile=number))
    except ValueError:
        audit.record(store, audit.Action.PHONE_CHANGED, "not_editable", actor=actor, account_id=account_id)
        return PhoneChanged(Reason.CONTACTS_NOT_EDITABLE)
    except DirectoryError as exc:
        # Nothing was written: the code works again for what is left of its time.
        left = math.ceil(float(taken.get("until", 0)) - time.time())
        if left > 0:
            state.put(_CODE, account_id, taken, ttl=left)
        return PhoneChanged(reasons.directory_failed(exc, "write a new mobile number"))
    old = details.mobile
    old_told = False
    if old:
        language = actor.language
        values = {"domain": domain, "username": updated.username, "lra": lra}
        try:
            sms.send(old, texts.gettext(language, OLD_NUMBER_TEXT) % values)
            old_told = True
        except SmsUnavailable as exc:
            log.warning("the old mobile number was not told of the change: %s", exc)
    emailed = outbox.notify(updated, "phone_changed", actor.language, actor.client_address)
    event = _queue_event(state, account_id)
    audit.record(
        store,
        audit.Action.PHONE_CHANGED,
        "ok",
        actor=actor,
        account=updated,
        details={
            "mobile_credentials": True,
            "from": old,
            "to": number,
            "old_number_told": old_told,
            "email_queued": emailed,
            "event_queued": event,
        },
    )
    return PhoneChanged(None, number)


def _queue_event(state: State, account_id: str) -> bool:
    """Put the phone-changed event on the housekeeping queue; False if Redis would not take it (audited)."""
    try:
        jobs.Queues(state.redis).enqueue(
            jobs.HOUSEKEEPING, PHONE_CHANGED_EVENT, account_id, datetime.now(UTC).isoformat(), secrets.token_hex(16)
        )
    except RedisError as exc:  # the change stands; the trail says the event was not queued
        log.warning("the phone-changed event was not queued: %s", exc)
        return False
    return True
