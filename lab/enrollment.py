"""Security-question enrollments for seeded accounts, written straight to SSPM's store.

The product's own path (sspm.enroll.service.enroll) needs the user's
password to bind with, which a locked or disabled seed account cannot do;
the demo and the tests still need such accounts enrolled. The hashing is
the product's own.
"""

from __future__ import annotations

from sspm.infra.store import Answer, Enrollment, Store
from sspm.policy.questions import AnswerHasher

#: The demo's and the tests' known answers, by question id.
DEMO_ANSWERS = {
    "first-school": "Riverside Elementary",
    "first-pet": "Biscuit",
    "parents-met": "Montréal",
}


def seed_enrollment(store: Store, hasher: AnswerHasher, account_id: str, answers: dict[str, str] | None = None) -> None:
    chosen = answers or DEMO_ANSWERS
    with store.session() as session:
        existing = session.get(Enrollment, account_id)
        if existing:
            session.delete(existing)
            session.flush()
        enrollment = Enrollment(account_id=account_id)
        enrollment.answers = [
            Answer(position=i, question_id=question, answer_hash=hasher.hash(answer))
            for i, (question, answer) in enumerate(chosen.items())
        ]
        session.add(enrollment)
