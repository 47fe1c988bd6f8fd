"""Forgot Password and Unlock Account through security questions.

Three steps, each a plain function:

1. ``start``: a user name becomes a challenge of two questions under a
   deadline. Unknown, unenrolled and disabled accounts get a challenge too,
   built the same way with the same work, so nothing here tells them apart.
2. ``answer``: one try per challenge; both answers are always checked; one
   verdict. Failures count per account (per canonical login for an unknown
   name), and past the limit every answer fails (in the same words) until
   the window ends.
3. ``reset`` / ``unlock``: only with the single-use pass that step 2 hands
   out, bound to the same browser.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from connectors.directory import Account, Directory, DirectoryError, Outcome
from sspm.account import attempts, audit
from sspm.account.aftermath import after_password_set
from sspm.infra.outbox import Outbox
from sspm.infra.state import State
from sspm.infra.store import Answer, Store
from sspm.policy import logins, reasons
from sspm.policy.actor import Actor
from sspm.policy.passwords import Rules, first_problem
from sspm.policy.questions import AnswerHasher, Catalogue
from sspm.policy.reasons import Reason

PURPOSES = ("forgot", "unlock")
#: Stands in for an account id when there is no account, so the same
#: queries run (and find nothing).
NO_ACCOUNT = "00000000-0000-0000-0000-000000000000"
#: How long a passed challenge may wait for the new password.
PASS_TTL_SECONDS = 600


@dataclass(frozen=True)
class RecoveryPolicy:
    answered: int
    asked: int
    seconds: int
    max_failures: int
    window_seconds: int
    decoy_secret: bytes
    #: How many questions users choose from (SSPM_QUESTIONS_OFFERED): decoys come from the same ones.
    offered: int
    #: SSPM_LOGIN_MAIL_DOMAINS: an address there is keyed like its local part (sspm.policy.logins).
    mail_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Challenge:
    id: str
    purpose: str
    username: str
    questions: list[str]
    deadline: float

    def remaining(self, now: float | None = None) -> int:
        # Rounded up: a fresh 5-minute challenge shows 5:00, not 4:59.
        return max(0, math.ceil(self.deadline - (now if now is not None else time.time())))


@dataclass(frozen=True)
class Verdict:
    """``pass_id`` is set only when the user proved who they are."""

    reason: Reason | None
    pass_id: str | None = None
    purpose: str = ""


def _person_key(account: Account | None, account_id: str | None, typed: str, policy: RecoveryPolicy) -> str:
    """Who a try is about, for decoys and failure counts, however the name was typed.

    An account's immutable id when the directory found one (every spelling
    that reaches it, user name or address, is one person), else the canonical
    login, which folds exactly the spellings a lookup folds (sspm.policy.logins).
    """
    found = account.id if account else account_id
    if found:
        return attempts.account_key(found)
    return f"name:{logins.digest(typed, policy.mail_domains)}"  # hashed: Redis holds no typed name


def _answers_of(store: Store, account_id: str) -> dict[str, str]:
    with store.session() as session:
        rows = session.execute(
            select(Answer.question_id, Answer.answer_hash).where(Answer.account_id == account_id)
        ).all()
    return {question: digest for question, digest in rows}


def question_pool(
    directory: Directory, store: Store, catalogue: Catalogue, policy: RecoveryPolicy, typed: str
) -> tuple[Account | None, list[str], bool]:
    """The account a typed login reaches, the questions a challenge for it
    draws from, and whether it may pass; raises DirectoryError.

    The pool is the account's enrolled questions; for an account that has
    none, or a name that has no account, it is a fixed set of decoys for that
    person, so every spelling meets the same pool, as with a real enrollment.
    """
    account = directory.find_account(logins.spelling(typed))
    pool = list(_answers_of(store, account.id if account else NO_ACCOUNT))
    eligible = bool(account and pool and not account.disabled)
    if not pool:
        key = _person_key(account, None, typed, policy)
        pool = [q.id for q in catalogue.decoys(policy.decoy_secret, key, policy.answered, policy.offered)]
    return account, pool, eligible


def start(
    directory: Directory,
    store: Store,
    state: State,
    catalogue: Catalogue,
    policy: RecoveryPolicy,
    *,
    purpose: str,
    typed: str,
    actor: Actor,
) -> Challenge | Reason:
    """Make the challenge for a typed user name; the reason instead when the directory cannot say who it is."""
    try:
        account, pool, eligible = question_pool(directory, store, catalogue, policy, typed)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, f"start {purpose}")
    questions = random.SystemRandom().sample(pool, min(policy.asked, len(pool)))
    challenge = Challenge(
        id=secrets.token_urlsafe(24),
        purpose=purpose,
        username=typed.strip(),
        questions=questions,
        deadline=time.time() + policy.seconds,
    )
    record = {
        "purpose": purpose,
        "typed": typed,
        "username": challenge.username,
        "account_id": account.id if account else None,
        "account_username": account.username if account else None,
        "eligible": eligible,
        "questions": questions,
        "deadline": challenge.deadline,
    }
    state.put("challenge", challenge.id, record, policy.seconds + 60)
    audit.record(
        store,
        audit.Action.recovery_start(purpose),
        "challenge_issued",
        actor=actor,
        account=account,
        typed=typed,
    )
    return challenge


def abandon(state: State, challenge_id: str) -> None:
    """Retire a challenge its browser walked away from (by starting another)."""
    state.delete("challenge", challenge_id)


def load(state: State, challenge_id: str) -> Challenge | None:
    record = state.get("challenge", challenge_id)
    if record is None:
        return None
    return Challenge(challenge_id, record["purpose"], record["username"], record["questions"], record["deadline"])


def answer(
    store: Store,
    state: State,
    hasher: AnswerHasher,
    policy: RecoveryPolicy,
    *,
    challenge_id: str,
    answers: list[str],
    actor: Actor,
) -> Verdict:
    """Judge the answers to a challenge, once."""
    record = state.take("challenge", challenge_id)
    if record is None:
        return Verdict(Reason.CHALLENGE_GONE)
    purpose = record["purpose"]
    account_id = record["account_id"]
    stored = _answers_of(store, account_id or NO_ACCOUNT)
    given = answers + [""] * (len(record["questions"]) - len(answers))
    # Per account when there is one, however its name was typed (user name, email,
    # capitals, fullwidth); per canonical login otherwise. Counted before the
    # answers are judged, so that answers sent at once get no more tries than
    # the limit between them (sspm.account.attempts.attempt).
    key = _person_key(None, account_id, record["typed"], policy)
    paused = not attempts.attempt(state, key, policy.max_failures, policy.window_seconds)
    # Every answer is checked, so the time taken says nothing about which failed.
    results = hasher.verify_all([(stored.get(q), a) for q, a in zip(record["questions"], given, strict=False)])
    late = time.time() > float(record["deadline"])
    if all(results) and record["eligible"] and not late and not paused:
        attempts.succeeded(state, key)
        pass_id = secrets.token_urlsafe(24)
        state.put("pass", pass_id, {"purpose": purpose, "account_id": account_id}, PASS_TTL_SECONDS)
        audit.record(
            store,
            audit.Action.recovery_answers(purpose),
            "ok",
            actor=actor,
            account_id=account_id,
            username=record["account_username"],
            typed=record["typed"],
        )
        return Verdict(None, pass_id, purpose)
    outcome = "late" if late else "paused" if paused else "wrong_or_not_enrolled"
    audit.record(
        store,
        audit.Action.recovery_answers(purpose),
        outcome,
        actor=actor,
        account_id=account_id,
        username=record["account_username"],
        typed=record["typed"],
    )
    return Verdict(Reason.TOO_LATE if late else Reason.ANSWERS_REFUSED, purpose=purpose)


def passed(state: State, pass_id: str, purpose: str) -> bool:
    record = state.get("pass", pass_id)
    return bool(record and record["purpose"] == purpose)


@dataclass(frozen=True)
class Insight:
    """What the directory says of an account's lockout, shown to its owner once they proved who they are.

    So a nurse can tell her own typos on a phone this morning from someone
    else's guesses at night. Times are as the directory keeps them (every
    counted wrong password on OpenLDAP, the last one on Active Directory).
    """

    locked: bool
    locked_since: datetime | None
    failures: int
    failure_times: tuple[datetime, ...]

    @property
    def anything(self) -> bool:
        return self.locked or self.failures > 0


def insight_of(directory: Directory, account: Account) -> Insight | None:
    """The account's lockout as the directory has it now; None when the directory cannot say."""
    try:
        status = directory.status(account)
    except DirectoryError as exc:
        reasons.directory_failed(exc, "read the lockout of a recovered account")
        return None
    return Insight(status.locked, status.locked_since, status.failures, status.failure_times)


