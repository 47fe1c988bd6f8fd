"""HTTP for Forgot Password and Unlock Account: start, challenge, finish."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, make_response, redirect, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from sspm.account import audit
from sspm.infra import metrics
from sspm.policy.passwords import user_inputs
from sspm.policy.reasons import UNAVAILABLE, Reason
from sspm.recovery import captcha, service
from sspm.recovery.forms import ChallengeForm, StartForm, challenge_form
from sspm.recovery.service import RecoveryPolicy
from sspm.web.acting import acting
from sspm.web.context import services
from sspm.web.forms import NewPasswordForm
from sspm.web.handoff import show_done, take_done
from sspm.web.limits import costly, guarded, page_loads, per_ip
from sspm.web.messages import reason_text
from sspm.web.pages import explain, focus, status_for
from sspm.web.routing import link, page
from sspm.web.rules import current_rules

bp = Blueprint("recovery", __name__)

_CHALLENGE, _PASS = "challenge", "recovery_pass"
#: The lockout an unlock just cleared, for the done page to show once (see service.Insight).
_INSIGHT = "recovery_insight"


def recovery_policy() -> RecoveryPolicy:
    settings = services().settings
    return RecoveryPolicy(
        answered=settings.questions_answered,
        asked=settings.questions_asked,
        seconds=settings.challenge_seconds,
        max_failures=settings.recovery_max_failures,
        window_seconds=settings.recovery_window_minutes * 60,
        decoy_secret=current_app.secret_key.encode() if isinstance(current_app.secret_key, str) else b"",
        offered=settings.questions_offered,
        mail_domains=settings.login_mail_domains,
    )


def _message(reason: Reason | None) -> str | None:
    return reason_text(reason) if reason else None


def _wants_new_image() -> bool:
    return request.method == "POST" and request.form.get("action") == "new-image"


@page(bp, "/forgot", methods=["GET", "POST"])
@guarded
@page_loads
def forgot(mobile: bool) -> tuple[str, int] | Response:
    return _start("forgot")


@page(bp, "/unlock", methods=["GET", "POST"])
@guarded
@page_loads
def unlock(mobile: bool) -> tuple[str, int] | Response:
    return _start("unlock")


def _start(purpose: str) -> tuple[str, int] | Response:
    the = services()
    form = StartForm()
    reason = None
    if not _wants_new_image() and form.validate_on_submit():
        if not captcha.passes(the.state, form.captcha.data or ""):
            reason = Reason.CAPTCHA_WRONG
            audit.record(
                the.store, audit.Action.recovery_start(purpose), reason, actor=acting(), typed=form.username.data
            )
        else:
            challenge = service.start(
                the.directory,
                the.store,
                the.state,
                the.catalogue,
                recovery_policy(),
                purpose=purpose,
                typed=form.username.data or "",
                actor=acting(),
            )
            if isinstance(challenge, Reason):
                reason = challenge
            else:
                previous = session.get(_CHALLENGE)
                if isinstance(previous, str):
                    service.abandon(the.state, previous)  # one challenge per browser
                session[_CHALLENGE] = challenge.id
                return redirect(link("recovery.challenge"), code=303)
    captcha.issue(the.state)
    form.captcha.data = ""
    message = explain(form, reason)
    _keep_on_captcha(form)
    page_html = render_template("recovery/start.html", form=form, purpose=purpose, message=message)
    return page_html, status_for(form, reason)


@page(bp, "/recovery/challenge", methods=["GET", "POST"])
@per_ip
def challenge(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    challenge_id = session.get(_CHALLENGE)
    current = service.load(the.state, challenge_id) if isinstance(challenge_id, str) else None
    if current is None:
        return _gone(Reason.CHALLENGE_GONE)
    language = str(get_locale())
    texts = [the.catalogue.by_id[q].in_language(language) for q in current.questions]
    form = challenge_form(texts)
    if current.remaining() == 0:
        return _time_is_up(current, [str(field.data or "") for field in form.answers()])
    reason = None
    if not _wants_new_image() and form.validate_on_submit():
        actor = acting()
        if not captcha.passes(the.state, form.captcha.data or ""):
            reason = Reason.CAPTCHA_WRONG
            audit.record(
                the.store,
                audit.Action.recovery_answers(current.purpose),
                reason,
                actor=actor,
                typed=current.username,
            )
        else:
            session.pop(_CHALLENGE, None)
            verdict = service.answer(
                the.store,
                the.state,
                the.hasher,
                recovery_policy(),
                challenge_id=current.id,
                answers=[str(field.data or "") for field in form.answers()],
                actor=actor,
            )
            if verdict.pass_id is None:
                return _gone(verdict.reason or Reason.ANSWERS_REFUSED, purpose=current.purpose, status=422)
            if current.purpose == "unlock":
                failed = service.unlock(
                    the.directory,
                    the.store,
                    the.state,
                    pass_id=verdict.pass_id,
                    actor=actor,
                    outbox=the.outbox,
                )
                if isinstance(failed, Reason):
                    return _gone(failed, purpose=current.purpose, status=503 if failed in UNAVAILABLE else 422)
                if failed is not None and failed.anything:
                    session[_INSIGHT] = _kept(failed)
                return show_done("unlock")
            session[_PASS] = verdict.pass_id
            return redirect(link("recovery.new_password"), code=303)
    captcha.issue(the.state)
    form.captcha.data = ""
    message = explain(form, reason)
    _keep_on_captcha(form)
    page_html = render_template(
        "recovery/challenge.html",
        form=form,
        challenge=current,
        remaining=current.remaining(),
        message=message,
    )
    return page_html, status_for(form, reason)


def _keep_on_captcha(form: StartForm | ChallengeForm) -> None:
    """After "Show a new image" the keyboard stays by the CAPTCHA, not back at the top of the page."""
    if _wants_new_image():
        focus(form.captcha)


def _time_is_up(current: service.Challenge, answers: list[str]) -> tuple[str, int]:
    """Past the deadline nothing on the challenge page can succeed: say so, with a real "Start again" link.

    The page's script says it too, but only this works without JavaScript
    (or after a reload). Answers sent late are still judged by the service,
    so they are refused, counted and audited like any other late answer.
    """
    the = services()
    session.pop(_CHALLENGE, None)
    if request.method == "POST" and not _wants_new_image():
        verdict = service.answer(
            the.store,
            the.state,
            the.hasher,
            recovery_policy(),
            challenge_id=current.id,
            answers=answers,
            actor=acting(),
        )
        return _gone(verdict.reason or Reason.TOO_LATE, purpose=current.purpose, status=422)
    service.abandon(the.state, current.id)
    return _gone(Reason.TOO_LATE, purpose=current.purpose)


@page(bp, "/recovery/new-password", methods=["GET", "POST"])
@per_ip
def new_password(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    pass_id = session.get(_PASS)
    if not isinstance(pass_id, str) or not service.passed(the.state, pass_id, "forgot"):
        return _gone(Reason.CHALLENGE_GONE)
    form = NewPasswordForm()
    rules = current_rules()
    reason = None if rules else Reason.UNAVAILABLE
    if rules and form.validate_on_submit():
        reason = service.reset(
            the.directory,
            the.store,
            the.state,
            rules,
            pass_id=pass_id,
            new=form.new.data or "",
            confirm=form.confirm.data or "",
            actor=acting(),
            outbox=the.outbox,
        )
        if reason is None:
            session.pop(_PASS, None)
            return show_done("forgot")
    min_length = rules.min_length if rules else 8
    message = explain(form, reason, min_length=min_length)
    account = service.passed_account(the.directory, the.state, pass_id)
    page_html = render_template(
        "new_password.html",
        form=form,
        rules=rules,
        message=message,
        action=link("recovery.new_password"),
        names=user_inputs(account) if account else None,
        # Proven by the answers: the owner may see how the account was failed.
        insight=service.insight_of(the.directory, account) if account else None,
    )
    return page_html, status_for(form, reason)


@page(bp, "/recovery/done")
def done(mobile: bool) -> str | Response:
    purpose = take_done()
    if purpose is None:
        return redirect(link("home.index"))
    insight = _restored(session.pop(_INSIGHT, None)) if purpose == "unlock" else None
    return render_template("recovery/done.html", purpose=purpose, insight=insight)


def _kept(insight: service.Insight) -> dict[str, object]:
    """The insight in the signed session cookie (times, a count: nothing secret, and only the owner's)."""
    return {
        "locked": insight.locked,
        "locked_since": insight.locked_since.isoformat() if insight.locked_since else None,
        "failures": insight.failures,
        "failure_times": [moment.isoformat() for moment in insight.failure_times[-10:]],
    }


def _restored(kept: object) -> service.Insight | None:
    if not isinstance(kept, dict):
        return None
    since = kept.get("locked_since")
    return service.Insight(
        locked=bool(kept.get("locked")),
        locked_since=datetime.fromisoformat(since) if isinstance(since, str) else None,
        failures=int(kept.get("failures") or 0),
        failure_times=tuple(datetime.fromisoformat(t) for t in kept.get("failure_times") or () if isinstance(t, str)),
    )


def _gone(reason: Reason, *, purpose: str = "forgot", status: int = 410) -> tuple[str, int]:
    """Where a recovery ends without success, whatever the reason: counted for /metrics by purpose and reason."""
    metrics.recovery_failed(purpose, reason)
    return render_template("recovery/gone.html", message=_message(reason), purpose=purpose), status


@bp.route("/captcha/image.png")
def captcha_image() -> Response:
    return _media(captcha.image(services().state), "image/png")


@bp.route("/captcha/audio.wav")
@costly
def captcha_audio() -> Response | tuple[str, int, dict[str, str]]:
    try:
        clip = captcha.audio(services().state, str(get_locale()))
    except captcha.AudioBusy:
        # Said rather than queued: a request waiting its turn would hold a thread pages need.
        title = _("Please try again in a few seconds")
        text = _("The audio version is being made for someone else. Wait a few seconds, then choose it again.")
        return render_template("error.html", title=title, text=text), 503, {"Retry-After": "5"}
    response = _media(clip.wav if clip else None, "audio/wav")
    if clip:
        response.headers["Content-Language"] = clip.lang
    return response


def _media(body: bytes | None, mimetype: str) -> Response:
    response = make_response(body or b"", 200 if body else 404)
    response.mimetype = mimetype
    response.headers["Cache-Control"] = "no-store"
    return response
