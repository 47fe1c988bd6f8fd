"""HTTP for a new user's set-up link: open it, choose a first password, "your account is ready"."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response

from sspm.infra.state import StateUnavailable
from sspm.policy.passwords import user_inputs
from sspm.policy.reasons import Reason
from sspm.setup import service
from sspm.web.acting import acting
from sspm.web.auth import sign_in
from sspm.web.context import services
from sspm.web.forms import NewPasswordForm
from sspm.web.limits import per_ip
from sspm.web.pages import explain, status_for
from sspm.web.routing import link, page
from sspm.web.rules import current_rules

log = logging.getLogger(__name__)

bp = Blueprint("setup", __name__)

#: The link's token leaves the URL at once (address bar, history, Referer):
#: the session keeps only a random handle for it (service.open_link).
_OPENED = "setup_link"
#: What the "ready" page says, handed over once.
_DONE = "setup_done"


@page(bp, "/setup", methods=["GET", "POST"])
@per_ip
def form(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    skew = timedelta(seconds=the.settings.clock_skew_seconds)
    if request.method == "GET" and "token" in request.args:
        token = request.args["token"][:128]
        opened = service.open_link(the.directory, the.store, the.state, token, actor=acting(), clock_skew=skew)
        if opened is None:
            session.pop(_OPENED, None)
        else:
            session[_OPENED] = opened
        return redirect(link("setup.form"), code=303)
    handle = session.get(_OPENED)
    account = None
    if isinstance(handle, str):
        account = service.account_for(the.directory, the.store, handle, state=the.state, clock_skew=skew)
    if not isinstance(handle, str) or account is None:
        return _gone()
    form = NewPasswordForm()
    rules = current_rules()
    reason = None if rules else Reason.UNAVAILABLE
    if rules and form.validate_on_submit():
        result = service.set_up(
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
        if result.reason is None and result.account is not None:
            # The link proved who this is and the password is theirs now: sign
            # them in (as Change Password does), so that security questions are
            # one click away. With Redis away they are still told it is done.
            try:
                sign_in(the.state, result.account)
            except StateUnavailable as exc:
                log.warning("set up, but not signed in: Redis unavailable: %s", exc)
            session.pop(_OPENED, None)
            session[_DONE] = {"name": result.account.display_name, "username": result.account.username}
            return redirect(link("setup.done"), code=303)
        if result.reason == Reason.LINK_GONE:
            return _gone()
        reason = result.reason
    message = explain(form, reason, min_length=rules.min_length if rules else 8)
    page_html = render_template(
        "setup/form.html", form=form, rules=rules, message=message, account=account, names=user_inputs(account)
    )
    return page_html, status_for(form, reason)


def _gone() -> tuple[str, int]:
    """Used, expired, replaced by a newer one, or never was: one page, which says who sends a new one."""
    session.pop(_OPENED, None)
    return render_template("setup/gone.html"), 410


@page(bp, "/setup/done")
def done(mobile: bool) -> str | Response:
    """Shown once, after the directory confirmed; a reload goes home."""
    ready = session.pop(_DONE, None)
    if not isinstance(ready, dict):
        return redirect(link("home.index"))
    next_url = services().settings.setup_next_url or link("home.index")
    return render_template(
        "setup/done.html", name=ready.get("name", ""), username=ready.get("username", ""), next_url=next_url
    )
