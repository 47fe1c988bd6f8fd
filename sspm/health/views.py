"""Health for load balancers and orchestrators: ``/healthz`` (the process answers) and ``/readyz`` (it can serve).

Unauthenticated and cheap, so they may be asked every few seconds; they say
which outside system is failing by a fixed word (directory, redis, database,
database-schema) and nothing else: no host, no port, no error text, no
version. The cause goes to the log, where operators read it.

``/metrics`` is Prometheus' (sspm.infra.metrics): every request is counted
by its endpoint (``measure_requests``), and the page is served only to the
addresses in SSPM_METRICS_ALLOWED; anyone else gets the same 404 as a page
that does not exist.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, abort, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from connectors.directory import DirectoryError
from sspm.infra import jobs, metrics
from sspm.infra.state import StateUnavailable
from sspm.infra.store import head_revision
from sspm.web.context import services
from sspm.web.routing import client_ip

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def alive() -> tuple[Response, int]:
    """The process is up and answering; asks nothing of anyone (a liveness probe must not fail with Redis)."""
    return jsonify(status="alive"), 200


@bp.route("/readyz")
def ready() -> tuple[Response, int]:
    """The directory, Redis and the database answer within their usual bounds, and the schema is current.

    The directory is asked through its bulkhead and breaker (connectors/guard.py),
    so a frozen directory answers "not ready" at once instead of holding a thread.
    """
    the = services()
    failing: list[str] = []
    try:
        the.directory.check()
    except DirectoryError as exc:
        log.warning("not ready: directory: %s", exc)
        failing.append("directory")
    try:
        the.state.check()
    except StateUnavailable as exc:
        log.warning("not ready: redis: %s", exc)
        failing.append("redis")
    try:
        current = the.store.revision() == head_revision()
    except SQLAlchemyError as exc:
        log.warning("not ready: database: %s", type(exc).__name__)
        failing.append("database")
    else:
        if not current:
            log.warning("not ready: the database schema is not current (python -m sspm migrate)")
            failing.append("database-schema")
    if failing:
        return jsonify(status="not ready", failing=failing), 503
    return jsonify(status="ready"), 200


@bp.route("/metrics")
def scrape() -> Response:
    """Every process of this host (multiprocess) or this one, and the queues' depth read from Redis now.

    Only for SSPM_METRICS_ALLOWED, judged on the client address as
    SSPM_TRUSTED_PROXIES makes it (ProxyFix), so a visitor behind the proxy
    cannot pass for the scraper by sending X-Forwarded-For.
    """
    the = services()
    if not metrics.allowed(client_ip(), the.settings.metrics_allowed):
        abort(404)
    return Response(metrics.exposition(the.state.redis, jobs.QUEUES), content_type=metrics.CONTENT_TYPE)


_STARTED = "sspm.metrics.started"


def measure_requests(app: Flask) -> None:
    """Count every request by endpoint and status, and time it (the first hook to run, the last to end)."""

    def started() -> None:
        request.environ[_STARTED] = time.perf_counter()

    def answered(response: Response) -> Response:
        began = request.environ.get(_STARTED)
        took = time.perf_counter() - began if isinstance(began, float) else 0.0
        metrics.request_done(request.endpoint or "unmatched", response.status_code, took)
        return response

    # First in line (and last out: after-request hooks run in reverse), so a request
    # that a limit or another hook turns away is timed and counted too.
    app.before_request_funcs.setdefault(None, []).insert(0, started)
    app.after_request_funcs.setdefault(None, []).insert(0, answered)
