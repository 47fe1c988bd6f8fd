"""The emails' words, rendered without Flask: the same templates and catalogue as the pages.

The worker renders every email, and it has no web app (nor should it build
one: a job is not a request). So this is the one place an email's text is
made: ``templates/email/*`` through a plain Jinja environment with the
i18n extension, the Babel catalogue in ``sspm/translations``, and times in
SSPM_TIMEZONE, as Flask-Babel renders the pages. What comes out is what the
web app would have rendered: HTML escaped by file name as Flask does, the
``_()`` of the templates formatting its values after escaping them.

One environment per language, made on first use and kept: a render then
never switches a shared environment's language under another thread. Its
templates are compiled once and kept too (no check of the file at each
render: a worker runs the templates it started with, as it runs its code),
so a batch of a thousand reminders compiles nothing.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from babel import dates
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, Template, select_autoescape

from sspm.infra.settings import ROOT, Settings

TEMPLATES = ROOT / "templates"
TRANSLATIONS = ROOT / "sspm" / "translations"
#: Escaped as Flask escapes them (its ``select_jinja_autoescape``); a .txt template is not.
ESCAPED = ("html", "htm", "xml", "xhtml", "svg")


def _l(message: str) -> str:
    """Marks a message for the catalogue under the name the extraction looks for
    (scripts/translations, tests/test_translations.py); translated later, where
    it is used, in the email's language: lazily, as the web side's ``_l``."""
    return message


#: Who to contact, when SSPM_LRA_CONTACT names nobody (the web app says the same).
LRA_FALLBACK = _l("your Local Registration Authority")


class MailTemplates:
    """The email templates of one deployment (its settings), in each of its languages."""

    def __init__(self, settings: Settings, *, templates: Path = TEMPLATES, translations: Path = TRANSLATIONS) -> None:
        self._settings = settings
        self._loader = FileSystemLoader(str(templates))
        self._translations_dir = translations
        self._environments: dict[str, Environment] = {}
        self._catalogues: dict[str, NullTranslations] = {}
        self._lock = threading.Lock()

    def catalogue(self, language: str) -> NullTranslations:
        """The language's translations; none (the English msgids) for a language without a catalogue."""
        with self._lock:
            found = self._catalogues.get(language)
            if found is None:
                found = Translations.load(str(self._translations_dir), [language], "messages")
                self._catalogues[language] = found
            return found

    def gettext(self, language: str, message: str) -> str:
        return self.catalogue(language).gettext(message)

    def lra_contact(self, language: str) -> str:
        """Who to contact when SSPM cannot help: SSPM_LRA_CONTACT, or a translated fallback."""
        return self._settings.lra_contact or self.gettext(language, LRA_FALLBACK)

    def format_datetime(self, when: datetime, language: str, format: str = "long") -> str:
        """``when`` in SSPM_TIMEZONE, written the language's way (Flask-Babel's format_datetime)."""
        return dates.format_datetime(when, format, tzinfo=dates.get_timezone(self._settings.timezone), locale=language)

    def render(self, name: str, language: str, **context: object) -> str:
        """Render ``templates/<name>`` in ``language``."""
        return self.template(name, language).render(**context)

    def template(self, name: str, language: str) -> Template:
        """``templates/<name>`` compiled for ``language``: kept, for rendering many times."""
        return self.environment(language).get_template(name)

    def environment(self, language: str) -> Environment:
        with self._lock:
            found = self._environments.get(language)
        if found is not None:
            return found
        catalogue = self.catalogue(language)
        made = Environment(
            loader=self._loader,
            autoescape=select_autoescape(enabled_extensions=ESCAPED, default_for_string=True, default=False),
            extensions=["jinja2.ext.i18n"],
            auto_reload=False,
        )
        made.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
        made.globals.update(
            settings=self._settings,
            current_language=lambda: language,
            lra_contact=lambda: self.lra_contact(language),
        )
        with self._lock:
            return self._environments.setdefault(language, made)
