"""Health for load balancers and orchestrators: ``/healthz`` (the process answers) and ``/readyz`` (it can serve).

Unauthenticated and cheap, so they may be asked every few seconds; they say
which outside system is failing by a fixed word (directory, redis, database,
database-schema) and nothing else: no host, no port, no error text, no
version. The cause goes to the log, where operators read it.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from connectors.directory import DirectoryError
from sspm.infra.state import StateUnavailable
from sspm.infra.store import head_revision
from sspm.web.context import services

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
