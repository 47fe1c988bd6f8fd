"""HTTP for Change Password: parse, call the service, render."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, session
from werkzeug.wrappers import Response

from connectors.directory import DirectoryError
from sspm import directory
from sspm.change.forms import ChangePasswordForm
from sspm.change.service import change_password
from sspm.limits import guarded
from sspm.messages import reason_text
from sspm.passwords import Rules
from sspm.web import link, page

bp = Blueprint("change", __name__)

_DONE_KEY = "changed_for"


def current_rules() -> Rules | None:
    """The rules to show and enforce; None when the directory is unreachable."""
    settings = current_app.config["SSPM_SETTINGS"]
    try:
        return Rules.from_policy(directory().policy(), settings.min_strength)
    except DirectoryError:
        return None


@page(bp, "/change", methods=["GET", "POST"])
@guarded
def form(mobile: bool) -> tuple[str, int] | Response:
    settings = current_app.config["SSPM_SETTINGS"]
    form = ChangePasswordForm()
    rules = current_rules()
    reason: str | None = None if rules else "unavailable"
    if rules and form.validate_on_submit():
        result = change_password(
            directory(),
            rules,
            username=form.username.data or "",
            old=form.current.data or "",
            new=form.new.data or "",
            confirm=form.confirm.data or "",
        )
        if result.ok and result.account:
            session[_DONE_KEY] = result.account.display_name
            return redirect(link("change.done"), code=303)
        reason = result.reason
    message = (
        reason_text(reason, lra=settings.lra_contact, min_length=rules.min_length if rules else 8) if reason else None
    )
    page_html = render_template(
        "change/form.html",
        form=form,
        rules=rules,
        reason=reason,
        message=message,
    )
    return page_html, status_for(form.is_submitted(), reason, bool(form.errors))


def status_for(submitted: bool, reason: str | None, field_errors: bool) -> int:
    """200 for a fresh form; 503 when the directory is away; 422 for any refusal."""
    if reason == "unavailable":
        return 503
    if submitted and (reason or field_errors):
        return 422
    return 200


@page(bp, "/change/done")
def done(mobile: bool) -> str | Response:
    """Shown once, after the directory confirmed; a reload goes back to the form."""
    name = session.pop(_DONE_KEY, None)
    if name is None:
        return redirect(link("change.form"))
    return render_template("change/done.html", name=name)
