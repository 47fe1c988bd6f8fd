"""Every sentence a user can meet exists in French, finished and well-formed."""

from __future__ import annotations

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
