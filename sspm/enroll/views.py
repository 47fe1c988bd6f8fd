"""HTTP for enrolling and reviewing security questions."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from sspm.account.enrollment import enrolled_questions
from sspm.enroll.forms import enroll_form
from sspm.enroll.service import Pick, enroll
from sspm.policy.realm import Realm
from sspm.policy.reasons import Reason
from sspm.web.acting import acting
from sspm.web.auth import current_user, requires
from sspm.web.context import services
from sspm.web.limits import guarded_signed_in
from sspm.web.pages import explain, status_for
from sspm.web.routing import link, page

bp = Blueprint("enroll", __name__)

_SAVED = _l("Your security questions are saved. You can now reset your password or unlock your account on your own.")


@page(bp, "/enroll")
@requires(Realm.USER)
def index(mobile: bool) -> str:
    the = services()
    user = current_user(the.state)
    assert user is not None
    language = str(get_locale())
    questions = [
        the.catalogue.by_id[q].in_language(language) if q in the.catalogue.by_id else q
        for q in enrolled_questions(the.store, user.account_id)
    ]
    return render_template("enroll/index.html", user=user, questions=questions)


@page(bp, "/enroll/edit", methods=["GET", "POST"])
@requires(Realm.USER)
# The password is re-confirmed here: per address, and per user in the one
# per-name bucket sign-in and change count in (the form has no name field:
# the signed-in user's own name is counted).
@guarded_signed_in
def edit(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    settings = the.settings
    user = current_user(the.state)
    assert user is not None
    language = str(get_locale())
    offered = the.catalogue.offered(settings.questions_offered)
    form = enroll_form([(q.id, q.in_language(language)) for q in offered], settings.questions_answered)
    reason = None
    if form.validate_on_submit():
        picks = [Pick(str(question.data), str(answer.data)) for question, answer in form.pairs()]
        reason = enroll(
            the.directory,
            the.store,
            the.hasher,
            account_id=user.account_id,
            password=form.password.data or "",
            picks=picks,
            offered={q.id for q in offered},
            min_length=settings.min_answer_length,
            actor=acting(),
            outbox=the.outbox,
        )
        if reason is None:
            flash(str(_SAVED))
            return redirect(link("enroll.index"), code=303)
        if reason == Reason.ANSWER_CONTAINS_PASSWORD:
            # Never send a password back into a page, even inside an answer.
            for _, answer in form.pairs():
                answer.data = ""
    message = explain(form, reason, min_length=settings.min_answer_length)
    return render_template("enroll/edit.html", form=form, message=message, user=user), status_for(form, reason)
