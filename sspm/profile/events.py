"""What a deployment hooks on when an account's mobile number changed: an outbox event on the housekeeping queue.

The clinicians' mobile application signs in with the number, so whatever
keeps its credentials (a device registry, the app's back end) may need to
hear at once. SSPM does not know those systems; it puts one job per change
on the ``housekeeping`` queue, by name, ``sspm.profile.events.phone_changed``,
with the account's id and the time, never the numbers. The job writes one
line on the logger ``sspm.profile.events`` of the worker that runs it::

    phone_changed {"event": "phone_changed", "account_id": "...", "username": "...",
                   "at": "2026-12-01T10:00:00+00:00", "event_id": "...", "mobile_credentials": true}

How an operator hooks on it:

- forward those lines from the housekeeping worker's log (``python
  worker.py housekeeping``, which logs to stderr: journald, a log shipper);
- or read the audit trail's copy (SSPM_AUDIT_SYSLOG / SSPM_AUDIT_JSON_FILE):
  every change is also a ``phone_changed`` row whose details say
  ``"mobile_credentials": true``, with the old and the new number.

A job of its own, rather than only the audit row, so the event waits in
Redis while no housekeeping worker runs, and is recorded as run (``job_runs``).
"""

from __future__ import annotations

import json
import logging

from sspm.infra import jobs
from sspm.infra.services import Services

log = logging.getLogger("sspm.profile.events")


@jobs.job
def phone_changed(the: Services, account_id: str, at: str, event_id: str) -> str:
    """Say, on ``sspm.profile.events``, that the account's mobile number (a mobile credential) changed at ``at``."""
    account = the.directory.get_account(account_id)
    line = {
        "event": "phone_changed",
        "account_id": account_id,
        "username": account.username if account else None,
        "at": at,
        "event_id": event_id,
        "mobile_credentials": True,
    }
    log.info("phone_changed %s", json.dumps(line, sort_keys=True))
    return "logged"
