"""HTTP for the console's roles page and audit trail viewer: parse, call the use case, render.

Every view starts from ``staff_member()``: the grants in the store now,
never the session's role. Granting and revoking also need the password
given within the last minutes (``requires_recent_auth``), and every form
that changes something is a POST with its CSRF token. Viewing the trail
is a GET that changes nothing; exporting it is a POST, since the export
is itself written to the trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, stream_with_context, url_for
from flask import Response as Stream
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from sspm.account import audit
from sspm.account.audit_query import Filter, Organizations, Viewer, chain_status, every, page
from sspm.account.staff import Change, Staff
from sspm.console import service
from sspm.console.forms import (
    AuditExportForm,
    AuditFilterForm,
    RevokeForm,
    grant_form,
    role_label,
)
from sspm.infra.services import Services
from sspm.policy.organizations import key
from sspm.policy.reasons import Reason
from sspm.policy.roles import Permission, Reach, Role, reach
from sspm.web.acting import acting
from sspm.web.auth import requires_recent_auth
from sspm.web.context import services
from sspm.web.messages import reason_text
from sspm.web.numbers import whole_number
from sspm.web.pages import explain, status_for
from sspm.web.staff import staff_member

bp = Blueprint("console", __name__, url_prefix="/staff")

#: The query-string fields of the audit filter, kept across pages and into the export.
FILTER_FIELDS = ("account", "actor", "action", "outcome", "since", "until")


def _organizations(the: Services) -> Organizations:
    return Organizations(the.directory, the.settings.organization_from, the.settings.directory.base_dn)


def _reach_of(member: Staff, permission: Permission) -> Reach | None:
    """Where ``permission`` reaches for this member, or None (and the refusal audited) when nowhere."""
    where = reach(member.grants, permission)
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
    page_html = render_template(
        "console/refused.html", title=_("Not part of your role"), message=reason_text(Reason.NOT_IN_ROLE)
    )
    return page_html, 403


def _no_such_grant() -> tuple[str, int]:
    """What a grant that is not there, and one outside reach, both get: one status, one text."""
    page_html = render_template(
        "console/refused.html", title=_("No such role"), message=reason_text(Reason.NO_SUCH_GRANT)
    )
    return page_html, 404


# -- roles ------------------------------------------------------------------------------------------------


@bp.get("/roles")
def roles() -> tuple[str, int] | str:
    member = staff_member()
    if _reach_of(member, Permission.GRANT_ROLES) is None:
        return _not_in_role()
    held = service.visible_grants(services().store, member)
    return render_template("console/roles.html", held=held, role_label=role_label, member=member)


@bp.route("/roles/grant", methods=["GET", "POST"])
@requires_recent_auth()
def grant() -> tuple[str, int] | Response:
    member = staff_member()
    if _reach_of(member, Permission.GRANT_ROLES) is None:
        return _not_in_role()
    the = services()
    choices = service.grant_choices(member)
    form = grant_form(choices)
    reason: Reason | None = None
    if form.validate_on_submit():
        result = service.grant_role(
            the.directory,
            the.store,
            _organizations(the),
            acting(),
            member,
            login=form.account.data or "",
            role=form.role.data or "",
            organization=(form.organization.data or "").strip() or None,
        )
        reason = result.reason
        if reason is None and result.account is not None:
            values = {
                "who": result.account.username,
                "role": role_label(form.role.data or ""),
                "organization": _organization_shown(form.role.data or "", form.organization.data or ""),
            }
            if result.change is Change.GRANTED:
                flash(_("%(who)s now has the role %(role)s (%(organization)s).", **values))
            else:
                flash(_("%(who)s already had the role %(role)s (%(organization)s): nothing changed.", **values))
            return redirect(url_for("console.roles"), code=303)
    suggestions = service.organizations_in_use(the.store) if choices.anywhere else []
    page_html = render_template(
        "console/grant.html",
        form=form,
        choices=choices,
        suggestions=suggestions,
        message=explain(form, reason),
    )
    return page_html, status_for(form, reason)


def _organization_shown(role: str, organization: str) -> str:
    return _("every organization") if role == Role.SUPER_ADMIN.value else key(organization)


@bp.route("/roles/revoke", methods=["GET", "POST"])
@requires_recent_auth()
def revoke() -> tuple[str, int] | Response:
    member = staff_member()
    if _reach_of(member, Permission.GRANT_ROLES) is None:
        return _not_in_role()
    the = services()
    if request.method == "GET":
        asked = request.args
        if not any(asked.get(k) for k in ("account", "role", "organization")):
            # Back from re-authentication, which returns to the page without its question: start from the list.
            return redirect(url_for("console.roles"), code=303)
        held = service.revocable_grant(
            the.store, member, asked.get("account", ""), asked.get("role", ""), asked.get("organization", "")
        )
        if held is None:
            return _no_such_grant()
        form = RevokeForm(
            formdata=None, account=held.account_id, role=held.grant.role.value, organization=held.grant.organization
        )
        return render_template("console/revoke.html", form=form, held=held, role_label=role_label), 200
    form = RevokeForm()
    if not form.validate_on_submit():
        return _no_such_grant()
    result = service.revoke_role(
        the.directory,
        the.store,
        acting(),
        member,
        account_id=form.account.data or "",
        role=form.role.data or "",
        organization=form.organization.data or "",
    )
    if result.reason is Reason.UNAVAILABLE:
        return render_template("console/refused.html", title=_("Please try again in a minute"),
                               message=reason_text(result.reason)), 503  # fmt: skip
    if result.reason is not None:
        return _no_such_grant()
    flash(
        _(
            "%(who)s no longer has the role %(role)s (%(organization)s).",
            who=result.login,
            role=role_label(form.role.data or ""),
            organization=_organization_shown(form.role.data or "", form.organization.data or ""),
        )
    )
    return redirect(url_for("console.roles"), code=303)


# -- the audit trail --------------------------------------------------------------------------------------


def _viewer(member: Staff, where: Reach) -> Viewer:
    return Viewer(member.account_id, where)


def _filter_of(the: Services, form: AuditFilterForm) -> Filter:
    return service.audit_filter(
        the.directory,
        account=form.account.data or "",
        actor=form.actor.data or "",
        action=form.action.data or "",
        outcome=form.outcome.data or "",
        since=form.since.data,
        until=form.until.data,
        timezone=the.settings.timezone,
    )


def _filter_args(form: AuditFilterForm) -> dict[str, str]:
    """The filter as it was typed, to carry into the next page's link and the export's hidden fields."""
    shown: dict[str, str] = {}
    for name in FILTER_FIELDS:
        raw = form[name].raw_data
        if raw and raw[0]:
            shown[name] = str(raw[0])
    return shown


@bp.get("/audit")
def audit_trail() -> tuple[str, int]:
    member = staff_member()
    where = _reach_of(member, Permission.AUDIT_VIEW)
    if where is None:
        return _not_in_role()
    the = services()
    form = AuditFilterForm(request.args)
    valid = form.validate()
    before = whole_number(request.args.get("before"))
    found = None
    if valid:
        found = page(the.store, _viewer(member, where), _filter_of(the, form), _organizations(the), before=before)
    chain = chain_status(the.store)
    shown = _filter_args(form)
    page_html = render_template(
        "console/audit.html",
        form=form,
        found=found,
        chain=chain,
        where=where,
        shown=shown,
        before=before,
        staff_logins=service.staff_logins(the.store),
        timezone=the.settings.timezone,
    )
    return page_html, 200 if valid else 422


@bp.post("/audit/export")
def audit_export() -> Response | tuple[str, int]:
    member = staff_member()
    where = _reach_of(member, Permission.AUDIT_VIEW)
    if where is None:
        return _not_in_role()
    the = services()
    form = AuditExportForm()
    if not form.validate_on_submit():
        # Only an edited page gets here (the export form repeats a filter the page accepted).
        query: dict[str, Any] = dict(_filter_args(form))
        return redirect(url_for("console.audit_trail", **query), code=303)
    wanted = _filter_of(the, form)
    service.record_export(the.store, acting(), _filter_args(form))
    events = every(the.store, _viewer(member, where), wanted, _organizations(the))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Stream(
        stream_with_context(line.encode("utf-8") for line in service.csv_lines(events)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="sspm-audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
