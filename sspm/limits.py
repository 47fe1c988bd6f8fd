"""Attempt limits, per client address and per typed user name.

The per-name limit counts every attempt at a name, whether or not an
account has it, so the limit itself never tells an account exists. The
counters live in Redis (SSPM_REDIS_URL), shared by every app process, so a
second process cannot be used to reset them. If Redis stops answering the
limits fall back to per-process counters rather than locking everyone out
of changing a password; the directory's own lockout still applies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)

View = Callable[..., Any]


def _per_ip() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_per_ip)


def _per_account() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_per_account)


def _account_key() -> str:
    # Hashed so the storage never holds user names in clear.
    typed = request.form.get("username", "").strip().casefold()
    return "account:" + hashlib.sha256(typed.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def per_ip(view: View) -> View:
    """Limit a view's POSTs per client address."""
    return limiter.limit(_per_ip, methods=["POST"], scope="ip")(view)


def guarded(view: View) -> View:
    """Limit a view's POSTs per client address and per typed user name."""
    return limiter.limit(_per_account, key_func=_account_key, methods=["POST"], scope="account")(per_ip(view))


def _email_per_ip() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_email_per_ip)


def _email_per_account() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_email_per_account)


def email_guarded(view: View) -> View:
    """Stricter limits for asking for an email, so SSPM cannot flood a mailbox."""
    view = limiter.limit(_email_per_ip, methods=["POST"], scope="email-ip")(view)
    return limiter.limit(_email_per_account, key_func=_account_key, methods=["POST"], scope="email-account")(view)


def init_app(app: Flask) -> None:
    settings = app.config["SSPM_SETTINGS"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url)
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 2, "socket_connect_timeout": 2})
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "sspm-limits")
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
