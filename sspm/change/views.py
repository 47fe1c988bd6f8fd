"""HTTP for Change Password: parse, call the service, render."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response

from sspm.account.enrollment import enrolled_questions
from sspm.change.service import change_password
from sspm.infra.state import StateUnavailable
from sspm.policy.passwords import user_inputs
from sspm.policy.reasons import Reason
from sspm.web.acting import acting
from sspm.web.auth import current_user, sign_in
from sspm.web.context import services
from sspm.web.forms import ChangePasswordForm
from sspm.web.limits import guarded
from sspm.web.messages import reason_text
from sspm.web.pages import explain, status_for
from sspm.web.routing import link, page
from sspm.web.rules import current_rules

log = logging.getLogger(__name__)

bp = Blueprint("change", __name__)

_DONE_KEY = "changed_for"
#: Why the sign-in page sent the user here; said once above the form.
_ARRIVED_BECAUSE = (Reason.EXPIRED, Reason.MUST_CHANGE)


@page(bp, "/change", methods=["GET", "POST"])
@guarded
def form(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    form = ChangePasswordForm()
    rules = current_rules()
    reason: Reason | None = None if rules else Reason.UNAVAILABLE
    notice = None
    #: The meter learns the account's names only once its password was proven here.
    names: list[str] | None = None
    if not form.is_submitted():
        form.username.data = request.args.get("username", "")[:256] or _signed_in_username()
        arrived = request.args.get("reason")
        notice = reason_text(Reason(arrived)) if arrived in _ARRIVED_BECAUSE else None
    if rules and form.validate_on_submit():
        result = change_password(
            the.directory,
            the.store,
            rules,
            state=the.state,
            username=form.username.data or "",
            old=form.current.data or "",
            new=form.new.data or "",
            confirm=form.confirm.data or "",
            actor=acting(),
            outbox=the.outbox,
        )
        if result.ok and result.account:
            # The old password was just proven and a new one set: sign the
            # user in, so that enrolling security questions is one click away.
            # The directory has confirmed: with Redis away the user is still
            # told it is done, only not signed in.
            try:
                sign_in(the.state, result.account)
            except StateUnavailable as exc:
                log.warning("changed, but not signed in: Redis unavailable: %s", exc)
            session[_DONE_KEY] = result.account.display_name
            return redirect(link("change.done"), code=303)
        reason = result.reason
        names = user_inputs(result.account) if result.account else None
    min_length = rules.min_length if rules else 8
    message = explain(form, reason, min_length=min_length)
    page_html = render_template(
        "change/form.html", form=form, rules=rules, reason=reason, message=message, notice=notice, names=names
    )
    return page_html, status_for(form, reason)


def _signed_in_username() -> str:
    """A signed-in user (told at sign-in that the password expires soon) need not type it again."""
    try:
        user = current_user(services().state)
    except StateUnavailable:  # the form must still work while Redis is away
        return ""
    return user.username if user else ""


@page(bp, "/change/done")
def done(mobile: bool) -> str | Response:
    """Shown once, after the directory confirmed; a reload goes back to the form."""
    the = services()
    name = session.pop(_DONE_KEY, None)
    if name is None:
        return redirect(link("change.form"))
    try:
        user = current_user(the.state)
    except StateUnavailable:  # the change is done whatever Redis says
        user = None
    enrolled = bool(user and enrolled_questions(the.store, user.account_id))
    return render_template("change/done.html", name=name, enrolled=enrolled)
