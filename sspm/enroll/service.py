"""Enroll (or re-enroll) security questions for a signed-in user.

The user confirms their password first: recovery data is as powerful as the
password itself, so a session left open is not enough to replace it. Only
argon2id hashes of the normalised answers are stored, keyed by the
account's immutable directory id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from connectors.directory import Directory, DirectoryError, Outcome
from sspm.account import audit
from sspm.infra.outbox import Outbox
from sspm.infra.store import Answer, Enrollment, Store
from sspm.policy import reasons
from sspm.policy.questions import AnswerHasher, normalise
from sspm.policy.reasons import Reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    question_id: str
    answer: str


def enrolled_questions(store: Store, account_id: str) -> list[str]:
    """The question ids an account enrolled, in order; empty if none."""
    with store.session() as session:
        rows = session.scalars(
            select(Answer.question_id).where(Answer.account_id == account_id).order_by(Answer.position)
        )
        return list(rows)


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
    source_ip: str,
    outbox: Outbox,
    language: str,
) -> Reason | None:
    """Replace the account's questions; None on success, else a reason code."""
    try:
        account = directory.get_account(account_id)
        if account is None:
            return Reason.BAD_CREDENTIALS
        problem = answer_problem(picks, offered, min_length, account.username, password)
        if problem:
            return problem
        _, verdict = directory.verify_password(account.username, password)
    except DirectoryError as exc:
        log.warning("directory unavailable at enrollment: %s", exc)
        return Reason.UNAVAILABLE
    if verdict.outcome is not Outcome.OK:
        audit.record(store, audit.Action.ENROLL, verdict.outcome.value, source_ip=source_ip, account=account)
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
    audit.record(store, action, "ok", source_ip=source_ip, account=account)
    outbox.notify(account, "re_enrolled" if action is audit.Action.RE_ENROLL else "enrolled", language, source_ip)
    return None