def passed_account(directory: Directory, state: State, pass_id: str) -> Account | None:
    """The account a live pass was won for, so the page's meter can know its names.

    None when there is none or the directory is away: the page then checks
    the names only when the form is sent.
    """
    record = state.get("pass", pass_id)
    if not record or not record.get("account_id"):
        return None
    try:
        return directory.get_account(record["account_id"])
    except DirectoryError as exc:
        reasons.directory_failed(exc, "read the account of a passed challenge")
        return None


def reset(
    directory: Directory,
    store: Store,
    state: State,
    rules: Rules,
    *,
    pass_id: str,
    new: str,
    confirm: str,
    actor: Actor,
    outbox: Outbox,
) -> Reason | None:
    """Set the new password (and so clear any lock); None on success.

    The pass proves who may; ``actor`` is who did (the account's owner, not
    signed in, unless someone else acts for them).
    """
    record = state.get("pass", pass_id)
    if record is None or record["purpose"] != "forgot":
        return Reason.CHALLENGE_GONE
    try:
        account = directory.get_account(record["account_id"])
        if account is None:
            return Reason.CHALLENGE_GONE
        problem = first_problem(new, confirm, "", rules, account)
        if problem is not None:
            return problem
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "reset a password after the questions")
    try:
        outcome = directory.reset_password(account, new, must_change=False)
    except DirectoryError as exc:
        # The pass is kept: if the password was not set, the form works again.
        reason = reasons.directory_failed(exc, "reset a password after the questions", setting_password=True)
        audit.record(store, audit.Action.FORGOT_RESET, reason.value, actor=actor, account=account)
        return reason
    if outcome is not Outcome.OK:
        audit.record(store, audit.Action.FORGOT_RESET, outcome.value, actor=actor, account=account)
        return reasons.of(outcome)
    state.delete("pass", pass_id)
    after_password_set(
        store, state, outbox, account, done=audit.Action.FORGOT_RESET, event="password_reset", actor=actor
    )
    return None


