"""SSPM_REDIS_URL: the Sentinel form is read exactly as documented, and a malformed one stops the start
with one plain line (never the password)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.sentinel import SentinelConnectionPool

from sspm.infra import redisconn
from sspm.infra.redisconn import SentinelGroup
from sspm.infra.settings import ConfigError, load

#: Enough of a configuration for the settings to get as far as Redis (no server is asked).
BASE = {
    "SSPM_SECRET_KEY": "x" * 40,
    "LDAP_CA_FILE": "/etc/hostname",
    "LDAP_BASE_DN": "dc=example,dc=org",
    "LDAP_BIND_DN": "cn=sspm,dc=example,dc=org",
    "LDAP_BIND_PASSWORD": "not-a-real-one",
}


@pytest.mark.parametrize(
    ("url", "group"),
    [
        (
            "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381/sspm/0",
            SentinelGroup((("127.0.0.1", 26379), ("127.0.0.1", 26380), ("127.0.0.1", 26381)), "sspm", 0),
        ),
        ("redis+sentinel://s1.example:5000/cache", SentinelGroup((("s1.example", 5000),), "cache", 0)),
        ("redis+sentinel://s1,s2:26380/sspm/3/", SentinelGroup((("s1", 26379), ("s2", 26380)), "sspm", 3)),
        ("REDIS+SENTINEL://[::1]:26379/sspm", SentinelGroup((("::1", 26379),), "sspm", 0)),
        (
            "redis+sentinel://:p%40ss@h:1/svc/2",
            SentinelGroup((("h", 1),), "svc", 2, password="p@ss"),
        ),
        (
            "redis+sentinel://app:pw@h:1/svc",
            SentinelGroup((("h", 1),), "svc", 0, password="pw", username="app"),
        ),
    ],
)
def test_a_sentinel_url_names_its_sentinels_service_database_and_password(url: str, group: SentinelGroup) -> None:
    assert redisconn.is_sentinel(url)
    assert redisconn.parse_sentinel(url) == group
    assert redisconn.problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h:26379", "names no Sentinel service"),
        ("redis+sentinel://h:26379/", "names no Sentinel service"),
        ("redis+sentinel://h:26379/sspm/zero", "only the database number"),
        ("redis+sentinel://h:26379/sspm/0/1", "only the database number"),
        ("redis+sentinel://h:99999/sspm", "has no usable port"),
        ("redis+sentinel://h:0/sspm", "has no usable port"),
        ("redis+sentinel://h1,,h2/sspm", "is not a sentinel address"),
        ("redis+sentinel://h one:1/sspm", "is not a sentinel address"),
        ("redis+sentinel://secret@h:1/sspm", "write the password as :password@"),
        ("redis+sentinel:///sspm", "is not a sentinel address"),
        ("sentinel://h:1/sspm", "must be a redis://"),
        ("http://h:1/0", "must be a redis://"),
    ],
)
def test_a_malformed_url_is_refused_with_one_plain_line(url: str, says: str) -> None:
    problem = redisconn.problem(url)
    assert problem is not None and says in problem
    assert "\n" not in problem and "secret" not in problem


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380/1", "unix:///run/r.sock"])
def test_a_plain_url_stays_as_it_was(url: str) -> None:
    assert not redisconn.is_sentinel(url)
    assert redisconn.problem(url) is None


def test_the_settings_refuse_a_malformed_sentinel_url_and_take_a_good_one() -> None:
    with pytest.raises(ConfigError, match="SSPM_REDIS_URL names no Sentinel service"):
        load(env_file=Path("/nonexistent/.env"), environ={**BASE, "SSPM_REDIS_URL": "redis+sentinel://h:26379"})
    good = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/sspm/0"
    assert load(env_file=Path("/nonexistent/.env"), environ={**BASE, "SSPM_REDIS_URL": good}).redis_url == good


def test_a_sentinel_url_gives_a_client_of_the_services_primary_that_asks_the_sentinels() -> None:
    """Nothing is connected yet: the pool asks the sentinels when a command needs a connection."""
    client = redisconn.connect("redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/sspm/4", socket_timeout=3)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.is_master) == ("sspm", True)
    assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "pw"
    assert pool.connection_kwargs["socket_timeout"] == 3
    asked = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(a["host"], a["port"], a.get("password")) for a in asked] == [
        ("127.0.0.1", 1, None),
        ("127.0.0.1", 2, None),
    ]
    client.close()
