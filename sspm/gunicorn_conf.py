"""gunicorn's settings for SSPM: ``gunicorn -c python:sspm.gunicorn_conf --preload ... sspm.wsgi:app``.

Only what SSPM needs of gunicorn's hooks; everything else stays on the
command line. With PROMETHEUS_MULTIPROC_DIR set, a worker that exits has
its live metrics dropped (sspm.infra.metrics).
"""

from __future__ import annotations

from typing import Any

from sspm.infra import metrics


def child_exit(server: Any, worker: Any) -> None:
    metrics.process_dead(worker.pid)
