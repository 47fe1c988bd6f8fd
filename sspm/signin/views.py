"""HTTP for signing in and out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from sspm.policy.reasons import Reason
from sspm.signin.forms import SignInForm
from sspm.signin.service import sign_in as check_credentials
from sspm.web.acting import acting
from sspm.web.auth import sign_in, sign_out
from sspm.web.context import services
from sspm.web.limits import guarded
from sspm.web.pages import explain, status_for
from sspm.web.routing import link, page

bp = Blueprint("signin", __name__)

#: Where a sign-in may send the user afterwards: endpoints, never URLs.
_NEXT = {"enroll.index", "enroll.edit", "profile.index"}


@page(bp, "/signin", methods=["GET", "POST"])
@guarded
def form(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    form = SignInForm(next=request.args.get("next", ""))
    reason = None
    if form.validate_on_submit():
        result = check_credentials(
            the.directory, the.store, form.username.data or "", form.password.data or "", actor=acting()
        )
        if result.reason in (Reason.EXPIRED, Reason.MUST_CHANGE) and result.account:
            # Proven but unusable: the only thing to do is change it.
            return redirect(link("change.form", reason=result.reason, username=result.account.username), code=303)
        if result.reason is None and result.account:
            sign_in(the.state, result.account)
            if result.expires_in_days is not None:
                # Said on the next page, with a link to change it (templates/base.html).
                flash(str(result.expires_in_days), "password_expires")
            target = form.next.data if form.next.data in _NEXT else "enroll.index"
            return redirect(link(target), code=303)
        reason = result.reason
    page_html = render_template("signin/form.html", form=form, reason=reason, message=explain(form, reason))
    return page_html, status_for(form, reason)


@page(bp, "/signout", methods=["POST"])
def signout(mobile: bool) -> Response:
    sign_out(services().state)
    # After the session is cleared, so that it is the one thing the new session holds.
    flash(_("You are signed out. On a shared computer, close the browser when you are done."), "signed_out")
    return redirect(link("home.index"), code=303)
