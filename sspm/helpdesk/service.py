"""The helpdesk, as an agent uses it: find an account, see it, verify the caller, act. Plain Python, no Flask.

Every use case takes the process's ``Services`` and the ``Actor`` acting
(a staff member), and decides on what the store and the directory say
*now*, never on what a session or a page remembers:

- the agent's grants are read from the store on every call (``staff_of``),
  so a role revoked a second ago no longer reaches anything;
- the account is read from the directory by its immutable id, and the
  agent may touch it only if ``roles.may_act_on`` says so for its
  organization and for the highest role its holder has (not their own
  account; not a holder of an equal or higher role). Anything else gets
  exactly what an account that does not exist gets: ``NO_SUCH_ACCOUNT``,
  padded to the same time, audited without naming the account;
- a verification of the caller is a record in Redis bound to one agent and
  one account, with a TTL, and it is looked up again for every action:
  another agent, another account or a minute too late finds nothing;
- every action takes a single-use token the account page handed out, so a
  double click or a replayed POST does nothing twice.

Wrong codes and answers count into the account's recovery counter
(sspm.account.attempts), the one Forgot Password and Unlock Account use;
each check is counted before it is judged, and taken back if right.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import desc, or_, select

from connectors.directory import AccountDetails, DirectoryError, Outcome
from sspm.account import attempts, audit, callercode, sends
from sspm.account.aftermath import after_password_set
from sspm.account.audit import Action
from sspm.account.enrollment import answer_hashes, clear_enrollment, enrolled_questions
from sspm.account.staff import Staff, all_staff, staff_of
from sspm.infra.outbox import EmailUnavailable
from sspm.infra.services import Services
from sspm.infra.store import AuditEvent
from sspm.policy import reasons
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.organizations import organization_of
from sspm.policy.reasons import Reason
from sspm.policy.roles import Permission, Role, may_act_on, reach
from sspm.policy.timing import pad_refusal

#: Accounts on one page of results.
PAGE_SIZE = 20
#: Accounts asked of the directory at a time while looking for those in reach.
SCAN_PAGE = 100
#: Accounts looked at, at most, for one page of results: a term that matches more than this
#: in the whole directory is asked to be narrowed (said whatever the agent's reach, so it
#: tells nothing about whose accounts matched).
SCAN_BUDGET = 2000
#: How long a page of results can be followed to the next one, and an account page's action buttons work.
CURSOR_SECONDS = 30 * 60
ACTION_SECONDS = 30 * 60
#: What SSPM's own trail shows of an account's past: how far back, how many rows.
HISTORY_DAYS = 30
HISTORY_ROWS = 10

_SEARCH = "helpdesk-search"
_VERIFIED = "helpdesk-verified"
_QUESTIONS = "helpdesk-questions"
#: Caller codes emailed to one account, by every agent together (capped by sspm.account.sends).
_CODES_SENT = "helpdesk-codes-sent"
_ACTION = "helpdesk-action"


class Mode(StrEnum):
    """SSPM_HELPDESK_VERIFICATION."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


class Method(StrEnum):
    """How the caller was verified, as the audit rows of actions say it."""

    EMAIL_CODE = "email-code"
    QUESTIONS = "questions"
    #: Optional verification, and the agent acted without it.
    NONE = "none"
    #: Verification is off in this deployment.
    OFF = "off"


class ActionName(StrEnum):
    UNLOCK = "unlock"
    RESET = "reset"
    CLEAR_ENROLLMENT = "clear-enrollment"


class Done(StrEnum):
    """What an action did, for the page to say in plain words."""

    UNLOCKED = "unlocked"
    WAS_NOT_LOCKED = "was-not-locked"
    TEMPORARY_PASSWORD = "temporary-password"  # noqa: S105 (what was done, not a password)
    LINK_SENT = "link-sent"
    CLEARED = "cleared"
    WAS_NOT_ENROLLED = "was-not-enrolled"


# -- what the pages show ------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One search result: only what recognises the caller."""

    id: str
    display_name: str
    login: str
    organization: str | None


