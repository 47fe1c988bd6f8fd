"""Every sentence a user can meet exists in French, finished and well-formed."""

from __future__ import annotations

import tomllib
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
METHODS = [("sspm/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}


def _source_messages() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(language: str):  # type: ignore[no-untyped-def]
    with (ROOT / "sspm" / "translations" / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def test_every_message_in_the_code_has_a_finished_french_translation() -> None:
    catalog = _catalog("fr")
    missing = sorted(m for m in _source_messages() if m not in catalog or not catalog[m].string)
    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert missing == [], f"untranslated in fr: {missing}"
    assert fuzzy == [], f"fuzzy in fr: {fuzzy}"


def test_french_translations_keep_every_placeholder() -> None:
    problems = [(message.id, [str(e) for e in errors]) for message, errors in _catalog("fr").check() if errors]
    assert problems == []


def test_the_catalogue_holds_no_stale_messages() -> None:
    current = _source_messages()
    ids = (m.id if isinstance(m.id, str) else m.id[0] for m in _catalog("fr") if m.id)  # a plural's id is a pair
    stale = sorted(i for i in ids if i not in current)
    assert stale == [], f"no longer in the code (run scripts/translations): {stale}"


# --- French typography ------------------------------------------------------------------------
#
# French puts a narrow no-break space (U+202F) before ? ! ; : and inside « », so the mark never
# starts a line on its own and the spacing is the same on every page; the apostrophe is the
# typographic one (’) throughout. Checked on every French string a user can meet: the catalogue
# and the French security questions.

NARROW_NBSP = "\u202f"
TIGHT_MARKS = "?!;:"


def _french_strings() -> list[tuple[str, str]]:
    """(where, text) for every French string a user can meet."""
    found = []
    for message in _catalog("fr"):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        where = message.id if isinstance(message.id, str) else message.id[0]
        found += [(f"messages.po: {where!r}", text) for text in strings if text]
    questions = tomllib.loads((ROOT / "config" / "questions.toml").read_text(encoding="utf-8"))
    found += [(f"questions.toml: {q['id']}", q["fr"]) for q in questions["question"]]
    return found


def typography_problems(text: str) -> list[str]:
    """What breaks the French typography rules in ``text`` (empty when nothing does)."""
    problems = []
    for i, char in enumerate(text):
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if char in TIGHT_MARKS and before != NARROW_NBSP:
            if char == ":" and before.isdigit() and after.isdigit():
                continue  # a time of day or a countdown (1:30), not punctuation
            problems.append(f"{char!r} at {i} needs a narrow no-break space before it, not {before!r}")
        elif char == "«" and after != NARROW_NBSP:
            problems.append(f"'«' at {i} needs a narrow no-break space after it, not {after!r}")
        elif char == "»" and before != NARROW_NBSP:
            problems.append(f"'»' at {i} needs a narrow no-break space before it, not {before!r}")
        elif char == "'":
            problems.append(f"straight apostrophe at {i}: use ’")
    return problems


def test_the_typography_rule_itself() -> None:
    nb = NARROW_NBSP
    assert typography_problems(f"Un problème{nb}? Temps restant{nb}: 1:30. Oui{nb}; non{nb}! «{nb}ici{nb}» l’a") == []
    for wrong in ("Un problème ?", "Un problème?", "Un problème\u00a0?", "Temps :", "« ici »", "l'adresse"):
        assert typography_problems(wrong), wrong


def test_french_strings_follow_french_typography() -> None:
    problems = [
        f"{where}: {problem}: {text!r}" for where, text in _french_strings() for problem in typography_problems(text)
    ]
    assert problems == [], "French typography:\n" + "\n".join(problems)
