"""HTTP for the helpdesk: thin; every decision is sspm.helpdesk.service's, made again on every request.

Pages live under ``/staff/helpdesk`` (the staff cookie's path). Each view
first asks ``staff_member()`` (signed in with both factors, staff now),
then hands the use case the request's Actor. An account outside the
agent's reach, their own, one whose holder outranks them, and one that
does not exist all get the same 404 page with the same sentence.
Resetting a password and clearing security questions also ask for the
agent's password and code again when the last time was too long ago.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from sspm.helpdesk import service
from sspm.helpdesk.forms import (
    ActionForm,
    AskQuestionsForm,
    CodeForm,
    SearchForm,
    SendCodeForm,
    answers_form,
)
from sspm.helpdesk.service import ActionName, ActionResult
from sspm.policy.reasons import UNAVAILABLE, Reason
from sspm.web.acting import acting
from sspm.web.auth import requires_recent_auth
from sspm.web.context import services
from sspm.web.messages import reason_text
from sspm.web.pages import explain
from sspm.web.staff import staff_member

bp = Blueprint("helpdesk", __name__, url_prefix="/staff/helpdesk")

Page = tuple[str, int] | Response

#: How each row of SSPM's own trail reads on the account page; others show their stored name.
EVENTS: dict[str, LazyString] = {
    "sign_in": _l("Sign-in on this site"),
    "change": _l("Password change"),
    "enroll": _l("Security questions set up"),
    "re-enroll": _l("Security questions changed"),
    "forgot_start": _l("Forgot password started"),
    "forgot_answers": _l("Security answers (forgot password)"),
    "forgot_reset": _l("Password reset with security questions"),
    "unlock_start": _l("Unlock started"),
    "unlock_answers": _l("Security answers (unlock)"),
    "unlock": _l("Unlocked with security questions"),
    "reset_email_request": _l("Reset link asked for"),
    "reset_by_email": _l("Password reset with an emailed link"),
    "helpdesk_view": _l("Opened by the helpdesk"),
    "helpdesk_verify": _l("Caller verification by the helpdesk"),
    "helpdesk_unlock": _l("Unlocked by the helpdesk"),
    "helpdesk_reset": _l("Password reset by the helpdesk"),
    "helpdesk_clear_enrollment": _l("Security questions cleared by the helpdesk"),
    "sessions_ended": _l("Signed-in sessions ended"),
}
METHODS: dict[str, LazyString] = {
    "email-code": _l("a code sent by email"),
    "questions": _l("security questions"),
}


def _not_here(reason: Reason) -> tuple[str, int]:
    """The one answer for an account the agent may not help with, whatever the cause; or the directory away."""
    if reason in UNAVAILABLE:
        return render_template("helpdesk/problem.html", message=reason_text(reason)), 503
    return render_template("helpdesk/not_found.html", message=reason_text(Reason.NO_SUCH_ACCOUNT)), 404


def _refuse_without_helpdesk() -> tuple[str, int] | None:
    """A staff member whose roles include no helpdesk anywhere is told so, and what to do."""
    staff_member()
    if service.may_use(services(), acting()):
        return None
    return render_template("helpdesk/no_role.html"), 403


@bp.get("")
def search() -> Page:
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    form = SearchForm(request.args)
    results = None
    page = request.args.get("page")
    if page or (request.args.get("q") and form.validate()):
        results = service.search(services(), acting(), form.q.data or "", page)
    message = reason_text(results.reason) if results and results.reason else None
    status = 503 if results and results.reason in UNAVAILABLE else 200
    return render_template("helpdesk/search.html", form=form, results=results, message=message), status


def _question_texts(ids: list[str]) -> list[str]:
    catalogue = services().catalogue
    language = str(get_locale())
    return [catalogue.by_id[q].in_language(language) if q in catalogue.by_id else q for q in ids]


def _account_page(
    account_id: str,
    *,
    reason: Reason | None = None,
    failed: FlaskForm | None = None,
    result: ActionResult | None = None,
) -> Page:
    """The account page as it stands now, with what just happened (or why not) said at the top or at its field."""
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    the = services()
    view = service.see(the, acting(), account_id)
    if isinstance(view, Reason):
        # Re-read after an action the directory froze on, the page fails too; its "nothing was changed"
        # must not hide the action's own word ("unconfirmed": it may be done).
        return _not_here(reason if reason is not None and view in UNAVAILABLE and reason in UNAVAILABLE else view)
    asked = list(view.questions)
    answers = failed if failed is not None and hasattr(failed, "answers") else answers_form(_question_texts(asked))
    forms: dict[str, Any] = {
        "send": SendCodeForm(),
        "code": failed if isinstance(failed, CodeForm) else CodeForm(formdata=None),
        "ask": AskQuestionsForm(),
        "answers": answers,
    }
    summary_form = failed if failed is not None else SendCodeForm(formdata=None)
    message = explain(summary_form, reason) if reason is not None else None
    page = render_template(
        "helpdesk/account.html",
        view=view,
        forms=forms,
        summary_form=summary_form,
        message=message,
        result=result,
        events=EVENTS,
        methods=METHODS,
    )
    if reason is not None:
        return page, 503 if reason in UNAVAILABLE else 422
    return page, 200


@bp.get("/account/<account_id>")
def account(account_id: str) -> Page:
    return _account_page(account_id)


def _after_verifying(account_id: str, reason: Reason | None, form: FlaskForm) -> Page:
    if reason is Reason.NO_SUCH_ACCOUNT:
        return _not_here(reason)
    if reason is None:
        return redirect(url_for("helpdesk.account", account_id=account_id), code=303)
    return _account_page(account_id, reason=reason, failed=form)


@bp.post("/account/<account_id>/code/send")
def send_code(account_id: str) -> Page:
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    form = SendCodeForm()
    if not form.validate_on_submit():
        return _account_page(account_id, failed=form)
    return _after_verifying(account_id, service.send_code(services(), acting(), account_id), form)


@bp.post("/account/<account_id>/code")
def check_code(account_id: str) -> Page:
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    form = CodeForm()
    if not form.validate_on_submit():
        return _account_page(account_id, failed=form)
    reason = service.check_code(services(), acting(), account_id, form.code.data or "")
    return _after_verifying(account_id, reason, form)


@bp.post("/account/<account_id>/questions/ask")
def ask_questions(account_id: str) -> Page:
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    form = AskQuestionsForm()
    if not form.validate_on_submit():
        return _account_page(account_id, failed=form)
    return _after_verifying(account_id, service.ask_questions(services(), acting(), account_id), form)


@bp.post("/account/<account_id>/questions")
def check_answers(account_id: str) -> Page:
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    the = services()
    form = answers_form(_question_texts(service.asked_questions(the, acting(), account_id)))
    if not form.validate_on_submit():
        return _account_page(account_id, failed=form)
    given = [field.data or "" for field in form.answers()]
    return _after_verifying(account_id, service.check_answers(the, acting(), account_id, given), form)


def _act(account_id: str, name: ActionName) -> Page:
    refused = _refuse_without_helpdesk()
    if refused:
        return refused
    form = ActionForm()
    if not form.validate_on_submit():
        return _account_page(account_id, failed=form)
    result = _USE_CASES[name](services(), acting(), account_id, form.action.data or "")
    if result.reason is Reason.NO_SUCH_ACCOUNT:
        return _not_here(result.reason)
    if result.reason is not None:
        return _account_page(account_id, reason=result.reason, failed=form)
    return _account_page(account_id, result=result)


_USE_CASES = {
    ActionName.UNLOCK: service.unlock,
    ActionName.RESET: service.reset,
    ActionName.CLEAR_ENROLLMENT: service.clear,
}


@bp.post("/account/<account_id>/unlock")
def unlock(account_id: str) -> Page:
    return _act(account_id, ActionName.UNLOCK)


@bp.post("/account/<account_id>/reset")
@requires_recent_auth()
def reset(account_id: str) -> Page:
    return _act(account_id, ActionName.RESET)


@bp.post("/account/<account_id>/clear-enrollment")
@requires_recent_auth()
def clear_enrollment(account_id: str) -> Page:
    return _act(account_id, ActionName.CLEAR_ENROLLMENT)
