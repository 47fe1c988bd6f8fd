"""Which security questions an account enrolled: read by Change Password, Enroll and the demo.

Here, below the features, because more than one feature asks (Change
Password's "done" page offers enrollment to those who have none), and
features do not import each other.
"""

from __future__ import annotations

from sqlalchemy import select

from sspm.infra.store import Answer, Store


def enrolled_questions(store: Store, account_id: str) -> list[str]:
    """The question ids an account enrolled, in order; empty if none."""
    with store.session() as session:
        rows = session.scalars(
            select(Answer.question_id).where(Answer.account_id == account_id).order_by(Answer.position)
        )
        return list(rows)
