"""User names for new accounts, made from a person's names: pure, no I/O.

Names may be written in any script; a user name must be what every
directory accepts and every keyboard types: lowercase ASCII letters and
digits, at most 20 characters (Active Directory's sAMAccountName). The
names are transliterated with ``anyascii`` (Zoë Ærø → zoe aero, Nguyễn →
nguyen, 李 → li), then everything that is not a letter or a digit goes, so
no DN, filter or login syntax (``*``, ``,``, ``+``, ``=``, ``\\``, ``#``,
NUL) can survive into a user name. ``anyascii`` is a table lookup, well
kept and small; were it unavailable, NFKD decomposition with the combining
marks dropped covers the Latin scripts, and names in other scripts fall back
to ``user`` (still unique by its number).

Which candidate is free is the caller's question (the store and the
directory): :func:`candidates` only says in which order to try them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from anyascii import anyascii

#: Active Directory's bound for sAMAccountName; OpenLDAP takes it too.
LONGEST = 20
#: The name a person whose names leave nothing in ASCII letters gets (before its number).
FALLBACK = "user"
#: How many numbered candidates are tried before giving up.
MAX_NUMBER = 999
_NOT_KEPT = re.compile(r"[^a-z0-9]+")


def ascii_letters(name: str) -> str:
    """``name`` transliterated to lowercase ASCII letters and digits only."""
    return _NOT_KEPT.sub("", anyascii(name).lower())


def base_name(given: str, family: str) -> str:
    """The first letter of the given name and the family name: Jean Dupont → jdupont."""
    first, last = ascii_letters(given), ascii_letters(family)
    name = (first[:1] + last) or first
    if not name or not name[0].isalpha():
        name = FALLBACK + name
    return name[:LONGEST]


def candidates(given: str, family: str) -> Iterator[str]:
    """jdupont, jdupont2, jdupont3...: each within LONGEST characters."""
    base = base_name(given, family)
    yield base
    for number in range(2, MAX_NUMBER + 1):
        suffix = str(number)
        yield base[: LONGEST - len(suffix)] + suffix
