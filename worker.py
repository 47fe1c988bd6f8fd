"""SSPM's RQ worker: ``python worker.py`` sends the emails the web app queues.

It reads the same settings as the web app (config/defaults.env, .env, the
environment) and serves the "email" queue, with RQ's scheduler on so that
failed sends are retried after SSPM_EMAIL_RETRY_SECONDS.

A SimpleWorker runs each job in this process instead of forking one per
job: the jobs are short and share the app's connections (directory pool,
database, SMTP settings), and a fork per email would cap a worker well below
what one SMTP relay takes.
"""

from __future__ import annotations

import logging
import sys

from rq import SimpleWorker

from connectors.directory import DirectoryError
from sspm import create_app, services
from sspm.email.jobs import QUEUE
from sspm.settings import ConfigError
from sspm.state import StateUnavailable


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except (ConfigError, DirectoryError, StateUnavailable) as exc:
        print(f"sspm worker: cannot start: {exc}", file=sys.stderr)
        return 2
    with app.app_context():
        worker = SimpleWorker([QUEUE], connection=services().state.redis)
        # RQ logs two INFO lines per job (~0.9 ms of CPU each time); its
        # warnings and errors still show.
        worker.work(with_scheduler=True, logging_level="WARNING")
    return 0


if __name__ == "__main__":
    sys.exit(main())
