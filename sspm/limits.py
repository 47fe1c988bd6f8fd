"""Attempt limits, per client address and per typed user name.

The per-name limit counts every attempt at a name, whether or not an
account has it, so the limit itself never tells an account exists. The
counters live in SSPM_RATELIMIT_STORAGE_URI: Redis when several app
processes serve users, so a second process cannot be used to reset them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


def _per_ip() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_per_ip)


def _per_account() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_per_account)


def _account_key() -> str:
    # Hashed so the storage never holds user names in clear.
    typed = request.form.get("username", "").strip().casefold()
    return "account:" + hashlib.sha256(typed.encode("utf-8")).hexdigest()[:32]


def guarded(view: Callable[..., object]) -> Callable[..., object]:
    """Apply both limits to the POSTs of a view that checks a password."""
    view = limiter.limit(_per_ip, methods=["POST"], scope="ip")(view)
    return limiter.limit(_per_account, key_func=_account_key, methods=["POST"], scope="account")(view)


def init_app(app: Flask) -> None:
    settings = app.config["SSPM_SETTINGS"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.ratelimit_storage_uri)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "sspm")
    limiter.init_app(app)
