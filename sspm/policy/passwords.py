"""The new-password policy: one definition, used on submit and shown as rules.

The directory's own policy (length, history) is the floor; SSPM adds what a
directory cannot judge: a strength estimate (zxcvbn: its Rust port here,
~0.5 ms against ~5 ms for the pure-Python one, and the original JavaScript
in the browser's meter) and "not built from your own name". The page's
live meter (static/js/password.js) mirrors these checks; this module is the
one that decides. To keep the two agreeing, the meter gets the very list
:func:`user_inputs` returns (rendered into the page once the account is
proven) and folds it with the same :func:`fold`, and both count length in
code points.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from zxcvbn_rs_py import zxcvbn

from connectors.directory import Account, PasswordPolicy
from sspm.policy.reasons import Reason

#: zxcvbn's cost grows fast with length; past this the estimate only looks
#: at the start, which already scores any sane long password as strong.
_ESTIMATE_CHARS = 64
#: Name parts shorter than this would refuse too much ("Al" in "Always").
_MIN_NAME_PART = 3


@dataclass(frozen=True)
class Rules:
    """What a new password must satisfy, as shown to the user."""

    min_length: int
    history: int
    min_strength: int
    max_age_days: int | None = None

    @classmethod
    def from_policy(cls, policy: PasswordPolicy, min_strength: int) -> Rules:
        # Never below 8, whatever the directory accepts.
        return cls(
            min_length=max(policy.min_length, 8),
            history=policy.history,
            min_strength=min_strength,
            max_age_days=policy.max_age_days,
        )


def strength(password: str, hints: list[str]) -> int:
    """zxcvbn's 0-4 score, with the user's own names as known words."""
    return int(zxcvbn(password[:_ESTIMATE_CHARS], hints).score)


def fold(text: str) -> str:
    """``text`` as the name rule compares it: compatibility forms, accents and case set aside.

    "Éloïse", "ELOISE" and fullwidth "ｅｌｏｉｓｅ" all fold to "eloise", so a
    password cannot get past the rule by dropping an accent. The meter runs
    the same three steps in JavaScript (NFKD, drop every combining mark,
    lower-case); ``lower()`` rather than ``casefold()`` because JavaScript has
    no casefold, and the two sides must fold alike.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.category(c).startswith("M")).lower()


def name_parts(account: Account) -> list[str]:
    """The user name whole, and each word of the given and display names.

    Words are split at anything that is not a letter or digit, so a
    hyphenated "Jean-Pierre" refuses "Pierre" too.
    """
    words = re.split(r"[\W_]+", f"{account.given_name} {account.display_name}")
    parts: list[str] = []
    seen: set[str] = set()
    for part in (account.username.strip(), *words):
        if len(part) >= _MIN_NAME_PART and fold(part) not in seen:
            seen.add(fold(part))
            parts.append(part)
    return parts


def user_inputs(account: Account) -> list[str]:
    """The names zxcvbn is told about, as written and as folded.

    Given to zxcvbn on both sides (here and, through the page, in the
    meter), so that "3l0is3" is recognised as a form of "Éloïse" as well.
    """
    names = name_parts(account)
    return names + [f for f in dict.fromkeys(fold(n) for n in names) if f not in names]


def contains_name(password: str, names: list[str]) -> bool:
    folded = fold(password)
    return any(fold(name) in folded for name in names)


def first_problem(new: str, confirm: str, old: str, rules: Rules, account: Account | None) -> Reason | None:
    """The first reason to refuse ``new``, or None.

    Checks that need no account come first and never depend on who the
    user is; the name checks run only once the account is proven.
    """
    if new != confirm:
        return Reason.MISMATCH
    if new == old:
        return Reason.SAME_AS_OLD
    if len(new) < rules.min_length:
        return Reason.TOO_SHORT
    if account is None:
        return None
    names = user_inputs(account)
    if contains_name(new, names):
        return Reason.CONTAINS_NAME
    if strength(new, names) < rules.min_strength:
        return Reason.TOO_WEAK
    return None
