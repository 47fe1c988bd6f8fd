"""Attempt limits, per client address and per login.

The per-name limit counts every attempt at a login, whether or not an
account has it, so the limit itself never tells an account exists. It keys
on the canonical login (sspm.logins), so ``ｊｓｍｉｔｈ``, ``JSMITH`` and
``jsmith@partners.example`` are one name, and it is ONE bucket for every
form that checks a password or proves who a user is (sign-in, change,
re-confirming the password at enrollment, Forgot Password, Unlock Account):
moving to another form, or to the phone entry, starts no new count. Those
same forms share one per-address bucket too: someone trying one password
on many names gets SSPM_LIMIT_PER_IP tries from an address in all, not that
many on each form.

Reset emails have stricter limits of their own: per address, per canonical
login, and, once the directory has named the account, per account id
(:func:`email_allowed`), so that two logins of one account (its user name
and its address, when they differ) cannot together flood its mailbox.

The counters live in Redis (SSPM_REDIS_URL), shared by every app process, so a
second process cannot be used to reset them; they reach it through the
services' own client (``sspm.infra.redisconn``), so they follow a Sentinel
failover with everything else. They fail closed: while Redis does not
answer (stopped, or a failover under way) a request that must be counted is
not served but answered with the "try again in a minute, nothing was
changed" page (``StateUnavailable``), never let through uncounted.
Per-process counters instead would hand an attacker a fresh bucket in every
process, exactly while Redis is away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.errors import StorageError

from sspm.infra.state import StateUnavailable
from sspm.policy import logins
from sspm.web.auth import current_user
from sspm.web.context import services


class _FailClosed(Limiter):
    """Flask-Limiter, with a counter it cannot reach turned into ``StateUnavailable`` (the 503 page).

    Flask-Limiter re-raises the storage's error as it is (no in-memory
    fallback, nothing swallowed); here, the one place every limited request
    is checked, it becomes the error every page already answers for Redis.
    ``_check_request_limit`` is Flask-Limiter's own (4.x); should it change,
    tests/flows/test_redis_failover.py sees a 500 where it wants the 503.
    """

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        try:
            super()._check_request_limit(callable_name, in_middleware)
        except StorageError as exc:
            raise StateUnavailable(f"limits: {exc.storage_error}") from None


limiter = _FailClosed(key_func=get_remote_address, default_limits=[], headers_enabled=False)

View = Callable[..., Any]

#: The one bucket every password-checking form shares (Flask-Limiter's shared scope).
NAME_SCOPE = "login"
#: The one per-address bucket of the same forms.
ADDRESS_SCOPE = "ip-login"
EMAIL_NAME_SCOPE = "email-login"
#: What each limit counts, in /metrics' words (sspm.infra.metrics.LIMIT_SCOPES), by its scope here.
COUNTED_BY = {
    "ip": "ip",
    "ip-pages": "ip",
    ADDRESS_SCOPE: "ip",
    NAME_SCOPE: "account",
    "email-ip": "email",
    EMAIL_NAME_SCOPE: "email",
}


def counted_by(error: Exception) -> str:
    """What the limit behind a 429 (Flask-Limiter's RateLimitExceeded) counts: ip, account or email."""
    scope = getattr(getattr(error, "limit", None), "scope", None)
    return COUNTED_BY.get(scope, "ip") if isinstance(scope, str) else "ip"


def _per_ip() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_per_ip)


def _per_account() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_per_account)


def name_key(typed: str) -> str:
    """The counter key of a typed login: its canonical form, hashed so Redis never holds a name."""
    return "name:" + logins.digest(typed, current_app.config["SSPM_SETTINGS"].login_mail_domains)[:32]


def _typed_key() -> str:
    return name_key(request.form.get("username", ""))


def _signed_in_key() -> str:
    # Re-confirming the password at enrollment counts against the signed-in
    # user's own name, in the bucket sign-in and change use for it.
    user = current_user(services().state)
    return name_key(user.username) if user else "name:nobody"


