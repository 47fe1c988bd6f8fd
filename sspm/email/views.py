"""HTTP for Forgot Password by email: ask for a link, open it, set a password."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import get_locale
from werkzeug.wrappers import Response

from sspm import services
from sspm.change.views import current_rules
from sspm.email import service
from sspm.email.forms import RequestLinkForm
from sspm.limits import email_guarded, per_ip
from sspm.pages import explain, status_for
from sspm.recovery.forms import NewPasswordForm
from sspm.web import client_ip, link, page

bp = Blueprint("email", __name__)

#: The link's token moves from the URL into the session at once, so it is
#: not left in the address bar, the history or a Referer.
_TOKEN = "reset_token"  # noqa: S105 - a session key, not a secret


@page(bp, "/forgot/email", methods=["GET", "POST"])
@email_guarded
def request_link(mobile: bool) -> tuple[str, int]:
    the = services()
    form = RequestLinkForm()
    reason = None
    sent = False
    if form.validate_on_submit():
        reason = service.request_link(
            the.directory,
            the.store,
            the.outbox,
            typed=form.username.data or "",
            language=str(get_locale()),
            source_ip=client_ip(),
        )
        sent = reason is None
    page_html = render_template("email/request.html", form=form, sent=sent, message=explain(form, reason))
    return page_html, status_for(form, reason)


@page(bp, "/reset", methods=["GET", "POST"])
@per_ip
def reset(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    if request.method == "GET" and "token" in request.args:
        session[_TOKEN] = request.args["token"][:128]
        return redirect(link("email.reset"), code=303)
    token = session.get(_TOKEN)
    if not isinstance(token, str) or service.account_for(the.directory, the.store, token) is None:
        return render_template("email/link_gone.html"), 410
    form = NewPasswordForm()
    rules = current_rules()
    reason = None if rules else "unavailable"
    if rules and form.validate_on_submit():
        result = service.reset_with_link(
            the.directory,
            the.store,
            the.outbox,
            rules,
            token=token,
            new=form.new.data or "",
            confirm=form.confirm.data or "",
            language=str(get_locale()),
            source_ip=client_ip(),
        )
        if result.reason is None:
            session.pop(_TOKEN, None)
            session["recovery_done"] = "forgot"
            return redirect(link("recovery.done"), code=303)
        if result.reason == "link_gone":
            return render_template("email/link_gone.html"), 410
        reason = result.reason
    message = explain(form, reason, min_length=rules.min_length if rules else 8)
    page_html = render_template(
        "new_password.html", form=form, rules=rules, message=message, action=link("email.reset")
    )
    return page_html, status_for(form, reason)
