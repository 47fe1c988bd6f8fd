"""SSPM: self-service password management in front of a directory.

``create_app`` wires the shared policy (settings, languages, limits,
security headers) and one blueprint per feature. The directory is built
here and handed to features through ``directory()``, so tests and
benchmarks run the same app against the real servers they start.
"""

from __future__ import annotations

import logging
from typing import cast

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from connectors import open_directory
from connectors.directory import Directory
from sspm import errors, i18n, limits, security
from sspm import settings as settings_module
from sspm.settings import ROOT, Settings
from sspm.web import is_mobile, link

csrf = CSRFProtect()


def create_app(settings: Settings | None = None, *, directory: Directory | None = None, check: bool = True) -> Flask:
    """Build the app; with ``check``, prove the directory answers first.

    A wrong CA, an unreachable server or a refused service account stops
    the start with DirectoryError instead of failing the first user.
    """
    settings = settings or settings_module.load()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(
        SSPM_SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="sspm_session",
        SESSION_COOKIE_SECURE=settings.https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PREFERRED_URL_SCHEME="https" if settings.https else "http",
        WTF_CSRF_TIME_LIMIT=3600,
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "sspm" / "translations"),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]

    if directory is None:
        directory = open_directory(settings.directory_kind, settings.directory)
    if check:
        directory.check()
        # Connections opened by the check must not be shared with forked
        # workers (gunicorn --preload): drop them, each worker opens its own.
        directory.close()
    app.extensions["sspm.directory"] = directory

    csrf.init_app(app)
    i18n.init_app(app)
    limits.init_app(app)
    security.init_app(app)
    errors.init_app(app)

    @app.before_request
    def _entry() -> None:
        from flask import g

        g.mobile = is_mobile()

    app.jinja_env.globals.update(link=link, settings=settings)

    from sspm.change.views import bp as change_bp
    from sspm.home.views import bp as home_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(change_bp)
    logging.getLogger("sspm").setLevel(logging.INFO)
    return app


def directory() -> Directory:
    """The directory of the app serving this request."""
    return cast(Directory, current_app.extensions["sspm.directory"])
