"""The SMS gateway as production has it (SSPM_SMS_SENDER=http): a real local HTTP server stands in for it.

The gateway gets JSON with the bearer token read from SSPM_SMS_GATEWAY_TOKEN_FILE,
and the code it is handed proves the number as the catcher's does. A gateway
that refuses means "not sent, try again": nothing waits for a code, and the
page says so with a 503. A configuration SSPM cannot send with stops the start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lab import SeedAccount, Slapd
from sspm.infra.settings import ConfigError
from sspm.policy.reasons import Reason
from tests.flows.test_profile import ask_phone, code_in, details, give_code, signed_in
from tests.support import settings_for
from tests.support.flows import AppFactory, reason_in, says

TOKEN = "gateway-bearer-token-for-tests"


@dataclass
class Gateway:
    """What the local gateway received, and what it answers."""

    url: str
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    status: int = 202


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    found = Gateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            found.received.append((dict(self.headers), body))
            self.send_response(found.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/v1/messages"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def app(build_app: AppFactory, slapd: Slapd, gateway: Gateway, tmp_path: Path) -> Flask:
    token_file = tmp_path / "sms-token"
    token_file.write_text(TOKEN + "\n")
    return build_app(
        slapd, SSPM_SMS_SENDER="http", SSPM_SMS_GATEWAY_URL=gateway.url, SSPM_SMS_GATEWAY_TOKEN_FILE=str(token_file)
    )


def test_the_gateway_gets_json_with_the_bearer_token_and_its_code_proves_the_number(
    app: Flask, gateway: Gateway, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    visitor = signed_in(app, john)
    assert ask_phone(visitor, "613 555 0123", john.password).status_code == 303
    ((headers, body),) = gateway.received
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert body["to"] == "+16135550123" and len(body["id"]) == 32
    assert give_code(visitor, code_in(body["text"])).status_code == 303
    assert details(app, john.uid)[1] == "+16135550123"


def test_a_gateway_that_refuses_means_nothing_was_sent_and_nothing_waits(
    app: Flask, gateway: Gateway, accounts: dict[str, SeedAccount]
) -> None:
    john = accounts["normal"]
    gateway.status = 503
    visitor = signed_in(app, john)
    page = ask_phone(visitor, "613 555 0123", john.password)
    assert page.status_code == 503 and says(page, reason_in(app, Reason.SMS_UNAVAILABLE))
    assert len(gateway.received) == 1
    assert visitor.get("/profile/phone/code").status_code == 410, "no code waits for a text that never left"
    assert details(app, john.uid)[1] is None


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"SSPM_SMS_SENDER": "carrier-pigeon"}, "SSPM_SMS_SENDER"),
        ({"SSPM_SMS_SENDER": "http"}, "SSPM_SMS_GATEWAY_URL"),
        ({"SSPM_SMS_SENDER": "http", "SSPM_SMS_GATEWAY_URL": "http://sms.example/v1"}, "SSPM_SMS_GATEWAY_URL"),
        ({"SSPM_SMS_SENDER": "http", "SSPM_SMS_GATEWAY_URL": "https://sms.example/v1"}, "SSPM_SMS_GATEWAY_TOKEN"),
        ({"SSPM_PHONE_REGION": "Canada"}, "SSPM_PHONE_REGION"),
    ],
    ids=["unknown sender", "no gateway", "plain http elsewhere", "no token", "not a country code"],
)
def test_a_configuration_that_cannot_send_stops_the_start_naming_the_key(
    slapd: Slapd, environ: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        settings_for(slapd, **environ)
