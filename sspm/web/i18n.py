"""Which language a page speaks, and remembering the user's choice.

Order: an explicit ``?lang=`` (the switch on every page), then the
remembered choice (a cookie), then the browser's Accept-Language, then the
configured default.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_babel import Babel, get_locale

COOKIE = "sspm_lang"
#: A language choice is not sensitive; keep it for a year.
COOKIE_AGE = 365 * 24 * 3600
NAMES = {"en": "English", "fr": "Français"}


def _languages() -> tuple[str, ...]:
    return tuple(current_app.config["SSPM_SETTINGS"].languages)


def _chosen() -> str | None:
    for candidate in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if candidate in _languages():
            return candidate
    return None


def select_locale() -> str:
    settings = current_app.config["SSPM_SETTINGS"]
    chosen = _chosen()
    if chosen:
        return chosen
    return request.accept_languages.best_match(settings.languages) or settings.default_language


def _remember(response: Response) -> Response:
    wanted = request.args.get("lang")
    if wanted in _languages() and request.cookies.get(COOKIE) != wanted:
        response.set_cookie(
            COOKIE,
            wanted,
            max_age=COOKIE_AGE,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return response


def other_languages() -> list[tuple[str, str]]:
    current = str(get_locale())
    return [(code, NAMES.get(code, code)) for code in _languages() if code != current]


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember)
    app.jinja_env.globals.update(other_languages=other_languages, current_language=lambda: str(get_locale()))