def per_ip(view: View) -> View:
    """Limit a view's POSTs per client address."""
    return limiter.limit(_per_ip, methods=["POST"], scope="ip")(view)


def costly(view: View) -> View:
    """Limit every request to a view per client address, GETs too: for a GET that costs CPU (the audio CAPTCHA)."""
    return limiter.limit(_per_ip, scope="ip")(view)


def _page_loads_per_ip() -> str:
    """Twice SSPM_LIMIT_PER_IP: a person's sending of the form is always what a limit stops first."""
    return ";".join(f"{2 * item.amount} per {item.multiples} {item.GRANULARITY.name}" for item in parse_many(_per_ip()))


def page_loads(view: View) -> View:
    """Limit a view's GETs per client address: for a page whose every load keeps something in Redis.

    Opening Forgot Password makes a CAPTCHA that lives ten minutes; without
    this, loading the page in a loop (no cookies, so a new session each
    time) fills Redis. A bucket of its own, twice the size of the POSTs'
    one, so someone who loads the form and sends it is refused on sending
    (where the page says why) before any load is refused.
    """
    return limiter.limit(_page_loads_per_ip, methods=["GET"], scope="ip-pages")(view)


def _per_ip_shared(view: View) -> View:
    # The one bucket per address of every guarded form, as NAME_SCOPE is per name.
    return limiter.shared_limit(_per_ip, scope=ADDRESS_SCOPE, methods=["POST"])(view)


def guarded_as(key_func: Callable[[], str]) -> Callable[[View], View]:
    """Limit a view's POSTs per client address and per login, in the buckets every guarded form shares.

    ``key_func`` gives the :func:`name_key` of the login the form is about,
    for a form that does not ask for it by a ``username`` field.
    """

    def guard(view: View) -> View:
        name = limiter.shared_limit(_per_account, scope=NAME_SCOPE, key_func=key_func, methods=["POST"])
        return name(_per_ip_shared(view))

    return guard


def guarded(view: View) -> View:
    """Limit a view's POSTs per client address and per typed login (both buckets shared by every guarded form)."""
    return guarded_as(_typed_key)(view)


def guarded_signed_in(view: View) -> View:
    """Like :func:`guarded`, for a form of a signed-in user that asks for the password but not the name."""
    return guarded_as(_signed_in_key)(view)


def _email_per_ip() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_email_per_ip)


def _email_per_account() -> str:
    return str(current_app.config["SSPM_SETTINGS"].limit_email_per_account)


def email_guarded(view: View) -> View:
    """Stricter limits for asking for an email, so SSPM cannot flood a mailbox."""
    view = limiter.limit(_email_per_ip, methods=["POST"], scope="email-ip")(view)
    return limiter.shared_limit(_email_per_account, scope=EMAIL_NAME_SCOPE, key_func=_typed_key, methods=["POST"])(view)


def email_allowed(account_id: str | None, typed: str) -> bool:
    """Count one reset email for an account (by id), or for an unknown login
    (by its canonical form); False once over SSPM_LIMIT_EMAIL_PER_ACCOUNT.

    Called for every request, known or not, so both cost the same counting.
    The caller queues nothing past the limit but answers as usual: refusing
    here would tell that this login and another are one account.
    """
    key = f"account:{account_id}" if account_id else name_key(typed)
    try:
        counted = [limiter.limiter.hit(item, "email-to", key) for item in parse_many(_email_per_account())]
    except StorageError as exc:  # fail closed: nothing is queued, the user is asked to try again
        raise StateUnavailable(f"limits: {exc.storage_error}") from None
    return all(counted)


def init_app(app: Flask) -> None:
    with app.app_context():
        pool = services().state.redis.connection_pool
    # The services' client: one pool, one way to reach Redis (plain or Sentinel). The URI
    # only picks limits' Redis storage; the pool says where Redis is.
    app.config.setdefault("RATELIMIT_STORAGE_URI", "redis://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {"connection_pool": pool, "wrap_exceptions": True},
    )
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "sspm-limits")
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = False
    app.config["RATELIMIT_SWALLOW_ERRORS"] = False
    limiter.init_app(app)
