"""Each request's id: on every log line of the request, in the response, and in the jobs it queues.

Taken from the ``X-Request-Id`` header only behind trusted proxies
(SSPM_TRUSTED_PROXIES above 0: the proxy sets it, or strips what a client
sent), and only when it looks like an id (``logs.sane_request_id``); else a
new one. A client reaching the app directly cannot choose the id its lines
are filed under. The id is held by ``sspm.infra.logs`` (a context variable),
which the log handler and ``sspm.infra.jobs`` read without knowing Flask.
"""

from __future__ import annotations

from flask import Flask, Response, request

from sspm.infra import logs

HEADER = "X-Request-Id"


def init_app(app: Flask, *, trusted_proxies: int) -> None:
    """Register first, so that every other hook's lines carry the id."""

    @app.before_request
    def _take_id() -> None:
        offered = logs.sane_request_id(request.headers.get(HEADER)) if trusted_proxies else None
        logs.bind_request_id(offered or logs.new_request_id())

    @app.after_request
    def _say_id(response: Response) -> Response:
        said = logs.current_request_id()
        if said is not None:
            response.headers[HEADER] = said
        return response

    @app.teardown_request
    def _drop_id(_: BaseException | None) -> None:
        logs.bind_request_id(None)  # a thread serves the next request with a new id
