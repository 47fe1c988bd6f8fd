"""HTTP for the Jobs page: a GET that changes nothing, for whoever JOBS_VIEW reaches anywhere.

Refused like every console page: audited as ``not_permitted`` and a 403
that says it is not part of the role.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from sspm.account import audit
from sspm.jobs_console.service import overview
from sspm.policy.reasons import Reason
from sspm.policy.roles import Permission, reach
from sspm.web.acting import acting
from sspm.web.context import services
from sspm.web.messages import reason_text
from sspm.web.staff import staff_member

bp = Blueprint("jobs_console", __name__, url_prefix="/staff")


@bp.get("/jobs")
def jobs() -> tuple[str, int]:
    member = staff_member()
    the = services()
    if reach(member.grants, Permission.JOBS_VIEW).nothing:
        audit.record(
            the.store,
            audit.Action.REQUEST,
            "not_permitted",
            actor=acting(),
            details={"endpoint": request.endpoint or "unknown"},
        )
        page = render_template(
            "jobs/refused.html", title=_("Not part of your role"), message=reason_text(Reason.NOT_IN_ROLE)
        )
        return page, 403
    return render_template("jobs/jobs.html", found=overview(the.store), timezone=the.settings.timezone), 200
