"""What a typed user name is, once: the spelling SSPM looks up, and the key it counts by.

The directory folds many spellings onto one account. OpenLDAP's
``caseIgnoreMatch`` lower-cases each character, applies NFKC and treats runs
of spaces as one, so ``ｌｓｍｉｔｈ``, ``ⓛsmith``, ``LSMİTH`` and ``l  smith``
(for ``l smith``) all find the same entry; Active Directory folds only case.
Anything SSPM keys on a typed name (decoy questions, attempt limits,
failure counters, audit digests) must fold exactly the same spellings
together, or comparing two spellings tells whether a name has an account:
a real account answers alike to both, an unknown name would not.

Being broader than the directory would leak too (the account answers to one
spelling and not the other, the unknown name to both), so SSPM does not
guess the directory's rules: it looks names up by :func:`spelling`, the one
form it also keys by. Then two spellings with one spelling() meet the same
account, or the same decoys, on every directory.

The one fold SSPM cannot make by itself is the email alias: ``jsmith`` and
``jsmith@partners.example`` find one account because the directory holds that
address, which says nothing of a name with no account. :func:`canonical`
therefore keys an address in one of the organization's own mail domains
(SSPM_LOGIN_MAIL_DOMAINS) on its local part, as the directory does for every
account whose address is its user name at that domain (and Active Directory
does for every account, through its userPrincipalName). An account whose
address differs from its user name (``eloise.cote@`` for ``éloïse``) still
stands out when both spellings are compared, unless the user filter also
finds it by the address's local part on its own: ``(mail={login}@DOMAIN)``
for each of those domains, as config/example.env and the lab's directories do
(tests/flows/test_spellings.py compares the two on both kinds of directory).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

#: The longest login (user name or email) SSPM asks the directory about, wherever it is typed:
#: longer than any real one, short enough to bound the work one lookup causes.
MAX_LENGTH = 256
_SPACES = re.compile(r"\s+")
#: Python lower-cases U+0130 (I with a dot) to "i" + a combining dot; the
#: directory's simple case mapping, used here, gives a plain "i".
_DOTTED_CAPITAL_I = "\u0130"


def _lower(text: str) -> str:
    # Character by character: no final-sigma rule, as the directory's tables have none.
    return "".join("i" if char == _DOTTED_CAPITAL_I else char.lower() for char in text)


def spelling(typed: str) -> str:
    """The form of ``typed`` SSPM looks up in the directory and keys on.

    Lower-cased and NFKC-normalised until stable (NFKC can turn a lower-case
    character into a capital: ``ᴸ`` becomes ``L``), trimmed, with any run of
    whitespace as one space.
    """
    folded = typed
    for _ in range(4):
        again = unicodedata.normalize("NFKC", _lower(folded))
        if again == folded:
            break
        folded = again
    return _SPACES.sub(" ", folded).strip()


def canonical(typed: str, mail_domains: Iterable[str] = ()) -> str:
    """The one key for every spelling of a login: :func:`spelling`, with an
    address in one of ``mail_domains`` reduced to its local part."""
    name = spelling(typed)
    local, at, domain = name.rpartition("@")
    if at and local and domain in {spelling(d) for d in mail_domains}:
        return local
    return name


def digest(typed: str, mail_domains: Iterable[str] = ()) -> str:
    """The canonical login as a SHA-256 hex digest, for keys and records that must not hold names."""
    return hashlib.sha256(canonical(typed, mail_domains).encode("utf-8", "surrogatepass")).hexdigest()


#: SSPM_LOGIN_MAIL_DOMAINS of this process, set once at start by ``configure``.
_mail_domains: tuple[str, ...] = ()


def configure(mail_domains: Iterable[str]) -> None:
    """Set this process's SSPM_LOGIN_MAIL_DOMAINS (``sspm.infra.services.build`` does, at start).

    One value for the process, not read from a web request: the audit trail
    keys unknown names on :func:`digest` in the web app, the worker and the
    command line alike, and a name must get the same digest in each.
    """
    global _mail_domains
    _mail_domains = tuple(mail_domains)


def app_mail_domains() -> tuple[str, ...]:
    """This process's SSPM_LOGIN_MAIL_DOMAINS (none until ``configure``).

    For the audit trail, written from every use case, none of which carries
    the settings.
    """
    return _mail_domains
