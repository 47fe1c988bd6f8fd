"""Redis under Sentinel: the app, a worker and the scheduler follow a failover by themselves,
and the limits fail closed while Redis is away.

Everything is real: a primary, its replica and three sentinels (lab/redis.py),
the app on ``SSPM_REDIS_URL=redis+sentinel://...``, ``python worker.py`` and
``python -m sspm scheduler`` as an operator runs them. The primary is
SIGKILLed as a crash would take it. What is asserted is outcomes and counts,
never a duration: no 500, no request served without its limit counted, the
same processes working on the new primary afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Worker as RQWorker
from rq.scheduler import RQScheduler
from werkzeug.test import TestResponse

from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.redis import SentinelCluster, start_redis, start_sentinel_cluster
from sspm.email.jobs import QUEUE
from sspm.infra import redisconn
from tests.flows.test_change_password import SUCCESS_TITLE
from tests.flows.test_email import CHECK_EMAIL, EMAIL_ENV, ask_for_link, messages_to
from tests.flows.test_email_failures import worker_process
from tests.flows.test_scheduler import scheduler as scheduler_on
from tests.flows.test_scheduler import ticks
from tests.support import Backing
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    answer,
    browser_session,
    csrf_token,
    reason_in,
    says,
    seed_enrolled,
    start,
    text_in,
    verdict,
)

ROOT = Path(__file__).resolve().parents[2]
#: How long the test waits for something before giving up (a guard, not a measure).
PATIENCE = 90.0
BUSY_TITLE = "Please try again in a minute"
#: A name nobody has: its attempts count like anyone's, and no account gets locked by them.
LIMITED = "nobody-here"
LIMITS = {"SSPM_LIMIT_PER_ACCOUNT": "3 per hour", "SSPM_LIMIT_PER_IP": "1000 per hour"}
SECOND_PASSWORD = "Copper-Meadow-Lantern-73"


def wait_until(what: str, done: Callable[[], object], *, alive: Callable[[], str | None] = lambda: None) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        died = alive()
        assert died is None, f"waiting for {what}: {died}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with start_sentinel_cluster(tmp_path / "sentinel") as started:
        yield started


def wrong_attempt(visitor: Visitor, token: str) -> TestResponse:
    """One Change Password attempt at the limited name (counted in the shared per-name bucket)."""
    fields = {"username": LIMITED, "current": "not-it", "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    return visitor.post("/change", {**fields, "csrf_token": token})


def changed(visitor: Visitor, person: SeedAccount, new: str) -> bool:
    done = visitor.change_password(person.uid, person.password, new)
    return done.status_code == 303 and says(visitor.follow(done), SUCCESS_TITLE)


def test_after_a_failover_the_app_a_worker_and_the_scheduler_carry_on_and_meanwhile_nothing_is_let_through(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    cluster: SentinelCluster,
    tmp_path: Path,
) -> None:
    john, eloise, laura, anna = accounts["normal"], accounts["nonascii"], accounts["other"], accounts["expiring"]
    app = build_app(slapd, **EMAIL_ENV, **LIMITS, SSPM_REDIS_URL=cluster.url)
    seed_enrolled(app, laura, anna)
    admin = redisconn.connect(cluster.url, socket_timeout=5)
    worker_log, scheduler_log = tmp_path / "worker.log", tmp_path / "scheduler.log"
    with (
        worker_process(slapd, backing, worker_log, redis_url=cluster.url) as worker,
        scheduler_on(slapd, backing, cluster.url, scheduler_log) as scheduler,
    ):

        def worker_died() -> str | None:
            return None if worker.poll() is None else "the worker died:\n" + worker_log.read_text()[-3000:]

        wait_until("the worker starting", lambda: RQWorker.all(connection=admin), alive=worker_died)
        wait_until("its scheduler starting", lambda: admin.exists(RQScheduler.get_locking_key(QUEUE)))
        wait_until("the scheduler ticking", lambda: ticks(admin))

        # Before: a change, a reset email, the limited name's bucket emptied, two challenges open.
        visitor = Visitor(app)
        assert changed(visitor, john, NEW_PASSWORD)
        assert ask_for_link(visitor, john.uid).status_code == 200
        # "Your password was changed", then the reset link.
        wait_until("john's two emails", lambda: len(messages_to(backing.mailbox, john.mail)) == 2, alive=worker_died)
        token = csrf_token(visitor.get("/change").text)
        assert [wrong_attempt(visitor, token).status_code for _ in range(4)] == [422, 422, 422, 429]
        kept, lost = Visitor(app), Visitor(app)
        assert start(kept, "forgot", laura.uid).status_code == 303
        assert start(lost, "forgot", anna.uid).status_code == 303
        # What the primary holds has reached the replica: the counts, the challenges, the queue.
        assert admin.execute_command("WAIT", 1, 10_000) == 1

        old = cluster.kill_primary()
        statuses = [wrong_attempt(visitor, token).status_code]
        while statuses[-1] == 503:
            assert len(statuses) < 10_000, "Redis never came back"
            time.sleep(0.05)  # a steady trickle, not a busy loop
            statuses.append(wrong_attempt(visitor, token).status_code)
        new = cluster.wait_for_new_primary(PATIENCE)
        assert new != old

        # Never a 500, never an attempt let through uncounted: only "try again" or "too many".
        assert set(statuses) <= {503, 429}, statuses
        assert statuses[-1] == 429, "the bucket emptied before the failover is still empty"
        print(f"failover: {statuses.count(503)} requests answered 503 before the new primary took over")

        # After: the same app, worker and scheduler, on the new primary.
        assert changed(Visitor(app), eloise, SECOND_PASSWORD)
        assert verdict(directory, eloise.uid, SECOND_PASSWORD) is Outcome.OK
        asked = ask_for_link(Visitor(app), eloise.uid)
        assert asked.status_code == 200 and says(asked, text_in(app, CHECK_EMAIL))
        wait_until(
            "eloise's two emails, asked for after the failover",
            lambda: len(messages_to(backing.mailbox, eloise.mail)) == 2,
            alive=worker_died,
        )
        after = max(ticks(admin) or [0])
        wait_until("the scheduler ticking on the new primary", lambda: max(ticks(admin) or [0]) > after + 5)
        assert scheduler.process.poll() is None, scheduler.said()[-3000:]

        # A challenge the new primary holds goes on; one it lost (as a failover loses
        # what had not reached the replica: here deleted there) costs a plain "start again".
        assert answer(kept, DEMO_ANSWERS).status_code == 303
        challenge_id = browser_session(lost)["challenge"]
        assert admin.delete(f"sspm:challenge:{challenge_id}") == 1
        gone = lost.get("/recovery/challenge")
        assert gone.status_code == 410
        assert says(gone, reason_in(app, "challenge_gone"))
        assert worker.poll() is None, worker_log.read_text()[-3000:]
        for log in (worker_log, scheduler_log):
            assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    for person in (john, eloise):  # "your password was changed", then the reset link: each once
        subjects = [message["Subject"] for message in messages_to(backing.mailbox, person.mail)]
        assert len(subjects) == len(set(subjects)) == 2, subjects


def waits_seen(server_url: str) -> int:
    """How many WAIT commands a Redis server has run (its own command statistics)."""
    stats = redis.Redis.from_url(server_url).info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


def test_under_sentinel_a_queued_email_is_on_the_replica_before_the_page_answers(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], cluster: SentinelCluster, tmp_path: Path
) -> None:
    # A job only the primary held would die with it: the reset link the page just promised, never sent.
    app = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=cluster.url)
    primary_port = cluster.primary_port()
    (primary,) = [node for node in cluster.nodes if node.port == primary_port]
    (replica,) = [node for node in cluster.nodes if node.port != primary_port]
    assert ask_for_link(Visitor(app), accounts["normal"].uid).status_code == 200
    assert waits_seen(primary.url) == 1
    assert redis.Redis.from_url(replica.url).llen(f"rq:queue:{QUEUE}") == 1, "the replica holds the job already"

    # Promoted, the replica has no replica of its own: jobs then wait for nobody (once in vain at most).
    cluster.kill_primary()
    assert cluster.wait_for_new_primary() == replica.port
    visitor = Visitor(app)
    for name in ("klee", "achen", "tnguyen"):

        def asked(name: str = name) -> bool:
            return ask_for_link(visitor, name).status_code == 200

        wait_until(f"a reset email for {name} after the failover", asked)
    assert redis.Redis.from_url(replica.url).llen(f"rq:queue:{QUEUE}") == 4, "the first job survived the primary"
    assert waits_seen(replica.url) <= 1

    # On a Redis without Sentinel (and so, here, without a replica) nothing is waited for.
    plain = start_redis(tmp_path / "plain")
    try:
        alone = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=plain.url)
        assert ask_for_link(Visitor(alone), accounts["normal"].uid).status_code == 200
        assert redis.Redis.from_url(plain.url).llen(f"rq:queue:{QUEUE}") == 1
        assert waits_seen(plain.url) == 0
    finally:
        plain.stop()


def test_with_redis_stopped_every_limited_request_is_refused_with_try_again_and_nothing_is_changed(
    build_app: AppFactory,
    slapd: Slapd,
    directory: Directory,
    accounts: dict[str, SeedAccount],
    backing: Backing,
    tmp_path: Path,
) -> None:
    """The limits fail closed: no per-process counters, no request served uncounted."""
    john = accounts["normal"]
    server = start_redis(tmp_path / "redis")
    try:
        app = build_app(slapd, **EMAIL_ENV, SSPM_REDIS_URL=server.url)
        visitor = Visitor(app)
        forms = {path: csrf_token(visitor.get(path).text) for path in ("/change", "/signin", "/forgot/email")}
        server.stop()

        sent = {
            "/change": {"username": john.uid, "current": john.password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "/signin": {"username": john.uid, "password": john.password},
            "/forgot/email": {"username": john.uid},
        }
        for path, fields in sent.items():
            refused = visitor.post(path, {**fields, "csrf_token": forms[path]})
            assert refused.status_code == 503, path
            assert says(refused, text_in(app, BUSY_TITLE)), path
        assert visitor.get("/change").status_code == 200, "a page that counts nothing still opens"
        assert verdict(directory, john.uid, john.password) is Outcome.OK, "nothing was changed"
        assert not backing.mailbox.messages
    finally:
        server.stop()
