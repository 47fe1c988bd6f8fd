"""Error pages: translated, helpful, and never a stack trace or a secret."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from connectors.directory import DirectoryError
from sspm.account import audit
from sspm.infra import metrics
from sspm.infra.state import StateUnavailable
from sspm.policy.reasons import Reason, directory_failed
from sspm.web import limits
from sspm.web.acting import acting
from sspm.web.context import services
from sspm.web.messages import reason_text

log = logging.getLogger(__name__)

_PAGES: dict[int, tuple[LazyString, LazyString]] = {
    400: (_l("Something went wrong with this form"), _l("Go back, reload the page and try again.")),
    404: (_l("Page not found"), _l("Check the address, or start again from the home page.")),
    405: (_l("Page not found"), _l("Check the address, or start again from the home page.")),
    413: (_l("Too much data"), _l("What was sent is too large. Go back and try again.")),
    500: (
        _l("Something went wrong on our side"),
        # Not "nothing was changed": an error can come after the directory took a new password.
        _l(
            "We could not finish this, and part of it may have been done: if you were setting a password, "
            "try the new one first. Then wait a minute and try again; if it keeps happening, contact your help desk."
        ),
    ),
}


def _page(status: int, title: str, text: str) -> tuple[str, int]:
    return render_template("error.html", title=title, text=text), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> tuple[str, int]:
        return _page(
            400,
            str(_l("This page has expired")),
            str(_l("For your security, forms expire. Reload the page and fill it in again.")),
        )

    @app.errorhandler(StateUnavailable)
    def state_away(error: StateUnavailable) -> tuple[str, int]:
        log.warning("Redis unavailable: %s", error)
        return _page(
            503,
            str(_l("Please try again in a minute")),
            str(_l("This service is busy or being restarted, and nothing was changed. Wait a minute and try again.")),
        )

    @app.errorhandler(DirectoryError)
    def directory_away(error: DirectoryError) -> tuple[str, int]:
        # A page that reads the directory outside a use case (opening a reset
        # link, say): logged as every use case logs it, and the user told to
        # wait; whatever the page held (an opened link) is kept for the retry.
        directory_failed(error, request.endpoint or "a page")
        return _page(503, str(_l("Please try again in a minute")), reason_text(Reason.UNAVAILABLE))

    @app.errorhandler(429)
    def too_many(error: HTTPException) -> tuple[str, int]:
        metrics.limit_hit(limits.counted_by(error))
        # A refusal like any other: on the audit trail (by who acted; the typed name is not kept).
        audit.record(
            services().store,
            audit.Action.REQUEST,
            "rate_limited",
            actor=acting(),
            details={"endpoint": request.endpoint or "unknown"},
        )
        return _page(429, str(_l("Too many attempts")), reason_text(Reason.RATE_LIMITED))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        status = error.code or 500
        title, text = _PAGES.get(status, _PAGES[400] if status < 500 else _PAGES[500])
        return _page(status, str(title), str(text))

    @app.errorhandler(Exception)
    def crashed(error: Exception) -> tuple[str, int]:
        # Logged with its traceback for operators; the page says nothing of it.
        log.exception("unhandled error")
        title, text = _PAGES[500]
        return _page(500, str(title), str(text))
