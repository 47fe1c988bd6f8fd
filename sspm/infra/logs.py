"""Where SSPM's logs go, set up once per process.

The application log (``setup``): one JSON object per line on stderr, from
the app under gunicorn, the workers and the scheduler alike, so a log
shipper reads every process the same way; ``SSPM_LOG_FORMAT=text`` gives a
developer's terminal plain lines instead. Each line carries the id of the
request it belongs to (``request_id``): a web request's, which its queued
jobs carry on (``sspm.infra.jobs``), or a scheduler run's. The id lives in a
context variable, so threads (gunicorn --threads) never see each other's.

The audit trail's copies (ASVS 16.4.3: kept on a separate system) leave
through their own logger, which nothing else writes to and which does not
propagate into the application log.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gunicorn.glogging import Logger as _GunicornLogger  # type: ignore[import-untyped]
from pythonjsonlogger.json import JsonFormatter

#: The two ways a line can look (SSPM_LOG_FORMAT).
FORMATS = ("json", "text")
#: What every JSON line holds, renamed as an operator reads it; ``exc_info`` is added when there is one.
_FIELDS = ("levelname", "name", "message", "request_id", "process")
_RENAMED = {"levelname": "level", "name": "logger", "exc_info": "exception"}
_TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: An id taken from a proxy's X-Request-Id: short, and only characters no log or shell reads as anything.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_request_id: ContextVar[str | None] = ContextVar("sspm_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request (or job, or scheduler run) this code runs for; None outside one."""
    return _request_id.get()


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it can go in a log line as it is (bounded length and characters), else None."""
    return value if value is not None and _SANE_ID.fullmatch(value) else None


def bind_request_id(value: str | None) -> None:
    """Make ``value`` the id of what this thread does from now on (None: no id)."""
    _request_id.set(value)


@contextlib.contextmanager
def request_id(value: str | None) -> Iterator[str | None]:
    """Run the block under ``value`` (a job, a scheduler run), then restore the id before it."""
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record a handler writes (a handler's filter
    sees records propagated from every logger, unlike a logger's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class _UtcTextFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def format(self, record: logging.LogRecord) -> str:
        said = record.__dict__.get("request_id")
        record.request_id = said or "-"
        try:
            return super().format(record)
        finally:
            record.request_id = said


def formatter(kind: str = "json") -> logging.Formatter:
    """The formatter of every SSPM line: JSON (UTC ISO 8601 ``timestamp``), or plain text."""
    if kind == "text":
        return _UtcTextFormatter(_TEXT)
    return JsonFormatter(list(_FIELDS), rename_fields=_RENAMED, timestamp=True, json_ensure_ascii=False)


_HANDLER_MARK = "_sspm_handler"


def setup(kind: str = "json", level: str | int = "INFO", *, stream: Any = None) -> logging.Handler:
    """Send every logger's records at ``level`` and above to stderr (or ``stream``) in ``kind``; the handler.

    Once per process (the worker, the scheduler, gunicorn's app through
    sspm.wsgi); calling again replaces what the last call set up, so a test
    can point it at a buffer. Libraries' own loggers (RQ, gunicorn's through
    ``GunicornLogger``) go through the same handler.
    """
    if kind not in FORMATS:
        raise ValueError(f"SSPM_LOG_FORMAT must be one of {', '.join(FORMATS)} (got {kind!r})")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter(kind))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("sspm").setLevel(level)  # set, so create_app's default (INFO) leaves it as asked
    # Alembic says at INFO which dialect it found each time a process checks the schema: noise on
    # every start and in every command's output (its problems still show, at WARNING and above).
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    return handler


class GunicornLogger(_GunicornLogger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's own lines in SSPM's format: ``--logger-class sspm.infra.logs.GunicornLogger``.

    Its error log (start, stop, worker timeouts) gets SSPM's formatter. Its
    access log, in JSON, is one object per request with the method, the
    path without its query string (an emailed link's one-time token travels
    in one), the status, the bytes sent, the time taken and the request's
    id as the app set it; in text it keeps ``--access-logformat``. The
    format is read from SSPM_LOG_FORMAT as the settings would read it, at
    gunicorn's start, before the app is loaded.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from sspm.infra.settings import read_values

        self._sspm_format = read_values().get("SSPM_LOG_FORMAT", "json").strip() or "json"
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter(self._sspm_format))
                handler.addFilter(RequestIdFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self._sspm_format == "text":
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = {name.lower(): value for name, value in resp.headers}
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "request_id": sane_request_id(headers.get("x-request-id")),
                "method": method,
                "path": path,
                "status": int(status),
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "remote_addr": environ.get("REMOTE_ADDR"),
            },
        )


#: Each committed audit event, as one JSON line (sspm.account.audit writes it).
AUDIT_EVENTS = logging.getLogger("sspm.audit.events")
AUDIT_EVENTS.propagate = False
_shipper = AUDIT_EVENTS


def ship_to(syslog: str = "", json_file: Path | None = None) -> None:
    """Send each event, once committed, to syslog and/or a JSON-lines file (ASVS 16.4.3).

    ``syslog`` is ``udp://host:port`` or the path of a local socket
    (``/dev/log``). Replaces what an earlier call set up; neither: off.
    Raises OSError when the file cannot be opened; a syslog socket not
    listening yet is tried again at each event, as openlog() does. A copy
    that cannot be delivered (syslog away) is lost, never a reason to
    refuse the user: the chain in the database stays the record.
    """
    for handler in list(_shipper.handlers):
        _shipper.removeHandler(handler)
        handler.close()
    if syslog:
        if syslog.startswith("udp://"):
            where = urlsplit(syslog)
            address: str | tuple[str, int] = (where.hostname or "127.0.0.1", where.port or 514)
        else:
            address = syslog
        to_syslog = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH)
        to_syslog.setFormatter(logging.Formatter("sspm-audit: %(message)s"))
        _shipper.addHandler(to_syslog)
    if json_file is not None:
        to_file = logging.FileHandler(json_file, encoding="utf-8")  # opened now: a wrong path stops the start
        to_file.setFormatter(logging.Formatter("%(message)s"))
        _shipper.addHandler(to_file)
    _shipper.setLevel(logging.INFO if _shipper.handlers else logging.CRITICAL + 1)
