"""gunicorn's settings for SSPM: ``gunicorn -c python:sspm.gunicorn_conf --preload ... sspm.wsgi:app``.

Only what SSPM needs of gunicorn's hooks; everything else stays on the
command line. With PROMETHEUS_MULTIPROC_DIR set, a worker that exits has
its live metrics dropped (sspm.infra.metrics).

gunicorn 27's control socket is off: SSPM has no use for a second way to
add and kill workers, and its default path is one file in the user's home
(``~/.gunicorn/gunicorn.ctl``) that every gunicorn on the host takes over
from the last (and deletes when it stops), in a home the systemd unit keeps
read-only.
"""

from __future__ import annotations

from typing import Any

from sspm.infra import metrics

control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    metrics.process_dead(worker.pid)
