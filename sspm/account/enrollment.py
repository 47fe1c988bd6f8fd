"""Which security questions an account enrolled: read by Change Password, Enroll, the helpdesk and the demo.

Here, below the features, because more than one feature asks (Change
Password's "done" page offers enrollment to those who have none), and
features do not import each other.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sspm.infra.store import Answer, Enrollment, Store


def enrolled_questions(store: Store, account_id: str) -> list[str]:
    """The question ids an account enrolled, in order; empty if none."""
    with store.session() as session:
        rows = session.scalars(
            select(Answer.question_id).where(Answer.account_id == account_id).order_by(Answer.position)
        )
        return list(rows)


def answer_hashes(store: Store, account_id: str) -> dict[str, str]:
    """Each enrolled question's argon2id hash, for checking answers; never shown to anyone."""
    with store.session() as session:
        rows = session.execute(
            select(Answer.question_id, Answer.answer_hash).where(Answer.account_id == account_id)
        ).all()
    return {question: digest for question, digest in rows}


def clear_enrollment(session: Session, account_id: str) -> int:
    """Forget an account's questions and answers (staff, for a caller who lost them); how many answers went.

    In the caller's transaction, so the audit row commits with it. The
    owner enrolls again at their next sign-in; until then recovery by
    questions treats them as never enrolled.
    """
    found = session.get(Enrollment, account_id)
    if found is None:
        return 0
    count = len(found.answers)
    session.delete(found)
    return count
