"""/healthz and /readyz, as a load balancer asks them: cheap, unauthenticated, and saying nothing an attacker wants."""

from __future__ import annotations

import json
from pathlib import Path

from lab import Slapd
from lab.redis import start_redis
from tests.support.flows import AppFactory, Visitor


def answer(visitor: Visitor, path: str) -> tuple[int, dict[str, object], str]:
    page = visitor.get(path)
    return page.status_code, json.loads(page.get_data(as_text=True)), page.get_data(as_text=True)


def test_a_healthy_node_is_alive_and_ready(build_app: AppFactory, slapd: Slapd) -> None:
    visitor = Visitor(build_app(slapd))

    assert answer(visitor, "/healthz")[:2] == (200, {"status": "alive"})
    assert answer(visitor, "/readyz")[:2] == (200, {"status": "ready"})


def test_a_node_whose_redis_went_away_is_alive_but_not_ready_and_says_only_which(
    build_app: AppFactory, slapd: Slapd, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path / "redis")
    try:
        app = build_app(slapd, SSPM_REDIS_URL=redis.url)
        visitor = Visitor(app)
        assert answer(visitor, "/readyz")[0] == 200
        redis.stop()

        assert answer(visitor, "/healthz")[:2] == (200, {"status": "alive"}), "a liveness probe must not restart it"
        status, body, text = answer(visitor, "/readyz")
        assert (status, body) == (503, {"status": "not ready", "failing": ["redis"]})
        assert str(redis.port) not in text and "127.0.0.1" not in text
    finally:
        redis.stop()


def test_a_node_whose_directory_is_down_is_not_ready_and_names_no_server(build_app: AppFactory, slapd: Slapd) -> None:
    visitor = Visitor(build_app(slapd, LDAP_CONNECT_TIMEOUT="1", LDAP_TIMEOUT="1"))
    assert answer(visitor, "/readyz")[0] == 200
    slapd.stop()

    status, body, text = answer(visitor, "/readyz")

    assert (status, body) == (503, {"status": "not ready", "failing": ["directory"]})
    assert "ldap" not in text.lower() and slapd.ldaps_url.rsplit(":", 1)[1] not in text
