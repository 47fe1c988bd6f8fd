"""The WSGI entry point for gunicorn: ``gunicorn --preload sspm.wsgi:app``.

With --preload a bad setting or an unreachable directory stops the start
with one line on stderr (not a traceback per worker), exit status 2.
"""

from __future__ import annotations

import sys

from connectors.directory import DirectoryError
from sspm.app import create_app
from sspm.infra.settings import ConfigError
from sspm.infra.state import StateUnavailable

try:
    app = create_app()
except (ConfigError, DirectoryError, StateUnavailable) as exc:
    print(f"sspm: cannot start: {exc}", file=sys.stderr)
    sys.exit(2)