@dataclass(frozen=True)
class Results:
    accounts: tuple[Found, ...] = ()
    #: Give it back for the next page; None on the last one.
    next_page: str | None = None
    #: The term matched more than SCAN_BUDGET accounts in the directory: type more of it.
    narrow: bool = False
    reason: Reason | None = None


@dataclass(frozen=True)
class Event:
    """One row of SSPM's own trail about the account."""

    at: datetime
    action: str
    outcome: str
    address: str
    by_staff: bool


@dataclass(frozen=True)
class Insight:
    """What the agent may tell a verified caller: the lockout and the password's standing."""

    locked: bool
    locked_since: datetime | None
    #: Wrong passwords the directory still counts, and when (every one on OpenLDAP, the last on AD).
    failures: int
    failure_times: tuple[datetime, ...]
    disabled: bool
    must_change: bool
    expired: bool
    password_set_at: datetime | None
    expires_at: datetime | None
    enrolled: bool
    #: Wrong passwords and answers given through SSPM, with the address they came from.
    failed_here: tuple[Event, ...]
    recent: tuple[Event, ...]


@dataclass(frozen=True)
class Verified:
    method: Method
    until: datetime


@dataclass(frozen=True)
class AccountView:
    id: str
    display_name: str
    login: str
    organization: str | None
    mode: Mode
    reset_mode: str
    verified: Verified | None
    #: Shown once the caller is verified, or at once where verification is not required.
    insight: Insight | None
    #: A code was emailed and waits to be typed.
    code_waiting: bool
    #: Question ids asked of the caller and waiting for their answers.
    questions: tuple[str, ...]
    #: One single-use token per action the agent may take now (empty until they may).
    tokens: dict[ActionName, str]

    @property
    def may_act(self) -> bool:
        return bool(self.tokens)


@dataclass(frozen=True)
class ActionResult:
    reason: Reason | None = None
    done: Done | None = None
    #: The temporary password, to be shown to the agent once and never again.
    temporary: str | None = None


@dataclass(frozen=True)
class _Target:
    details: AccountDetails
    organization: str | None


# -- who acts, on what ------------------------------------------------------------------------------


def mode_of(the: Services) -> Mode:
    return Mode(the.settings.helpdesk_verification)


def _agent(the: Services, actor: Actor) -> Staff | None:
    if actor.kind is not ActorKind.STAFF or not actor.id:
        return None
    return staff_of(the.store, actor.id)


def may_use(the: Services, actor: Actor) -> bool:
    """Whether the helpdesk reaches anywhere for this staff member, by their grants now."""
    agent = _agent(the, actor)
    return agent is not None and not reach(agent.grants, Permission.HELPDESK).nothing


def _organization(the: Services, details: AccountDetails) -> str | None:
    return organization_of(details, the.settings.organization_from, the.settings.directory.base_dn)


def _shown_organization(the: Services, details: AccountDetails) -> str | None:
    """The organization as the directory writes it (the key form is for comparing)."""
    found = _organization(the, details)
    if found is None:
        return None
    if the.settings.organization_from.from_ou:
        return found
    return details.organization or found


def _reaches(agent: Staff, details: AccountDetails, organization: str | None, holder_role: Role | None) -> bool:
    return may_act_on(
        agent.grants,
        Permission.HELPDESK,
        target_organization=organization,
        target_account_id=details.id,
        own_account_id=agent.account_id,
        target_highest_role=holder_role,
    )


def _target(the: Services, agent: Staff, account_id: str) -> _Target | None:
    """The account, if this agent may help with it now; None, the same, for one that does not exist.

    Raises DirectoryError.
    """
    if not account_id or len(account_id) > 64:
        return None
    details = the.directory.account_details(account_id)
    if details is None:
        return None
    organization = _organization(the, details)
    holder = staff_of(the.store, details.id)
    if not _reaches(agent, details, organization, holder.highest_role if holder else None):
        return None
    return _Target(details, organization)


