"""The web app: ``create_app`` builds one Flask app from SSPM's services.

``create_app`` wires the shared policy (settings, languages, limits,
security headers) and one blueprint per feature. The outside systems (the
directory, SSPM's store, Redis) are built here once and handed to features
through ``services()``, so tests and benchmarks run the same app against
the real servers they start.
"""

from __future__ import annotations

import logging

from flask import Flask, g
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from connectors.directory import Directory
from sspm.account import audit
from sspm.infra import settings as settings_module
from sspm.infra.services import build
from sspm.infra.settings import ROOT, Settings
from sspm.infra.state import StateUnavailable
from sspm.web import errors, i18n, limits, request_ids, security
from sspm.web.auth import current_user
from sspm.web.context import services
from sspm.web.messages import lra_contact
from sspm.web.routing import is_mobile, link

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
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]

    app.extensions["sspm"] = build(settings, directory=directory, check=check)
    audit.use_secret_key(app.extensions["sspm"].store, settings.secret_key)  # for the console's chain check

    request_ids.init_app(app, trusted_proxies=settings.trusted_proxies)  # first: every hook's lines carry the id
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
    from sspm.console.views import bp as console_bp
    from sspm.email.views import bp as email_bp
    from sspm.enroll.views import bp as enroll_bp
    from sspm.health.views import bp as health_bp
    from sspm.health.views import measure_requests
    from sspm.helpdesk.views import bp as helpdesk_bp
    from sspm.home.views import bp as home_bp
    from sspm.jobs_console.views import bp as jobs_console_bp
    from sspm.people.views import bp as people_bp
    from sspm.profile.views import bp as profile_bp
    from sspm.recovery.views import bp as recovery_bp
    from sspm.reports.views import bp as reports_bp
    from sspm.setup.views import bp as setup_bp
    from sspm.signin.views import bp as signin_bp
    from sspm.staff.views import bp as staff_bp

    for blueprint in (
        home_bp,
        change_bp,
        signin_bp,
        enroll_bp,
        recovery_bp,
        email_bp,
        staff_bp,
        console_bp,
        helpdesk_bp,
        people_bp,
        profile_bp,
        setup_bp,
        reports_bp,
        jobs_console_bp,
        health_bp,
    ):
        app.register_blueprint(blueprint)
    measure_requests(app)  # every request counted by endpoint and status, and timed (/metrics)
    if logging.getLogger("sspm").level == logging.NOTSET:  # not set by sspm.infra.logs.setup
        logging.getLogger("sspm").setLevel(logging.INFO)
    return app


def _signed_in() -> bool:
    try:
        return current_user(services().state) is not None
    except StateUnavailable:  # a page must still render while Redis is away
        return False
