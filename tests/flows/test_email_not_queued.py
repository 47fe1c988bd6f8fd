"""A notification that cannot be queued: the password change stands, and the trail says so.

The outbox only queues; whoever asked audits what a job that could not be
queued means (sspm.account.aftermath for the emails after a password is
set). Since the limits fail closed, a Redis that is down refuses the change
itself (tests/flows/test_redis_failover.py); what is left is a Redis that
counted the attempt but will not take the job. A real Redis does that here:
an ACL gives the app's user the limits' and SSPM's own keys, not RQ's.
"""

from __future__ import annotations

from pathlib import Path

import redis
from rq import Queue

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.redis import start_redis
from sspm.email.jobs import QUEUE
from tests.flows.test_change_password import SUCCESS_TITLE
from tests.flows.test_email import EMAIL_ENV, audit_rows, verdict
from tests.support import Backing
from tests.support.flows import NEW_PASSWORD, AppFactory, Visitor, csrf_token, says


def test_with_redis_refusing_the_job_a_password_change_stands_and_its_email_is_audited_as_not_queued(
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
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", "app", "on", ">its-password", "~LIMITS:*", "~sspm:*", "+@all")
        app = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=f"redis://app:its-password@127.0.0.1:{server.port}/0")
        visitor = Visitor(app)
        form = visitor.get("/change")

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
        assert admin.keys("LIMITS:*"), "the attempt was counted"
        assert Queue(QUEUE, connection=admin).count == 0, "nothing was queued"
        assert not admin.keys("rq:job:*")
    finally:
        server.stop()