def _refused(the: Services, actor: Actor, action: Action, account_id: str, started: float) -> Reason:
    """Nothing to help with here: audited without naming any account, padded to one time either way.

    The row names no account (only the id the agent asked for, in the
    details), so neither this trail nor the audit viewer, which counts the
    accounts an agent opened, tells an account outside reach from none.
    """
    audit.record(the.store, action, "refused", actor=actor, details={"requested": account_id[:64]})
    pad_refusal(started)
    return Reason.NO_SUCH_ACCOUNT


# -- find -----------------------------------------------------------------------------------------------


def _key(details: AccountDetails) -> tuple[str, str]:
    """Where an account stands in a search's login order (the order the directory answers in)."""
    return (details.login.casefold(), details.id)


def search(the: Services, actor: Actor, term: str, page: str | None = None) -> Results:
    """Accounts within the agent's reach whose login, name or email starts with ``term``, a page at a time.

    The directory is asked with the term escaped (AccountAdministration),
    in pages; what the agent may not help with is dropped before anything
    is counted, so a page, its length and whether there is a next one say
    nothing of other accounts. ``page`` is a previous result's
    ``next_page``, good for this agent only.
    """
    agent = _agent(the, actor)
    if agent is None:
        return Results(reason=Reason.NO_SUCH_ACCOUNT)
    term = term.strip()
    resume: str | None = None
    after: tuple[str, str] | None = None
    if page:
        cursor = the.state.get(_SEARCH, page[:64])
        if cursor is None or cursor.get("agent") != agent.account_id:
            cursor = None
        else:
            term, resume, after = str(cursor["term"]), cursor["resume"], (cursor["after"][0], cursor["after"][1])
    if not term:
        return Results()
    roles = {s.account_id: s.highest_role for s in all_staff(the.store)}
    shown: list[Found] = []
    extra: tuple[str | None, tuple[str, str]] | None = None
    last_key: tuple[str, str] | None = None
    scanned = 0
    narrow = False
    try:
        while extra is None:
            if scanned >= SCAN_BUDGET:
                narrow = True
                break
            asked_with = resume
            answer = the.directory.search_accounts(term, limit=SCAN_PAGE, page=resume)
            scanned += len(answer.accounts)
            for details in answer.accounts:
                if after is not None and _key(details) <= after:
                    continue
                if not _reaches(agent, details, _organization(the, details), roles.get(details.id)):
                    continue
                if len(shown) == PAGE_SIZE:
                    extra = (asked_with, last_key or _key(details))
                    break
                shown.append(Found(details.id, details.display_name, details.login, _shown_organization(the, details)))
                last_key = _key(details)
            if answer.next_page is None:
                break
            resume = answer.next_page
    except DirectoryError as exc:
        return Results(reason=reasons.directory_failed(exc, "helpdesk search"))
    except ValueError:  # a page no search gave
        return Results()
    next_page = None
    if extra is not None:
        next_page = secrets.token_urlsafe(18)
        cursor_value = {"agent": agent.account_id, "term": term, "resume": extra[0], "after": list(extra[1])}
        the.state.put(_SEARCH, next_page, cursor_value, CURSOR_SECONDS)
    audit.record(
        the.store,
        Action.HELPDESK_SEARCH,
        "narrow" if narrow else "shown",
        actor=actor,
        details={"term": term[:64], "shown": len(shown), "next": next_page is not None},
    )
    return Results(tuple(shown), next_page, narrow)


# -- see --------------------------------------------------------------------------------------------------


def _verified(the: Services, agent_id: str, account_id: str) -> Verified | None:
    """The caller's verification for this agent and this account, read again now; None if there is none."""
    record = the.state.get(_VERIFIED, f"{agent_id}:{account_id}")
    if record is None or record.get("agent") != agent_id or record.get("account") != account_id:
        return None
    until = float(record["until"])
    if until <= time.time():
        return None
    return Verified(Method(record["method"]), datetime.fromtimestamp(until, UTC))


