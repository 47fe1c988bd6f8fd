"""HTTP for who staff are: the console's sign-in (password, then second factor), re-authentication, sign-out, home.

Each step that gains trust moves the staff session to a new handle (no
fixation): after the password (half signed in), after the second factor,
after re-authentication. What a staff member may open is read from the
store on every request (sspm.web.staff), never from the session.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    current_app,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from limits import parse_many
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from sspm.account import attempts
from sspm.account.staff import Staff, TotpAlreadyConfirmed, new_recovery_codes, staff_of, unused_recovery_codes
from sspm.infra.settings import Settings
from sspm.infra.state import StateUnavailable
from sspm.policy.realm import Realm
from sspm.policy.reasons import Reason
from sspm.policy.roles import Grants, Permission, Role, highest_role, reach
from sspm.staff import service
from sspm.staff.forms import CodeForm, EnrollForm, ReauthForm, SignOutForm, StaffSignInForm
from sspm.web.acting import acting
from sspm.web.auth import (
    current_staff,
    end_staff_session,
    realm_of_request,
    requires_recent_auth,
    staff_reauthenticated,
    start_staff_session,
)
from sspm.web.context import services
from sspm.web.limits import guarded, per_ip
from sspm.web.pages import explain, status_for
from sspm.web.staff import safe_next, signed_in_staff, staff_member

bp = Blueprint("staff", __name__, url_prefix="/staff")

ROLE_NAMES: dict[Role, LazyString] = {
    Role.SUPER_ADMIN: _l("Super Admin"),
    Role.ADMIN: _l("Admin"),
    Role.ASSIGNING_MANAGER: _l("Assigning manager"),
    Role.HELPDESK: _l("Helpdesk"),
}

#: Recovery codes left at or below which the home page says to make new ones.
FEW_CODES_LEFT = 3

#: The console's sections, by the permission (or any of the permissions) that opens each; a section shows if
#: one of them reaches anywhere.
SECTIONS: tuple[tuple[Permission | tuple[Permission, ...], str, LazyString, LazyString], ...] = (
    (
        Permission.HELPDESK,
        "/staff/helpdesk",
        _l("Helpdesk"),
        _l("Find an account, verify a caller, unlock it or set a temporary password."),
    ),
    (
        Permission.HELPDESK,
        "/staff/reports/",
        _l("Reports"),
        _l("Who is locked, expiring, expired, without security questions or never set up; recent resets and unlocks."),
    ),
    (
        Permission.GRANT_ROLES,
        "/staff/roles",
        _l("Roles"),
        _l("See who is staff and grant or take back roles."),
    ),
    (
        (Permission.RECORDS_EMPLOYEES, Permission.RECORDS_CLINICIANS, Permission.RECORDS_READ),
        "/staff/people",
        _l("People"),
        _l("The Employees and Clinicians records, each with the directory account it gives its person."),
    ),
    (
        Permission.AUDIT_VIEW,
        "/staff/audit",
        _l("Audit"),
        _l("Read the audit trail of what was done, by whom, and export it."),
    ),
    (
        Permission.JOBS_VIEW,
        "/staff/jobs",
        _l("Jobs"),
        _l("See how the background jobs (emails, clean-ups, reminders, sync) last ran, and which failed."),
    ),
)


def sections(grants: Grants) -> list[tuple[str, LazyString, LazyString]]:
    """(path, label, what it is for) of each section these grants open."""
    return [
        (path, label, about)
        for allows, path, label, about in SECTIONS
        if any(not reach(grants, one).nothing for one in (allows if isinstance(allows, tuple) else (allows,)))
    ]


@bp.app_context_processor
def staff_frame() -> dict[str, Any]:
    """What templates/staff/layout.html shows: sign-out and the sections, by the grants in the store now."""
    if not has_request_context() or realm_of_request() is not Realm.STAFF:
        return {}
    try:
        member = signed_in_staff()
    except (StateUnavailable, SQLAlchemyError):  # an error page must still render
        member = None
    nav = [(path, label) for path, label, _about in sections(member.grants)] if member else []
    if member:
        nav.append(("/staff/profile", _l("Your profile")))  # sspm.profile: one's own email, mobile, password age
    return {"staff_signed_in": member is not None, "staff_nav": nav}


# -- limits ------------------------------------------------------------------------------------------------


def _settings() -> Settings:
    return current_app.config["SSPM_SETTINGS"]  # type: ignore[no-any-return]


def _code_key() -> str:
    """Wrong codes count against the staff member whose session typed them, on every page that asks for one."""
    principal = current_staff()
    return "staff-code:" + (principal.staff_id if principal else "nobody")


def code_limited(view: Any) -> Any:
    """Limit a view's POSTs per address, and its wrong codes per staff member (one count for every code page).

    Each code is counted before it is judged (sspm.account.attempts.attempt)
    and taken back unless refused, so codes sent at once from many sessions
    or addresses cannot each find the count below SSPM_LIMIT_PER_ACCOUNT
    before any of them is counted: no more than that many are judged. Past
    it, even a right code waits, as every limited form does (429).
    """

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Response:
        if request.method != "POST":
            return make_response(view(*args, **kwargs))
        state = services().state
        key = _code_key()
        counted = []
        for item in parse_many(_settings().limit_per_account):
            bucket = f"{key}:{item.amount}/{item.get_expiry()}"
            counted.append(bucket)
            if not attempts.attempt(state, bucket, item.amount, item.get_expiry()):
                raise TooManyRequests()
        response = make_response(view(*args, **kwargs))
        if response.status_code != 422:  # not a wrong code: a page, a redirect, a code that proved who it was
            for bucket in counted:
                attempts.succeeded(state, bucket)
        return response

    return per_ip(limited)


# -- steps -------------------------------------------------------------------------------------------------


def _key() -> str:
    return _settings().staff_totp_key


def _to(endpoint: str, next_page: str | None = None) -> Response:
    return redirect(url_for(endpoint, next=next_page or None), code=303)


def _signed_in_fully(member: Staff) -> None:
    """The second factor passed: a new handle, now trusted (the half signed-in one ends)."""
    _open(member, mfa_passed=True)


def _open(member: Staff, *, mfa_passed: bool) -> None:
    top = highest_role(member.grants)
    role = top.value if top is not None else ""
    start_staff_session(services().state, member.account_id, role, sorted(member.grants.organizations), mfa_passed)


def _half_signed_in() -> Staff | Response:
    """The staff member who gave the password and must now give the second factor; else where to go instead."""
    principal = current_staff()
    next_page = request.args.get("next") or request.form.get("next")
    if principal is None:
        return _to("staff.signin", next_page)
    if principal.mfa:
        return redirect(safe_next(next_page), code=303)
    member = staff_of(services().store, principal.staff_id)
    if member is None:
        end_staff_session(services().state)
        return _to("staff.signin", next_page)
    return member


@bp.route("/signin", methods=["GET", "POST"])
@guarded
def signin() -> tuple[str, int] | Response:
    the = services()
    form = StaffSignInForm(next=request.args.get("next", ""))
    if request.method == "GET" and signed_in_staff() is not None:
        return redirect(safe_next(form.next.data), code=303)
    reason = None
    if form.validate_on_submit():
        checked = service.check_password(
            the.directory, the.store, form.username.data or "", form.password.data or "", actor=acting()
        )
        if checked.reason is None and checked.member is not None:
            _open(checked.member, mfa_passed=False)
            return _to("staff.code" if checked.member.totp_confirmed else "staff.totp", form.next.data)
        reason = checked.reason
    page = render_template(
        "staff/signin.html",
        form=form,
        reason=reason,
        message=explain(form, reason),
        signed_out=request.method == "GET" and request.args.get("out") == "1",
    )
    return page, status_for(form, reason)


@bp.route("/signin/code", methods=["GET", "POST"])
@code_limited
def code() -> tuple[str, int] | Response:
    member = _half_signed_in()
    if isinstance(member, Response):
        return member
    if not member.totp_confirmed:
        return _to("staff.totp", request.args.get("next"))
    form = CodeForm(next=request.args.get("next", ""))
    reason = None
    if form.validate_on_submit():
        proved = service.check_second_factor(services().store, member, form.code.data or "", key=_key(), actor=acting())
        if proved is not None:
            _signed_in_fully(member)
            return redirect(safe_next(form.next.data), code=303)
        reason = Reason.STAFF_CODE_WRONG
    form.code.data = ""  # a code is never sent back into a page: the next one is typed fresh
    page = render_template("staff/code.html", form=form, message=explain(form, reason))
    return page, status_for(form, reason)


@bp.route("/totp", methods=["GET", "POST"])
@code_limited
def totp() -> tuple[str, int] | Response:
    member = _half_signed_in()
    if isinstance(member, Response):
        return member
    if member.totp_confirmed:
        return _to("staff.code", request.args.get("next"))
    the = services()
    form = EnrollForm(next=request.args.get("next", ""))
    reason = None
    enrollment = None
    if form.validate_on_submit():
        codes = service.confirm_enrollment(the.store, member, form.code.data or "", key=_key(), actor=acting())
        if codes is not None:
            _signed_in_fully(member)
            # Shown in this answer only (never stored, never redirected to): the page is not cached either.
            return render_template("staff/recovery_codes.html", codes=codes, next=safe_next(form.next.data)), 200
        reason = Reason.STAFF_CODE_WRONG
        enrollment = service.enrollment_again(member, form.pending.data or "", key=_key())
    if enrollment is None:
        try:
            enrollment = service.begin_enrollment(the.store, member, key=_key())
        except TotpAlreadyConfirmed:  # confirmed in another tab meanwhile
            return _to("staff.code", form.next.data)
    form.pending.data = enrollment.sealed
    form.code.data = ""
    page = render_template(
        "staff/totp.html",
        form=form,
        enrollment=enrollment,
        qr=enrollment.qr_svg(str(_l("QR code to scan with your authenticator app"))),
        grouped=" ".join(enrollment.secret[i : i + 4] for i in range(0, len(enrollment.secret), 4)),
        login=member.login,
        message=explain(form, reason),
    )
    return page, status_for(form, reason)


@bp.route("/reauth", methods=["GET", "POST"], endpoint="reauthenticate")
@code_limited
def reauthenticate() -> tuple[str, int] | Response:
    next_page = request.args.get("next", "")
    if signed_in_staff() is None:
        return _to("staff.signin", next_page)
    member = staff_member()
    the = services()
    form = ReauthForm(next=next_page)
    reason = None
    if form.validate_on_submit():
        reason = service.reauthenticate(
            the.directory,
            the.store,
            member,
            form.password.data or "",
            form.code.data or "",
            key=_key(),
            actor=acting(),
        )
        if reason is None:
            if not staff_reauthenticated(the.state):
                return _to("staff.signin", form.next.data)
            return redirect(safe_next(form.next.data), code=303)
    form.code.data = ""
    page = render_template("staff/reauth.html", form=form, message=explain(form, reason))
    return page, status_for(form, reason)


@bp.route("/signout", methods=["POST"])
def signout() -> Response:
    SignOutForm()  # CSRF is checked for every POST (CSRFProtect); the form names what this one carries.
    principal = current_staff()
    the = services()
    if principal is not None:
        service.record_sign_out(the.store, principal.staff_id, actor=acting())
    end_staff_session(the.state)
    return redirect(url_for("staff.signin", out=1), code=303)


@bp.route("/")
def home() -> str:
    member = staff_member()
    left = unused_recovery_codes(services().store, member)
    return render_template(
        "staff/home.html",
        member=member,
        sections=sections(member.grants),
        grants=list(member.grants),
        codes_left=left,
        few_codes=left <= FEW_CODES_LEFT,
        role_names=ROLE_NAMES,
    )


@bp.route("/recovery-codes", methods=["POST"], endpoint="new_codes")
@requires_recent_auth()
def new_codes() -> str:
    """New recovery codes, shown once; only with a recent password and code, as they stand in for the phone."""
    member = staff_member()
    codes = new_recovery_codes(services().store, member, actor=acting())
    return render_template("staff/recovery_codes.html", codes=codes, next=url_for("staff.home"))