def unlock(
    directory: Directory,
    store: Store,
    state: State,
    *,
    pass_id: str,
    actor: Actor,
    outbox: Outbox,
) -> Reason | Insight | None:
    """Clear the lock, leaving the password alone; the lockout as it was just before, on success.

    The lockout is read before the unlock clears it, so the owner can be
    shown what happened (``Insight``); None if the directory could not say.
    """
    record = state.take("pass", pass_id)
    if record is None or record["purpose"] != "unlock":
        return Reason.CHALLENGE_GONE
    try:
        account = directory.get_account(record["account_id"])
        if account is None:
            return Reason.CHALLENGE_GONE
        before = insight_of(directory, account)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "unlock an account after the questions")
    try:
        outcome = directory.unlock(account)
    except DirectoryError as exc:
        # A directory that froze as the unlock reached it applies it when it wakes.
        reason = reasons.directory_failed(exc, "unlock an account after the questions", setting_password=True)
        audit.record(store, audit.Action.UNLOCK, reason.value, actor=actor, account=account)
        return reason
    if outcome is not Outcome.OK:
        audit.record(store, audit.Action.UNLOCK, outcome.value, actor=actor, account=account)
        return reasons.of(outcome)
    after_password_set(store, state, outbox, account, done=audit.Action.UNLOCK, event="account_unlocked", actor=actor)
    return before