def _remember_verified(the: Services, agent_id: str, account_id: str, method: Method) -> None:
    seconds = the.settings.helpdesk_verify_minutes * 60
    record = {"agent": agent_id, "account": account_id, "method": method.value, "until": time.time() + seconds}
    the.state.put(_VERIFIED, f"{agent_id}:{account_id}", record, seconds)


_FAILED_HERE = [
    (Action.SIGN_IN, ("bad_credentials", "locked")),
    (Action.CHANGE, ("bad_credentials", "locked")),
    (Action.FORGOT_ANSWERS, ("wrong_or_not_enrolled", "paused", "late")),
    (Action.UNLOCK_ANSWERS, ("wrong_or_not_enrolled", "paused", "late")),
    (Action.HELPDESK_VERIFY, ("wrong",)),
]


def _events(the: Services, account_id: str, *, failures: bool) -> tuple[Event, ...]:
    since = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
    query = select(AuditEvent).where(AuditEvent.account_id == account_id, AuditEvent.at >= since)
    if failures:
        query = query.where(
            or_(*((AuditEvent.action == a.value) & AuditEvent.outcome.in_(outcomes) for a, outcomes in _FAILED_HERE))
        )
    query = query.order_by(desc(AuditEvent.seq)).limit(HISTORY_ROWS)
    with the.store.session() as session:
        rows = session.scalars(query).all()
        return tuple(
            Event(
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),
                action=row.action,
                outcome=row.outcome,
                address=row.source_ip,
                by_staff=row.actor_kind == ActorKind.STAFF.value,
            )
            for row in rows
        )


def _insight(the: Services, details: AccountDetails) -> Insight:
    return Insight(
        locked=details.locked,
        locked_since=details.locked_since,
        failures=details.failures,
        failure_times=details.failure_times,
        disabled=details.disabled,
        must_change=details.must_change,
        expired=details.expired,
        password_set_at=details.password_set_at,
        expires_at=details.expires_at,
        enrolled=bool(enrolled_questions(the.store, details.id)),
        failed_here=_events(the, details.id, failures=True),
        recent=_events(the, details.id, failures=False),
    )


def _tokens(the: Services, agent_id: str, account_id: str) -> dict[ActionName, str]:
    tokens = {}
    for name in ActionName:
        token = secrets.token_urlsafe(24)
        the.state.put(_ACTION, token, {"agent": agent_id, "account": account_id, "action": name.value}, ACTION_SECONDS)
        tokens[name] = token
    return tokens


def see(the: Services, actor: Actor, account_id: str) -> AccountView | Reason:
    """One account as this agent may see it now; audited, what was shown with it.

    Before the caller is verified (where that is required), only what
    recognises them: display name, user name, organization. After it, the
    lockout insight and one action token per action.
    """
    started = time.perf_counter()
    agent = _agent(the, actor)
    if agent is None:
        return _refused(the, actor, Action.HELPDESK_VIEW, account_id, started)
    try:
        target = _target(the, agent, account_id)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "helpdesk: read an account")
    if target is None:
        return _refused(the, actor, Action.HELPDESK_VIEW, account_id, started)
    details = target.details
    mode = mode_of(the)
    verified = _verified(the, agent.account_id, details.id) if mode is not Mode.OFF else None
    open_ = verified is not None or mode is not Mode.REQUIRED
    insight = _insight(the, details) if open_ else None
    audit.record(
        the.store,
        Action.HELPDESK_VIEW,
        "shown",
        actor=actor,
        account=details.account,
        details={"insight": open_, "method": _method(mode, verified).value},
    )
    pending = the.state.get(_QUESTIONS, f"{agent.account_id}:{details.id}")
    return AccountView(
        id=details.id,
        display_name=details.display_name,
        login=details.login,
        organization=_shown_organization(the, details),
        mode=mode,
        reset_mode=the.settings.helpdesk_reset,
        verified=verified,
        insight=insight,
        code_waiting=mode is not Mode.OFF and callercode.waiting(the.state, agent.account_id, details.id),
        questions=tuple(pending["questions"]) if pending else (),
        tokens=_tokens(the, agent.account_id, details.id) if open_ else {},
    )


