"""HTTP hardening every response gets.

Written by hand rather than with Flask-Talisman: it is a dozen headers that
never vary by page, and keeping them here makes the policy readable in one
screen (and testable as one list).
"""

from __future__ import annotations

from flask import Flask, Response, abort, current_app, request

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: CSRF protection over HTTPS checks the Referer.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def _harden(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if current_app.config["SSPM_SETTINGS"].https:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    # Pages carry CSRF tokens and sometimes account names: never cache them.
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def _forms_only() -> None:
    """Refuse a JSON body or an uploaded file (415): every form here is an HTML form of text fields.

    Flask-WTF reads a JSON body as the form when there is no form body, and
    a file before a field of the same name, but nothing else does: the
    limits count the name a form body carries (a JSON one was counted
    against no one's), and the fields expect strings (a number, a list or a
    file there was a crash).
    """
    if request.method not in ("GET", "HEAD", "OPTIONS") and (request.is_json or request.files):
        abort(415)


def init_app(app: Flask) -> None:
    app.before_request(_forms_only)
    app.after_request(_harden)
