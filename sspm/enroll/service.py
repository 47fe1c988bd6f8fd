"""Enroll (or re-enroll) security questions for a signed-in user.

The user confirms their password first: recovery data is as powerful as the
password itself, so a session left open is not enough to replace it. Only
argon2id hashes of the normalised answers are stored, keyed by the
account's immutable directory id.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.directory import Directory, DirectoryError, Outcome
from sspm.account import audit
from sspm.infra.outbox import Outbox
from sspm.infra.store import Answer, Enrollment, Store
from sspm.policy import reasons
from sspm.policy.actor import Actor
from sspm.policy.questions import AnswerHasher, normalise
from sspm.policy.reasons import Reason


@dataclass(frozen=True)
class Pick:
    question_id: str
    answer: str


def answer_problem(
    picks: list[Pick], offered: set[str], min_length: int, username: str, password: str
) -> Reason | None:
    """Why these answers cannot be kept, or None."""
    if len({p.question_id for p in picks}) != len(picks) or not all(p.question_id in offered for p in picks):
        return Reason.QUESTION_TWICE
    answers = [normalise(p.answer) for p in picks]
    if any(len(a) < min_length for a in answers):
        return Reason.ANSWER_TOO_SHORT
    if len(set(answers)) != len(answers):
        return Reason.ANSWERS_SAME
    name = normalise(username)
    if name and any(name in a for a in answers):
        return Reason.ANSWER_CONTAINS_NAME
    secret = normalise(password)
    if secret and any(secret in a for a in answers):
        return Reason.ANSWER_CONTAINS_PASSWORD
    return None


def enroll(
    directory: Directory,
    store: Store,
    hasher: AnswerHasher,
    *,
    account_id: str,
    password: str,
    picks: list[Pick],
    offered: set[str],
    min_length: int,
    actor: Actor,
    outbox: Outbox,
) -> Reason | None:
    """Replace the account's questions; None on success, else the reason.

    ``actor`` is the signed-in user doing it (the account is theirs, by id:
    the session's, never a typed name).
    """
    try:
        account = directory.get_account(account_id)
        if account is None:
            return Reason.BAD_CREDENTIALS
        problem = answer_problem(picks, offered, min_length, account.username, password)
        if problem:
            return problem
        _, verdict = directory.verify_password(account.username, password)
    except DirectoryError as exc:
        return reasons.directory_failed(exc, "enroll security questions")
    if verdict.outcome is not Outcome.OK:
        audit.record(store, audit.Action.ENROLL, verdict.outcome.value, actor=actor, account=account)
        return reasons.of(verdict.outcome)
    hashes = [hasher.hash(p.answer) for p in picks]
    with store.session() as session:
        existing = session.get(Enrollment, account.id)
        action = audit.Action.RE_ENROLL if existing else audit.Action.ENROLL
        if existing:
            session.delete(existing)
            session.flush()
        enrollment = Enrollment(account_id=account.id)
        enrollment.answers = [
            Answer(position=i, question_id=p.question_id, answer_hash=h)
            for i, (p, h) in enumerate(zip(picks, hashes, strict=True))
        ]
        session.add(enrollment)
    audit.record(store, action, "ok", actor=actor, account=account)
    kind = "re_enrolled" if action is audit.Action.RE_ENROLL else "enrolled"
    if not outbox.notify(account, kind, actor.language, actor.client_address):
        # Saved all the same; the trail says the owner was not told.
        audit.record(store, audit.Action.email(kind), "not_queued", actor=actor, account=account)
    return None