def _method(mode: Mode, verified: Verified | None) -> Method:
    if mode is Mode.OFF:
        return Method.OFF
    return verified.method if verified else Method.NONE


# -- verify the caller ------------------------------------------------------------------------------------


def _verifying(the: Services, actor: Actor, account_id: str) -> tuple[Staff, _Target] | Reason:
    """The agent and the account for a verification step, or why not (refusals audited)."""
    started = time.perf_counter()
    agent = _agent(the, actor)
    if agent is None:
        return _refused(the, actor, Action.HELPDESK_VERIFY, account_id, started)
    try:
        target = _target(the, agent, account_id)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "helpdesk: read an account")
    if target is None:
        return _refused(the, actor, Action.HELPDESK_VERIFY, account_id, started)
    if mode_of(the) is Mode.OFF:
        return Reason.NO_SUCH_ACCOUNT  # no page offers it; nothing to verify
    return agent, target


def _paused(the: Services, account_id: str) -> bool:
    return attempts.paused(the.state, attempts.account_key(account_id), the.settings.recovery_max_failures)


def _attempt(the: Services, account_id: str) -> bool:
    """Count a check of the caller before it is judged; False once past the account's limit.

    Counted first, so that codes and answers an agent sends at once (two
    tabs, a script, several agents) cannot each read "not paused yet"
    before any of them is counted (sspm.account.attempts.attempt).
    """
    key = attempts.account_key(account_id)
    return attempts.attempt(
        the.state, key, the.settings.recovery_max_failures, the.settings.recovery_window_minutes * 60
    )


def _verify_row(the: Services, actor: Actor, target: _Target, outcome: str, method: Method) -> None:
    account = target.details.account
    details = {"method": method.value}
    audit.record(the.store, Action.HELPDESK_VERIFY, outcome, actor=actor, account=account, details=details)


def send_code(the: Services, actor: Actor, account_id: str) -> Reason | None:
    """Email the caller a one-time code (made by the worker, sspm.account.callercode); None when queued."""
    found = _verifying(the, actor, account_id)
    if isinstance(found, Reason):
        return found
    agent, target = found
    account = target.details.account
    refusal = None
    if _paused(the, account.id):
        refusal = Reason.VERIFICATION_PAUSED
    elif not account.email:
        refusal = Reason.NO_EMAIL_ADDRESS
    elif account.disabled:
        refusal = Reason.ACCOUNT_DISABLED
    elif sends.over(the.state, _CODES_SENT, account.id):
        refusal = Reason.RATE_LIMITED
    if refusal is not None:
        _verify_row(the, actor, target, refusal.value, Method.EMAIL_CODE)
        return refusal
    nonce = callercode.request(the.state, agent.account_id, account.id, the.settings.helpdesk_verify_minutes * 60)
    try:
        the.outbox.caller_code(account, agent.account_id, nonce)
    except EmailUnavailable:
        _verify_row(the, actor, target, "not_queued", Method.EMAIL_CODE)
        return Reason.STAFF_EMAIL_UNAVAILABLE
    _verify_row(the, actor, target, "code_sent", Method.EMAIL_CODE)
    return None


def check_code(the: Services, actor: Actor, account_id: str, typed: str) -> Reason | None:
    """Whether the caller read back the code emailed for this agent's request; None: verified."""
    found = _verifying(the, actor, account_id)
    if isinstance(found, Reason):
        return found
    agent, target = found
    pending = callercode.take(the.state, agent.account_id, target.details.id)
    if pending is None:
        _verify_row(the, actor, target, callercode.Check.GONE.value, Method.EMAIL_CODE)
        return Reason.CODE_REFUSED
    if not _attempt(the, target.details.id):
        _verify_row(the, actor, target, "paused", Method.EMAIL_CODE)
        return Reason.VERIFICATION_PAUSED
    checked = callercode.judge(pending, agent.account_id, target.details.id, typed, key=the.settings.secret_key)
    if checked is callercode.Check.RIGHT:
        attempts.succeeded(the.state, attempts.account_key(target.details.id))
        _remember_verified(the, agent.account_id, target.details.id, Method.EMAIL_CODE)
        _verify_row(the, actor, target, "verified", Method.EMAIL_CODE)
        return None
    _verify_row(the, actor, target, checked.value, Method.EMAIL_CODE)
    return Reason.CODE_REFUSED


