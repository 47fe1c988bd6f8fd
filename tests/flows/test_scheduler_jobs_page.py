"""The Jobs page (/staff/jobs): Super Admins and Admins see every job's last runs, failures first to the eye;
nobody else sees it, and a refusal is audited.

The runs are real: the clean-up job and the test's own jobs (tests/support/jobs.py) run with the app's
Services and record themselves in ``job_runs`` as a worker's would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from lab import Pki, Slapd
from sspm.account import cleanup
from sspm.account.audit import Action
from sspm.infra import schedule
from tests.flows.test_console_roles import as_staff, make_staff, rows, start_staff_slapd
from tests.flows.test_realms import with_probes
from tests.support import jobs as test_jobs
from tests.support.flows import AppFactory, Visitor

_ROW = re.compile(r'<tr data-job="(\w+)"( class="failed")?>')


@pytest.fixture
def slapd(tmp_path: Path, pki: Pki) -> Iterator[Slapd]:
    yield from start_staff_slapd(tmp_path, pki)


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd) -> Flask:
    app = with_probes(build_app(slapd))
    make_staff(app, "super1", "super-admin", None)
    make_staff(app, "admin1", "admin")
    make_staff(app, "manager1", "assigning-manager")
    make_staff(app, "helpdesk1", "helpdesk")
    cleanup.clean_up()
    test_jobs.note("once")
    with pytest.raises(RuntimeError):
        test_jobs.fail("once")
    return app


@pytest.mark.parametrize("uid", ["super1", "admin1"])
def test_super_admins_and_admins_see_each_jobs_last_run_and_the_failure_stands_out(app: Flask, uid: str) -> None:
    page = as_staff(app, uid).get("/staff/jobs")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    scheduled = {entry.function.rsplit(".", 1)[1]: "" for entry in schedule.ENTRIES}
    assert dict(_ROW.findall(text)) == {**scheduled, "note": "", "fail": ' class="failed"'}, "run or scheduled"
    assert "1 job failed at its last run:" in text and "fail." in text
    assert "Failed</strong> (failed: RuntimeError)" in text
    assert "purged 0 tokens, 0 email events, 0 job runs" in text
    assert 'href="/staff/jobs"' in as_staff(app, uid).get("/staff/").get_data(as_text=True), "in the console's nav"


@pytest.mark.parametrize("uid", ["manager1", "helpdesk1"])
def test_nobody_else_sees_the_jobs_and_the_refusal_is_audited(app: Flask, uid: str) -> None:
    visitor = as_staff(app, uid)
    page = visitor.get("/staff/jobs")
    assert page.status_code == 403
    assert "clean_up" not in page.get_data(as_text=True)
    assert 'href="/staff/jobs"' not in visitor.get("/staff/").get_data(as_text=True)
    refused = [details for outcome, _id, _actor, details in rows(app, Action.REQUEST) if outcome == "not_permitted"]
    assert refused == [{"endpoint": "jobs_console.jobs"}]


def test_a_visitor_not_signed_in_is_sent_to_the_staff_sign_in(app: Flask) -> None:
    page = Visitor(app).get("/staff/jobs")
    assert page.status_code in (302, 303) and "/staff/signin" in page.headers["Location"]
