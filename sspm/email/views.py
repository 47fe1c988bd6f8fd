"""HTTP for Forgot Password by email: ask for a link, open it, set a password."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response

from sspm.email import service
from sspm.email.forms import RequestLinkForm
from sspm.policy.passwords import user_inputs
from sspm.policy.reasons import Reason
from sspm.web.acting import acting
from sspm.web.context import services
from sspm.web.forms import NewPasswordForm
from sspm.web.handoff import show_done
from sspm.web.limits import email_allowed, email_guarded, per_ip
from sspm.web.pages import explain, status_for
from sspm.web.routing import link, page
from sspm.web.rules import current_rules

bp = Blueprint("email", __name__)

#: The link's token leaves the URL at once, so it is not left in the address
#: bar, the history or a Referer; the session keeps only a random handle for
#: it (the cookie is signed, not encrypted), see service.open_link.
_OPENED = "reset_link"


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
            actor=acting(),
            may_email=email_allowed,
        )
        sent = reason is None
    page_html = render_template("email/request.html", form=form, sent=sent, message=explain(form, reason))
    return page_html, status_for(form, reason)


@page(bp, "/reset", methods=["GET", "POST"])
@per_ip
def reset(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    skew = timedelta(seconds=the.settings.clock_skew_seconds)
    if request.method == "GET" and "token" in request.args:
        opened = service.open_link(the.store, the.state, request.args["token"][:128])
        if opened is None:
            session.pop(_OPENED, None)
        else:
            session[_OPENED] = opened
        return redirect(link("email.reset"), code=303)
    handle = session.get(_OPENED)
    if isinstance(handle, str):
        account = service.account_for(the.directory, the.store, handle, state=the.state, clock_skew=skew)
    else:
        account = None
    if not isinstance(handle, str) or account is None:
        session.pop(_OPENED, None)
        return render_template("email/link_gone.html"), 410
    form = NewPasswordForm()
    rules = current_rules()
    reason = None if rules else Reason.UNAVAILABLE
    if rules and form.validate_on_submit():
        result = service.reset_with_link(
            the.directory,
            the.store,
            the.outbox,
            rules,
            state=the.state,
            handle=handle,
            new=form.new.data or "",
            confirm=form.confirm.data or "",
            actor=acting(),
            clock_skew=skew,
        )
        if result.reason is None:
            session.pop(_OPENED, None)
            return show_done("forgot")
        if result.reason == Reason.LINK_GONE:
            session.pop(_OPENED, None)
            return render_template("email/link_gone.html"), 410
        reason = result.reason
    message = explain(form, reason, min_length=rules.min_length if rules else 8)
    page_html = render_template(
        "new_password.html",
        form=form,
        rules=rules,
        message=message,
        action=link("email.reset"),
        names=user_inputs(account),
    )
    return page_html, status_for(form, reason)