def ask_questions(the: Services, actor: Actor, account_id: str) -> Reason | None:
    """Pick two of the caller's enrolled questions for the agent to ask; None when they are ready."""
    found = _verifying(the, actor, account_id)
    if isinstance(found, Reason):
        return found
    agent, target = found
    enrolled = enrolled_questions(the.store, target.details.id)
    asked = the.settings.questions_asked
    refusal = None
    if _paused(the, target.details.id):
        refusal = Reason.VERIFICATION_PAUSED
    elif len(enrolled) < asked:
        refusal = Reason.NOT_ENROLLED
    if refusal is not None:
        _verify_row(the, actor, target, refusal.value, Method.QUESTIONS)
        return refusal
    questions = random.SystemRandom().sample(enrolled, asked)
    record = {"agent": agent.account_id, "account": target.details.id, "questions": questions}
    seconds = the.settings.helpdesk_verify_minutes * 60
    the.state.put(_QUESTIONS, f"{agent.account_id}:{target.details.id}", record, seconds)
    _verify_row(the, actor, target, "questions_asked", Method.QUESTIONS)
    return None


def check_answers(the: Services, actor: Actor, account_id: str, given: Sequence[str]) -> Reason | None:
    """Check the answers the agent typed against the stored hashes, once; None: verified.

    Both are always checked, so the time says nothing about which was
    wrong, and the agent only ever learns "both right" or "not both".
    """
    found = _verifying(the, actor, account_id)
    if isinstance(found, Reason):
        return found
    agent, target = found
    record = the.state.take(_QUESTIONS, f"{agent.account_id}:{target.details.id}")
    if record is None or record.get("agent") != agent.account_id or record.get("account") != target.details.id:
        _verify_row(the, actor, target, "gone", Method.QUESTIONS)
        return Reason.NOT_VERIFIED
    if not _attempt(the, target.details.id):
        _verify_row(the, actor, target, "paused", Method.QUESTIONS)
        return Reason.VERIFICATION_PAUSED
    stored = answer_hashes(the.store, target.details.id)
    questions = list(record["questions"])
    typed = [*given, *([""] * len(questions))][: len(questions)]
    results = the.hasher.verify_all([(stored.get(q), a) for q, a in zip(questions, typed, strict=True)])
    if questions and all(results):
        attempts.succeeded(the.state, attempts.account_key(target.details.id))
        _remember_verified(the, agent.account_id, target.details.id, Method.QUESTIONS)
        _verify_row(the, actor, target, "verified", Method.QUESTIONS)
        return None
    _verify_row(the, actor, target, "wrong", Method.QUESTIONS)
    return Reason.CALLER_ANSWERS_REFUSED


def asked_questions(the: Services, actor: Actor, account_id: str) -> list[str]:
    """The question ids waiting for the caller's answers (the page labels its boxes with them)."""
    if not actor.id:
        return []
    record = the.state.get(_QUESTIONS, f"{actor.id}:{account_id}")
    return list(record["questions"]) if record else []


# -- act ----------------------------------------------------------------------------------------------------


