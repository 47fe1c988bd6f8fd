"""HTTP for the reports at /staff/reports: parse the filter, ask the use case within reach, render or export.

Every view starts from ``staff_member()`` (grants in the store now) and the
HELPDESK permission's reach; someone without it anywhere gets the console's
"not part of your role" (403, audited). Viewing is a GET that changes
nothing; exporting is a POST with its CSRF token, since the export is
itself written to the trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, stream_with_context, url_for
from flask import Response as Stream
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from sspm.account import audit
from sspm.policy.reasons import Reason
from sspm.policy.roles import Permission, Reach, reach
from sspm.reports import service
from sspm.reports.forms import ReportExportForm, ReportFilterForm
from sspm.reports.service import Kind, Query
from sspm.web import spreadsheet
from sspm.web.acting import acting
from sspm.web.context import services
from sspm.web.messages import reason_text
from sspm.web.staff import staff_member

bp = Blueprint("reports", __name__, url_prefix="/staff/reports")

#: Each report's title and what it lists, in the order the index shows them.
TITLES: dict[Kind, tuple[LazyString, LazyString]] = {
    Kind.LOCKED: (
        _l("Locked now"),
        _l("Accounts the directory has locked, with since when and how many wrong passwords."),
    ),
    Kind.EXPIRING: (_l("Expiring soon"), _l("Accounts whose password expires within the days you choose.")),
    Kind.EXPIRED: (_l("Expired"), _l("Accounts whose password has expired.")),
    Kind.NOT_ENROLLED: (
        _l("No security questions"),
        _l("Enabled accounts that have not chosen security questions, so cannot reset their own password."),
    ),
    Kind.NOT_SET_UP: (_l("Never set up"), _l("Accounts created for someone who has not set them up yet.")),
    Kind.RECOVERIES: (
        _l("Recent resets and unlocks"),
        _l("Passwords reset and accounts unlocked in the days you choose, and how: questions, email link or helpdesk."),
    ),
}
METHODS: dict[service.Method, LazyString] = {
    service.Method.QUESTIONS: _l("Security questions"),
    service.Method.EMAIL_LINK: _l("Email link"),
    service.Method.HELPDESK: _l("Helpdesk"),
}
WHAT: dict[str, LazyString] = {"reset": _l("Password reset"), "unlock": _l("Account unlocked")}


def _reach() -> Reach | None:
    """Where HELPDESK reaches for the member now, or None (and the refusal audited) when nowhere."""
    where = reach(staff_member().grants, Permission.HELPDESK)
    if not where.nothing:
        return where
    audit.record(
        services().store,
        audit.Action.REQUEST,
        "not_permitted",
        actor=acting(),
        details={"endpoint": request.endpoint or "unknown"},
    )
    return None


def _not_in_role() -> tuple[str, int]:
    html = render_template(
        "reports/refused.html", title=_("Not part of your role"), message=reason_text(Reason.NOT_IN_ROLE)
    )
    return html, 403


def _kind(name: str) -> Kind:
    try:
        return Kind(name)
    except ValueError:
        abort(404)


def _filter(form: ReportFilterForm, where: Reach) -> ReportFilterForm:
    form.offer(service.organizations(services().store, where), str(_("Every organization you may see")))
    return form


def _query(kind: Kind, form: ReportFilterForm, after_login: str | None, after_id: str | None) -> Query:
    return Query(
        kind,
        organization=form.organization.data or None,
        days=form.days.data or service.DEFAULT_DAYS,
        after_login=after_login,
        after_id=after_id,
    )


def _shown(kind: Kind, query: Query) -> dict[str, Any]:
    """The filter as query-string values, for the next page's link and the export's hidden fields."""
    shown: dict[str, Any] = {}
    if query.organization:
        shown["organization"] = query.organization
    if kind.uses_days:
        shown["days"] = query.days
    return shown


@bp.get("/")
def index() -> tuple[str, int]:
    where = _reach()
    if where is None:
        return _not_in_role()
    the = services()
    return render_template(
        "reports/index.html", titles=TITLES, where=where, synced_at=service.synced_at(the.store)
    ), 200


@bp.get("/<name>")
def report(name: str) -> tuple[str, int]:
    kind = _kind(name)
    where = _reach()
    if where is None:
        return _not_in_role()
    the = services()
    form = _filter(ReportFilterForm(request.args), where)
    valid = form.validate()
    query = _query(kind, form, request.args.get("after_login"), request.args.get("after_id"))
    found = service.page(the.store, query, where, now=datetime.now(UTC)) if valid else None
    html = render_template(
        "reports/report.html",
        kind=kind,
        title=TITLES[kind][0],
        about=TITLES[kind][1],
        form=form,
        found=found,
        shown=_shown(kind, query),
        paged=query.after_id is not None,
        where=where,
        methods=METHODS,
        what=WHAT,
        synced_at=service.synced_at(the.store),
    )
    return html, 200 if valid else 422


@bp.post("/<name>/export")
def export(name: str) -> Response | tuple[str, int]:
    kind = _kind(name)
    where = _reach()
    if where is None:
        return _not_in_role()
    the = services()
    form = _filter(ReportExportForm(), where)
    if not form.validate_on_submit():
        # Only an edited page (or a stale token) gets here: back to the report, which says what is wrong.
        kept: dict[str, Any] = {k: v for k, v in request.form.items() if k in ("organization", "days")}
        return redirect(url_for("reports.report", name=kind.value, **kept), code=303)
    query = _query(kind, form, None, None)
    service.record_export(the.store, acting(), query)
    rows = service.every(the.store, query, where, now=datetime.now(UTC))
    lines = spreadsheet.csv_lines(service.columns(kind), (service.cells(row) for row in rows))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Stream(
        stream_with_context(line.encode("utf-8") for line in lines),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="sspm-{kind.value}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
