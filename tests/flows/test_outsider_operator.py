"""An operator who did not build SSPM runs its jobs and commands, on OpenLDAP and on Active Directory.

Each story is something that went wrong for them: a reminder sent twice
after the clean-up, a command that answered with a traceback or spun a
CPU, a report that still called someone locked hours after the directory
let them in again.
"""

from __future__ import annotations

from lab import Slapd
from sspm.account import cleanup
from tests.flows.test_console_roles import account_of
from tests.flows.test_email import EMAIL_ENV
from tests.flows.test_reminders import queue_job, run_housekeeping, sync, to
from tests.support import Backing
from tests.support.flows import AppFactory

# -- the clean-up and the reminders ---------------------------------------------------------------


def test_a_short_email_event_retention_never_sends_an_expiry_reminder_twice(
    build_app: AppFactory, slapd: Slapd, backing: Backing
) -> None:
    """achen's password expires in 5 days: one 7-day reminder, however soon the clean-up forgets emails.

    An operator who keeps email events for a day (or none) to hold little
    about people still expects each reminder once: the clean-up used to
    delete the reminder's event at its next hourly run, and the next
    reminders run (every 15 minutes) sent achen the same reminder again.
    """
    app = build_app(slapd, SSPM_EMAIL_EVENT_RETENTION_DAYS="0", **EMAIL_ENV)
    achen = account_of(app, "achen")
    sync(app)
    queue_job(app)
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 1

    cleanup.clean_up()
    queue_job(app)  # the next scheduled run
    run_housekeeping(app)
    assert len(to(backing.mailbox, achen)) == 1, "the same reminder went again"