def _acting(
    the: Services, actor: Actor, account_id: str, token: str, action: ActionName, audited: Action
) -> tuple[_Target, Method] | Reason:
    """Everything an action re-checks, now: the agent's grants, the account's reach, the verification, the token.

    The token is spent last, so a refusal for a lapsed verification leaves
    the page's buttons working once the caller is verified again.
    """
    started = time.perf_counter()
    agent = _agent(the, actor)
    if agent is None:
        return _refused(the, actor, audited, account_id, started)
    try:
        target = _target(the, agent, account_id)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, f"helpdesk: {action.value}")
    if target is None:
        return _refused(the, actor, audited, account_id, started)
    mode = mode_of(the)
    verified = _verified(the, agent.account_id, target.details.id) if mode is not Mode.OFF else None
    account = target.details.account
    if mode is Mode.REQUIRED and verified is None:
        audit.record(the.store, audited, "not_verified", actor=actor, account=account)
        return Reason.NOT_VERIFIED
    method = _method(mode, verified)
    record = the.state.take(_ACTION, token[:64]) if token else None
    wanted = {"agent": agent.account_id, "account": target.details.id, "action": action.value}
    if record != wanted:
        audit.record(the.store, audited, "already_done", actor=actor, account=account, details={"method": method.value})
        return Reason.ALREADY_DONE
    return target, method


def unlock(the: Services, actor: Actor, account_id: str, token: str) -> ActionResult:
    """Lift a lockout, leaving the password as it is."""
    found = _acting(the, actor, account_id, token, ActionName.UNLOCK, Action.HELPDESK_UNLOCK)
    if isinstance(found, Reason):
        return ActionResult(found)
    target, method = found
    account = target.details.account
    details: dict[str, Any] = {"method": method.value}
    locked = target.details.locked  # read a moment ago, by _acting
    try:
        outcome = the.directory.unlock(account)
    except DirectoryError as exc:
        # A directory that froze as the unlock reached it applies it when it wakes.
        reason = reasons.directory_failed(exc, "helpdesk: unlock", setting_password=True)
        audit.record(the.store, Action.HELPDESK_UNLOCK, reason.value, actor=actor, account=account, details=details)
        return ActionResult(reason)
    if outcome is Outcome.DISABLED:
        audit.record(the.store, Action.HELPDESK_UNLOCK, outcome.value, actor=actor, account=account, details=details)
        return ActionResult(Reason.ACCOUNT_DISABLED)
    if outcome is not Outcome.OK:
        audit.record(the.store, Action.HELPDESK_UNLOCK, outcome.value, actor=actor, account=account, details=details)
        return ActionResult(reasons.of(outcome))
    if not locked:
        audit.record(the.store, Action.HELPDESK_UNLOCK, "not_locked", actor=actor, account=account, details=details)
        return ActionResult(done=Done.WAS_NOT_LOCKED)
    after_password_set(
        the.store,
        the.state,
        the.outbox,
        account,
        done=Action.HELPDESK_UNLOCK,
        event="account_unlocked",
        actor=actor,
        details=details,
    )
    return ActionResult(done=Done.UNLOCKED)


def reset(the: Services, actor: Actor, account_id: str, token: str) -> ActionResult:
    """Force a new password: a temporary one shown to the agent once, or an emailed link (SSPM_HELPDESK_RESET)."""
    found = _acting(the, actor, account_id, token, ActionName.RESET, Action.HELPDESK_RESET)
    if isinstance(found, Reason):
        return ActionResult(found)
    target, method = found
    account = target.details.account
    details: dict[str, Any] = {"method": method.value, "mode": the.settings.helpdesk_reset}
    if target.details.disabled:
        audit.record(the.store, Action.HELPDESK_RESET, "disabled", actor=actor, account=account, details=details)
        return ActionResult(Reason.ACCOUNT_DISABLED)
    if the.settings.helpdesk_reset == "link":
        return _reset_by_link(the, actor, target, details)
    try:
        temporary = temporary_password(the.directory.policy().min_length, (account.username, account.display_name))
    except DirectoryError as exc:
        return ActionResult(reasons.directory_failed(exc, "helpdesk: reset a password"))
    try:
        outcome = the.directory.reset_password(account, temporary, must_change=True)
    except DirectoryError as exc:
        # A directory that froze as the password reached it sets it when it wakes.
        reason = reasons.directory_failed(exc, "helpdesk: reset a password", setting_password=True)
        audit.record(the.store, Action.HELPDESK_RESET, reason.value, actor=actor, account=account, details=details)
        return ActionResult(reason)
    if outcome is not Outcome.OK:
        audit.record(the.store, Action.HELPDESK_RESET, outcome.value, actor=actor, account=account, details=details)
        return ActionResult(Reason.ACCOUNT_DISABLED if outcome is Outcome.DISABLED else reasons.of(outcome))
    after_password_set(
        the.store,
        the.state,
        the.outbox,
        account,
        done=Action.HELPDESK_RESET,
        event="password_reset",
        actor=actor,
        details=details,
    )
    return ActionResult(done=Done.TEMPORARY_PASSWORD, temporary=temporary)


