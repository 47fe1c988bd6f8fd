"""Distinguished names as data: built from escaped values, compared parsed.

Anything typed by a person (a name, a login, an OU) reaches a DN only
through :func:`escape_value`, so a comma or a ``+`` in it is text and never
another RDN; and a DN is only ever compared parsed (:func:`within`), so
``OU=People, DC=x`` is ``ou=people,dc=x`` and ``CN=a\\,ou=people`` is one
RDN, not two. RFC 4514 throughout; ldap3's own parser refuses the spaces
operators put after commas, hence this one.
"""

from __future__ import annotations

import unicodedata

#: Characters RFC 4514 wants escaped anywhere in a value (``=`` is not
#: required, but Active Directory and humans read it more safely escaped).
_SPECIAL = frozenset('"+,;<>\\=')
_HEX = frozenset("0123456789abcdefABCDEF")


class InvalidDn(ValueError):
    """Text that is not a DN."""


def escape_value(text: str) -> str:
    """``text`` as an RDN value that means exactly ``text``.

    Specials are backslash-escaped, a leading ``#`` or space and a trailing
    space too, and any control character is written as hex (the connectors
    refuse those in names before this, but a DN never breaks on one).
    """
    out: list[str] = []
    for index, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cs"):
            out.append("".join(f"\\{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        elif char in _SPECIAL or (index == 0 and char in "# ") or (index == len(text) - 1 and char == " "):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def rdns(dn: str) -> list[tuple[tuple[str, str], ...]]:
    """The DN's RDNs, outermost last, each a sorted tuple of (type, value) in comparable form.

    Types and values are case-folded and values unescaped: the matching
    rules of the names DNs are made of (cn, ou, dc, uid) ignore case.
    """
    if not dn.strip():
        return []
    found = []
    for rdn in _split(dn, ","):
        pairs = []
        for part in _split(rdn, "+"):
            kind, equals, value = _partition(part)
            if not equals or not kind.strip() or not _trim(value):
                raise InvalidDn(f"not a DN: {dn!r}")
            pairs.append((kind.strip().casefold(), _unescape(_trim(value)).casefold()))
        found.append(tuple(sorted(pairs)))
    return found


def within(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or an entry below it; False for text that is not a DN."""
    try:
        inner, outer = rdns(dn), rdns(base)
    except InvalidDn:
        return False
    return bool(outer) and len(inner) >= len(outer) and inner[len(inner) - len(outer) :] == outer


def same(a: str, b: str) -> bool:
    """Whether two DNs name the same entry."""
    return within(a, b) and within(b, a)


def parent(dn: str) -> str:
    """The DN of the entry ``dn`` is in, as written there (the text after its first RDN)."""
    parts = _split(dn, ",")
    return ",".join(part.strip() for part in parts[1:])


def first_value(dn: str) -> str:
    """The value of the DN's first RDN, unescaped (``CN=Smith\\, John,...`` gives ``Smith, John``)."""
    first = _split(dn, ",")[0]
    return _unescape(_trim(_partition(first)[2]))


def _split(text: str, separator: str) -> list[str]:
    """``text`` cut at each unescaped ``separator``; escapes are kept for the next step."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text):
                raise InvalidDn(f"a DN cannot end with a lone backslash: {text!r}")
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _trim(value: str) -> str:
    """The value without the spaces around it, but with an escaped last space (``\\ ``) kept."""
    kept = value.strip()
    backslashes = len(kept) - len(kept.rstrip("\\"))
    if backslashes % 2 and len(kept) < len(value.lstrip()):
        kept += " "
    return kept


def _partition(rdn: str) -> tuple[str, str, str]:
    """``type=value`` at the first unescaped ``=`` (a type never holds a backslash)."""
    kind, equals, value = rdn.partition("=")
    if "\\" in kind:
        raise InvalidDn(f"not an RDN: {rdn!r}")
    return kind, equals, value


def _unescape(value: str) -> str:
    r"""An RDN value as text: ``\,`` and ``\2C`` are both a comma; ``\C3\A9`` is é."""
    raw = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in _HEX for c in pair):
                raw.append(int(pair, 16))
                i += 3
                continue
            if i + 1 >= len(value):
                raise InvalidDn(f"a value cannot end with a lone backslash: {value!r}")
            char = value[i + 1]
            i += 1
        raw += char.encode("utf-8", "surrogatepass")
        i += 1
    return raw.decode("utf-8", "replace")


def values(dn: str) -> list[tuple[str, str]]:
    """The DN's RDNs as (type, value), unescaped, in their own case; a multi-valued RDN is refused."""
    found = []
    for rdn in _split(dn, ","):
        if len(_split(rdn, "+")) != 1:
            raise InvalidDn(f"a multi-valued RDN: {rdn!r}")
        kind, equals, value = _partition(rdn)
        if not equals:
            raise InvalidDn(f"not a DN: {dn!r}")
        found.append((kind.strip(), _unescape(_trim(value))))
    return found


def path_below(entry: str, base: str) -> tuple[str, ...] | None:
    """The OU names from ``base`` down to ``entry``, outermost first; None unless all are OUs below base."""
    try:
        if not within(entry, base):
            return None
        extra = values(entry)[: len(rdns(entry)) - len(rdns(base))]
    except InvalidDn:
        return None
    if not extra or any(kind.casefold() != "ou" for kind, _ in extra):
        return None
    return tuple(value for _, value in reversed(extra))
