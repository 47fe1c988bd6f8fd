"""The WSGI entry point for gunicorn: ``gunicorn --preload sspm.wsgi:app``.

With --preload a bad setting or an unreachable directory stops the start
with one line on stderr (not a traceback per worker), exit status 2.
The app's lines go to stderr as SSPM_LOG_FORMAT says (sspm.infra.logs);
``--logger-class sspm.infra.logs.GunicornLogger`` puts gunicorn's own there too.
"""

from __future__ import annotations

import sys

from connectors.directory import DirectoryError
from sspm.app import create_app
from sspm.infra import logs
from sspm.infra.settings import ConfigError, load
from sspm.infra.state import StateUnavailable

try:
    settings = load()
    logs.setup(settings.log_format, settings.log_level)  # before the app: its start is logged too
    app = create_app(settings)
except (ConfigError, DirectoryError, StateUnavailable) as exc:
    print(f"sspm: cannot start: {exc}", file=sys.stderr)
    sys.exit(2)
