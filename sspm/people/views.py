"""HTTP for people's records: thin; every decision is sspm.people.service's, made again on every request.

Pages live under ``/staff/people/<section>`` (employees, clinicians). Each
view starts from ``staff_member()`` (the grants in the store now) and hands
the use case the request's Actor. A record outside the member's reach, of
the other section, or absent all get one 404 page with one sentence.
Reading is a GET that changes nothing on the directory; every change is a
POST with its CSRF token (GET shows, POST acts: ending a record has a
confirmation page of its own).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from connectors.directory import DirectoryError
from sspm.account.staff import Staff
from sspm.infra.store import PersonRecord
from sspm.people import service
from sspm.people.forms import ConfirmForm, RecordForm, record_form
from sspm.people.service import ACTIVE, ENDED, Kind, Result
from sspm.policy.reasons import UNAVAILABLE, Reason
from sspm.web.acting import acting
from sspm.web.auth import requires_recent_auth
from sspm.web.context import services
from sspm.web.messages import reason_text
from sspm.web.numbers import whole_number
from sspm.web.pages import explain, status_for
from sspm.web.staff import staff_member

bp = Blueprint("people", __name__, url_prefix="/staff/people")

Page = tuple[str, int] | Response | str

TITLES: dict[Kind, LazyString] = {Kind.EMPLOYEE: _l("Employees"), Kind.CLINICIAN: _l("Clinicians")}
#: How the record page names each field the directory holds otherwise.
FIELD_NAMES: dict[str, LazyString] = {
    "given_name": _l("given name"),
    "family_name": _l("family name"),
    "work_email": _l("work email"),
    "job_title": _l("job title"),
    "department": _l("department or unit"),
    "mobile": _l("mobile phone"),
    "status": _l("whether the account is enabled"),
}


def _kind(section: str) -> Kind:
    kind = Kind.of_section(section)
    if kind is None:
        abort(404)
    return kind


def _member_in(kind: Kind) -> Staff | tuple[str, int]:
    """The staff member, if their roles reach this section anywhere; else the page that says so."""
    member = staff_member()
    if service.readable(member, kind).nothing:
        page = render_template("people/refused.html", message=reason_text(Reason.NOT_IN_ROLE))
        return page, 403
    return member


def _not_here(reason: Reason, kind: Kind) -> tuple[str, int]:
    """The one answer for a record that is absent or out of reach; or the directory away."""
    if reason in UNAVAILABLE:
        return render_template("people/problem.html", message=reason_text(reason), kind=kind), 503
    return render_template("people/not_found.html", message=reason_text(Reason.NO_SUCH_RECORD), kind=kind), 404


def _record_url(kind: Kind, record: PersonRecord) -> str:
    return url_for("people.record", section=kind.section, record_id=record.id)


# -- lists ------------------------------------------------------------------------------------------------


@bp.get("")
def index() -> Page:
    member = staff_member()
    open_to = service.sections(member)
    if len(open_to) == 1:
        return redirect(url_for("people.records", section=open_to[0].section), code=303)
    if not open_to:
        return render_template("people/refused.html", message=reason_text(Reason.NOT_IN_ROLE)), 403
    return render_template("people/index.html", sections=open_to, titles=TITLES)


@bp.get("/<section>")
def records(section: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    where = service.readable(member, kind)
    organizations = service.organizations_in_use(services().store) if where.everywhere else sorted(where.organizations)
    term = request.args.get("q", "")[:256]
    organization = request.args.get("organization", "")[:256]
    status = request.args.get("status", "")
    page = whole_number(request.args.get("page")) or 1
    listing = service.list_records(
        services().store, member, kind, term=term, organization=organization, status=status, page=page
    )
    creatable, anywhere = service.creatable_in(services().store, member, kind)
    args = {"q": term, "organization": organization, "status": status}
    return render_template(
        "people/list.html",
        kind=kind,
        title=TITLES[kind],
        listing=listing,
        organizations=organizations,
        may_create=bool(creatable) or anywhere,
        args=args,
        statuses=((ACTIVE, _("Active")), (ENDED, _("Ended"))),
    )


# -- one record ---------------------------------------------------------------------------------------------


@bp.get("/<section>/<record_id>")
def record(section: str, record_id: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    opened = service.open_record(services(), acting(), member, kind, record_id)
    if isinstance(opened, Reason):
        return _not_here(opened, kind)
    return render_template(
        "people/record.html",
        kind=kind,
        title=TITLES[kind],
        opened=opened,
        record=opened.record,
        form=ConfirmForm(formdata=None, version=opened.record.version),
        drift=", ".join(str(FIELD_NAMES[name]) for name in opened.drift),
    )


def _flash_result(result: Result) -> None:
    if result.email_not_sent:
        flash(_("The email could not be sent right now. Use “Send the set-up email again” in a minute."), "warning")
    if result.email_pending:
        flash(
            _(
                "The new work email is waiting for its owner’s confirmation: a link was sent to it. Until then, "
                "the account keeps signing in and recovering with the old address."
            )
        )
    if result.still_disabled:
        flash(_("The record is active again, but the directory keeps the account disabled for a reason of its own."))


@bp.route("/<section>/new", methods=["GET", "POST"])
def create(section: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    the = services()
    organizations, anywhere = service.creatable_in(the.store, member, kind)
    if not organizations and not anywhere:
        return render_template("people/refused.html", message=reason_text(Reason.NOT_IN_ROLE)), 403
    form = record_form(kind, organizations, anywhere)
    reason: Reason | None = None
    if form.validate_on_submit():
        result = service.create(the, acting(), member, kind, form.organization.data or "", form.details())
        if result.reason is None and result.record is not None:
            whole_name = " ".join((result.record.given_name, result.record.family_name))
            flash(
                _(
                    "The record of %(name)s was created, with the user name %(username)s. Their set-up email "
                    "is on its way to %(email)s; the account cannot be used until they follow it.",
                    name=whole_name,
                    username=result.record.username,
                    email=result.record.work_email,
                )
            )
            _flash_result(result)
            return redirect(_record_url(kind, result.record), code=303)
        reason = result.reason
        form.located = result.field
    message = explain(form, reason) if reason is not None else explain(form, None)
    page = render_template(
        "people/new.html",
        kind=kind,
        title=TITLES[kind],
        form=form,
        message=message,
        anywhere=anywhere,
        suggestions=organizations if anywhere else [],
    )
    return page, status_for(form, reason)


def _form_values(record: PersonRecord, manager_login: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "given_name": record.given_name,
        "family_name": record.family_name,
        "language": record.language,
        "work_email": record.pending_email or record.work_email,
        "job_title": record.job_title,
        "department": record.department,
        "manager": manager_login,
        "start_date": record.start_date,
        "end_date": record.end_date,
        "version": str(record.version),
    }
    if record.kind == Kind.CLINICIAN.value:
        values.update(
            college=record.college or "",
            registration_number=record.registration_number or "",
            specialty=record.specialty or "",
            mobile=record.mobile or "",
        )
    return values


def _manager_login(record: PersonRecord) -> str:
    if not record.manager_account_id:
        return ""
    try:
        found = services().directory.get_account(record.manager_account_id)
    except DirectoryError:  # the form still opens; the manager is typed again
        return ""
    return found.username if found else ""


@bp.route("/<section>/<record_id>/edit", methods=["GET", "POST"])
def edit(section: str, record_id: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    the = services()
    opened = service.open_record(the, acting(), member, kind, record_id)
    if isinstance(opened, Reason):
        return _not_here(opened, kind)
    if not opened.may_change:
        return _not_here(Reason.NO_SUCH_RECORD, kind)
    record_now = opened.record
    form: RecordForm
    if request.method == "GET":
        form = record_form(kind, formdata=None, data=_form_values(record_now, _manager_login(record_now)))
    else:
        form = record_form(kind)
    reason: Reason | None = None
    saved_now: PersonRecord | None = None
    if form.validate_on_submit():
        try:
            version = int(form.version.data or "0")
        except ValueError:
            version = 0
        result = service.update_record(the, acting(), member, kind, record_now.id, version, form.details())
        if result.reason is Reason.NO_SUCH_RECORD:
            return _not_here(result.reason, kind)
        if result.reason is None and result.record is not None:
            flash(_("The record was saved, and the directory account changed with it."))
            _flash_result(result)
            return redirect(_record_url(kind, result.record), code=303)
        reason = result.reason
        form.located = result.field
        if reason is Reason.RECORD_CHANGED and result.record is not None:
            # Nothing typed is lost: the form keeps it; saving again is a choice made seeing both.
            saved_now = result.record
            form.version.data = str(saved_now.version)
    message = explain(form, reason)
    page = render_template(
        "people/edit.html",
        kind=kind,
        title=TITLES[kind],
        form=form,
        message=message,
        record=record_now,
        saved_now=saved_now,
        saved_values=_form_values(saved_now, "") if saved_now else None,
    )
    return page, 409 if reason is Reason.RECORD_CHANGED else status_for(form, reason)


@bp.route("/<section>/<record_id>/end", methods=["GET", "POST"])
@requires_recent_auth()
def end(section: str, record_id: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    the = services()
    if request.method == "GET":
        opened = service.open_record(the, acting(), member, kind, record_id)
        if isinstance(opened, Reason):
            return _not_here(opened, kind)
        if not opened.may_change:
            return _not_here(Reason.NO_SUCH_RECORD, kind)
        form = ConfirmForm(formdata=None, version=opened.record.version)
        return render_template("people/end.html", kind=kind, title=TITLES[kind], record=opened.record, form=form)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    result = service.end_record(the, acting(), member, kind, record_id)
    done = _("The record was ended: the account is disabled, its sessions ended, its links void. Its manager was told.")
    return _after_change(kind, result, done)


@bp.post("/<section>/<record_id>/reactivate")
@requires_recent_auth()
def reactivate(section: str, record_id: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    if not ConfirmForm().validate_on_submit():
        abort(400)
    result = service.reactivate_record(services(), acting(), member, kind, record_id)
    if result.reason is None and result.record is not None and result.record.set_up_at is None:
        done = _("The record is active again. The account was never set up, so a new set-up email was sent.")
    else:
        done = _("The record is active again, and so is its account.")
    return _after_change(kind, result, done)


@bp.post("/<section>/<record_id>/setup-link")
def setup_link(section: str, record_id: str) -> Page:
    kind = _kind(section)
    member = _member_in(kind)
    if not isinstance(member, Staff):
        return member
    if not ConfirmForm().validate_on_submit():
        abort(400)
    result = service.resend_setup_link(services(), acting(), member, kind, record_id)
    return _after_change(kind, result, _("A new set-up email is on its way. The link sent before no longer works."))


def _after_change(kind: Kind, result: Result, done: str) -> Page:
    """Back to the record page: said done there (303), or the page again with why not (422, 503)."""
    if result.reason is Reason.NO_SUCH_RECORD or result.record is None:
        return _not_here(result.reason or Reason.NO_SUCH_RECORD, kind)
    if result.reason is None:
        flash(done)
        _flash_result(result)
        return redirect(_record_url(kind, result.record), code=303)
    member = staff_member()
    opened = service.open_record(services(), acting(), member, kind, result.record.id)
    if isinstance(opened, Reason):
        return _not_here(opened, kind)
    page = render_template(
        "people/record.html",
        kind=kind,
        title=TITLES[kind],
        opened=opened,
        record=opened.record,
        form=ConfirmForm(formdata=None, version=opened.record.version),
        drift=", ".join(str(FIELD_NAMES[name]) for name in opened.drift),
        problem=reason_text(result.reason),
    )
    return page, 503 if result.reason in UNAVAILABLE else 422
