"""A notification that cannot be queued: the password change stands, and the trail says so.

The outbox only queues; whoever asked audits what a job that could not be
queued means (sspm.account.aftermath for the emails after a password is
set). Redis is stopped for real between the form and the change.
"""

from __future__ import annotations

from pathlib import Path

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.redis import start_redis
from tests.flows.test_change_password import SUCCESS_TITLE
from tests.flows.test_email import EMAIL_ENV, audit_rows, every_job, verdict
from tests.support import Backing
from tests.support.flows import NEW_PASSWORD, AppFactory, Visitor, csrf_token, says


def test_with_redis_stopped_a_password_change_stands_and_its_email_is_audited_as_not_queued(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    tmp_path: Path,
) -> None:
    john = accounts["normal"]
    server = start_redis(tmp_path / "redis")
    try:
        app = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=server.url)
        visitor = Visitor(app)
        form = visitor.get("/change")
        server.stop()

        changed = visitor.post(
            "/change",
            {
                "username": john.uid,
                "current": john.password,
                "new": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
                "csrf_token": csrf_token(form.text),
            },
        )

        assert verdict(directory, john.uid, NEW_PASSWORD) is Outcome.OK
        # The directory confirmed: the user is told it is done, not "nothing was changed".
        assert changed.status_code == 303, changed.status
        done = visitor.follow(changed)
        assert done.status_code == 200
        assert says(done, SUCCESS_TITLE)
        rows = audit_rows(app, "email_password_changed")
        assert [(row.outcome, row.subject) for row in rows] == [("not_queued", john.uid)]
        server = start_redis(tmp_path / "redis", port=server.port)
        assert every_job(app) == [], "nothing was queued"
    finally:
        server.stop()