def _reset_by_link(the: Services, actor: Actor, target: _Target, details: dict[str, Any]) -> ActionResult:
    account = target.details.account
    if not account.email:
        audit.record(the.store, Action.HELPDESK_RESET, "no_email", actor=actor, account=account, details=details)
        return ActionResult(Reason.NO_EMAIL_ADDRESS)
    language = the.outbox.language_of(account.id, the.settings.default_language)
    try:
        the.outbox.reset_link(account, language)
    except EmailUnavailable:
        audit.record(the.store, Action.HELPDESK_RESET, "not_queued", actor=actor, account=account, details=details)
        return ActionResult(Reason.STAFF_EMAIL_UNAVAILABLE)
    audit.record(the.store, Action.HELPDESK_RESET, "link_sent", actor=actor, account=account, details=details)
    return ActionResult(done=Done.LINK_SENT)


def clear(the: Services, actor: Actor, account_id: str, token: str) -> ActionResult:
    """Forget the caller's security questions (they lost their answers); they enroll again at next sign-in."""
    found = _acting(the, actor, account_id, token, ActionName.CLEAR_ENROLLMENT, Action.HELPDESK_CLEAR_ENROLLMENT)
    if isinstance(found, Reason):
        return ActionResult(found)
    target, method = found
    account = target.details.account
    with the.store.session(immediate=True) as session:
        cleared = clear_enrollment(session, account.id)
        outcome = "cleared" if cleared else "not_enrolled"
        details = {"method": method.value, "questions": cleared}
        audit.record(
            the.store,
            Action.HELPDESK_CLEAR_ENROLLMENT,
            outcome,
            actor=actor,
            account=account,
            details=details,
            session=session,
        )
    if not cleared:
        return ActionResult(done=Done.WAS_NOT_ENROLLED)
    # Someone else acted: the owner reads it in their own remembered language ("").
    if not the.outbox.notify(account, "enrollment_cleared", "", actor.client_address):
        audit.record(the.store, Action.email("enrollment_cleared"), "not_queued", actor=actor, account=account)
    return ActionResult(done=Done.CLEARED)


# -- the temporary password ------------------------------------------------------------------------------

#: Letters and digits nobody misreads over the phone (no O/0, I/l/1).
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOWER = "abcdefghijkmnpqrstuvwxyz"
_DIGITS = "23456789"


def temporary_password(min_length: int, names: Sequence[str] = ()) -> str:
    """A random password to read out over the phone: groups of four like ``Kq7m-Vx4p-Tr9d-Hb3w``.

    Each group has a capital, two small letters and a digit (any
    directory's complexity rule is met), 70 bits and more; never holding a
    name of the account's (Active Directory refuses that). At least
    ``min_length`` characters, for a directory that asks for more.
    """
    groups = max(4, math.ceil((min_length + 1) / 5))
    folded = [n.casefold() for name in names for n in name.split() if len(n) >= 3]
    chooser = secrets.SystemRandom()
    while True:
        parts = []
        for _ in range(groups):
            chars = [chooser.choice(_UPPER), chooser.choice(_LOWER), chooser.choice(_LOWER), chooser.choice(_DIGITS)]
            chooser.shuffle(chars)
            parts.append("".join(chars))
        made = "-".join(parts)
        if not any(name in made.casefold() for name in folded):
            return made
