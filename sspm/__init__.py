"""SSPM: self-service password management in front of a directory.

``create_app`` wires the shared policy (settings, languages, limits,
security headers) and one blueprint per feature. The outside systems (the
directory, SSPM's store, Redis) are built here once and handed to features
through ``services()``, so tests and benchmarks run the same app against
the real servers they start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from flask import Flask, current_app, g
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from connectors import open_directory
from connectors.directory import Directory
from sspm import audit, errors, i18n, limits, security
from sspm import settings as settings_module
from sspm.email.outbox import Outbox
from sspm.messages import lra_contact
from sspm.questions import AnswerHasher, Catalogue
from sspm.settings import ROOT, ConfigError, Settings
from sspm.state import State, StateUnavailable
from sspm.store import Store, head_revision
from sspm.web import is_mobile, link

csrf = CSRFProtect()


@dataclass(frozen=True)
class Services:
    """The outside systems and shared tools one app instance uses."""

    settings: Settings
    directory: Directory
    store: Store
    state: State
    hasher: AnswerHasher
    catalogue: Catalogue
    outbox: Outbox

    def close(self) -> None:
        self.directory.close()
        self.store.close()
        self.state.close()


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
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]

    if directory is None:
        directory = open_directory(settings.directory_kind, settings.directory)
    store = Store(settings.database_url)
    try:
        audit.ship_to(settings.audit_syslog, settings.audit_json_file)
    except OSError as exc:
        raise ConfigError(f"SSPM_AUDIT_SYSLOG or SSPM_AUDIT_JSON_FILE cannot be used: {exc}") from None
    state = State(settings.redis_url)
    if check:
        directory.check()
        state.check()
        if store.revision() != head_revision():
            raise ConfigError("the database schema is not current: run `python -m sspm migrate`")
        # Connections opened by the checks must not be shared with forked
        # workers (gunicorn --preload): drop them, each worker opens its own.
        directory.close()
        store.close()
        state.close()
    try:
        catalogue = Catalogue.load(settings.questions_file, settings.languages)
    except ValueError as exc:
        raise ConfigError(f"SSPM_QUESTIONS_FILE: {exc}") from None
    if len(catalogue.offered(settings.questions_offered)) < settings.questions_offered:
        raise ConfigError("SSPM_QUESTIONS_OFFERED is more than the catalogue offers")
    outbox = Outbox(state.redis, store, settings.email_retry_seconds)
    app.extensions["sspm"] = Services(settings, directory, store, state, AnswerHasher(), catalogue, outbox)

    csrf.init_app(app)
    i18n.init_app(app)
    limits.init_app(app)
    security.init_app(app)
    errors.init_app(app)

    @app.before_request
    def _entry() -> None:
        g.mobile = is_mobile()

    app.jinja_env.globals.update(link=link, settings=settings, signed_in=_signed_in, lra_contact=lra_contact)

    from sspm.change.views import bp as change_bp
    from sspm.email.views import bp as email_bp
    from sspm.enroll.views import bp as enroll_bp
    from sspm.home.views import bp as home_bp
    from sspm.recovery.views import bp as recovery_bp
    from sspm.signin.views import bp as signin_bp

    for blueprint in (home_bp, change_bp, signin_bp, enroll_bp, recovery_bp, email_bp):
        app.register_blueprint(blueprint)
    logging.getLogger("sspm").setLevel(logging.INFO)
    return app


def services() -> Services:
    """The outside systems of the app serving this request."""
    return cast(Services, current_app.extensions["sspm"])


def _signed_in() -> bool:
    from sspm.sessions import current_user

    try:
        return current_user(services().state) is not None
    except StateUnavailable:  # a page must still render while Redis is away
        return False
