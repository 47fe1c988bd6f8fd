"""Security questions: the catalogue, and how answers are kept and checked.

Answers are normalised before hashing so a user is not failed for typing
"Montréal " where they enrolled "montreal", and each is hashed on its own
with argon2id (per-answer salt). A hash is the only thing stored.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import threading
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Question:
    id: str
    text: dict[str, str]
    offered: bool = True

    def in_language(self, language: str) -> str:
        return self.text.get(language) or self.text["en"]


class Catalogue:
    """The questions of config/questions.toml, by id, in file order."""

    def __init__(self, questions: list[Question]) -> None:
        self.questions = questions
        self.by_id = {q.id: q for q in questions}

    @classmethod
    def load(cls, path: Path, languages: tuple[str, ...]) -> Catalogue:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        questions = []
        for entry in data.get("question", []):
            missing = [code for code in languages if not entry.get(code)]
            if missing:
                raise ValueError(f"{path}: question {entry.get('id')!r} has no text in {', '.join(missing)}")
            text = {code: str(entry[code]) for code in languages}
            questions.append(Question(str(entry["id"]), text, bool(entry.get("offered", True))))
        if len({q.id for q in questions}) != len(questions):
            raise ValueError(f"{path}: two questions share an id")
        return cls(questions)

    def offered(self, count: int) -> list[Question]:
        return [q for q in self.questions if q.offered][:count]

    def decoys(self, secret: bytes, key: str, count: int, offered: int) -> list[Question]:
        """Questions for a login that has no enrollment.

        Derived from ``key`` with a server secret: the caller passes one key
        for every spelling that reaches the same account (its immutable id),
        or the same unknown name (its canonical form, sspm.logins), so the same
        person always gets the same questions, as an enrolled user would, and
        nobody without the secret can tell decoys from real ones. They are
        drawn from the ``offered`` questions users choose from, as real ones are.
        """
        material = b"decoy-questions:" + key.encode("utf-8", "surrogatepass")
        seed = hmac.new(secret, material, hashlib.sha256).digest()
        pool = self.offered(offered)
        return random.Random(seed).sample(pool, min(count, len(pool)))  # noqa: S311 - a stable shuffle, not a secret


def normalise(answer: str) -> str:
    """Fold case, accents and spacing: "  Montréal  Nord " -> "montreal nord"."""
    decomposed = unicodedata.normalize("NFKD", answer)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", stripped.casefold()).strip()


class AnswerHasher:
    """argon2id over normalised answers.

    ``verify`` always does the work of one hash check, even for a missing
    hash, so an account without answers costs the same as one with them.
    """

    def __init__(self) -> None:
        # OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane; the Password
        # Storage Cheat Sheet's first choice): ~18 ms of CPU per check on the
        # 2-core lab host, where argon2-cffi's default (64 MiB, 3 passes, 4
        # lanes) took ~0.5 s per answer, too slow for a page that checks two.
        # A stored hash carries its own parameters: changing these changes
        # only new enrollments and the decoy.
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
        self._decoy = self._hasher.hash("sspm-decoy-answer")
        self.verifications = 0

    def hash(self, answer: str) -> str:
        return self._hasher.hash(normalise(answer))

    def verify(self, stored: str | None, answer: str) -> bool:
        self.verifications += 1
        return self._check(stored, answer)

    def verify_all(self, pairs: Sequence[tuple[str | None, str]]) -> list[bool]:
        """Check every (stored hash, answer) pair, side by side: one thread each but the last.

        argon2-cffi lets go of the GIL while it hashes, so on more than one
        core a challenge of two answers waits for one check, not two in a
        row; and under load each check gets its own share of the cores
        rather than queueing behind the other. Every pair is still checked,
        each the whole way, so the time says nothing about which one failed.
        """
        self.verifications += len(pairs)
        results = [False] * len(pairs)

        def check(i: int) -> None:
            results[i] = self._check(*pairs[i])

        helpers = [threading.Thread(target=check, args=(i,), name="answer-check") for i in range(len(pairs) - 1)]
        for helper in helpers:
            helper.start()
        if pairs:
            check(len(pairs) - 1)
        for helper in helpers:
            helper.join()
        return results

    def _check(self, stored: str | None, answer: str) -> bool:
        try:
            return self._hasher.verify(stored or self._decoy, normalise(answer)) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
