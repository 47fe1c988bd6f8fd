"""A request's id: in its response, in its log lines, and in the lines of the jobs it queued.

The email story runs ``python worker.py email`` as an operator does (JSON
lines on stderr, the default), against this test's Redis, database and
mail catcher: the id the app answered with is the one the worker's line
for the email job carries. The id a client sends is taken only from behind
a trusted proxy, and only when it looks like an id.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue

from lab import SeedAccount, Slapd
from lab.env import sspm_environ
from lab.slapd import free_port
from sspm.infra import jobs, logs, schedule
from tests.flows.test_email import EMAIL_ENV, ask_for_link, messages_to
from tests.flows.test_worker_queues import worker_for
from tests.support import Backing
from tests.support.flows import AppFactory, Visitor

HEADER = "X-Request-Id"
ROOT = Path(__file__).resolve().parents[2]
#: How long a test waits for gunicorn to answer before giving up (a guard, not a measure).
PATIENCE = 60


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The app's log lines, as SSPM's JSON handler writes them, into a buffer."""
    root, sspm_log = logging.getLogger(), logging.getLogger("sspm")
    levels = (root.level, sspm_log.level)
    buffer = io.StringIO()
    handler = logs.setup("json", "INFO", stream=buffer)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sspm_log.setLevel(levels[1])


def lines_of(text: str) -> list[dict[str, object]]:
    """Every line, each parsed as the one JSON object it must be."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_worker_logs_the_email_job_under_the_id_of_the_request_that_queued_it(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, tmp_path: Path
) -> None:
    john = accounts["normal"]
    app = build_app(slapd, **EMAIL_ENV)
    connection = redis.Redis.from_url(backing.redis_url)
    with worker_for(slapd, backing, tmp_path / "email.log", [jobs.EMAIL]) as worker:
        asked = ask_for_link(Visitor(app), john.uid)
        assert asked.status_code == 200
        request_id = asked.headers[HEADER]
        worker.wait_for("the reset email", lambda: messages_to(backing.mailbox, john.mail))
        finished = Queue(jobs.EMAIL, connection=connection).finished_job_registry
        worker.wait_for("the email job ending", finished.get_job_ids)
        assert worker.stop() == 0, worker.said()[-3000:]

    said = lines_of(worker.said())
    (job_line,) = [line for line in said if str(line["message"]).startswith("job sspm.email.jobs.send_reset_link")]
    assert job_line["request_id"] == request_id
    assert job_line["level"] == "INFO" and job_line["logger"] == "sspm.infra.jobs"
    assert str(job_line["timestamp"]).endswith("+00:00"), "UTC, ISO 8601"
    assert isinstance(job_line["process"], int) and job_line["process"] == worker.process.pid
    (job,) = Queue(jobs.EMAIL, connection=connection).finished_job_registry.get_job_ids()
    assert request_id not in json.dumps(
        Queue(jobs.EMAIL, connection=connection).fetch_job(job).args  # type: ignore[union-attr]
    ), "the id travels in the job's meta, not its arguments"


def test_every_line_of_a_request_carries_its_id_and_the_response_says_it(
    captured: io.StringIO, build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, **EMAIL_ENV)
    john = accounts["normal"]
    first = Visitor(app).change_password(john.uid, john.password, "Paprika-Sundial-Ferry-71")
    second = Visitor(app).get("/")

    first_id, second_id = first.headers[HEADER], second.headers[HEADER]
    assert len({first_id, second_id}) == 2 and all(len(i) == 32 for i in (first_id, second_id)), "a new uuid4 each"
    (changed,) = [line for line in lines_of(captured.getvalue()) if line["logger"] == "sspm.change.service"]
    assert changed["request_id"] == first_id and changed["level"] == "INFO"
    queued = redis.Redis.from_url(app.config["SSPM_SETTINGS"].redis_url)
    (job_id,) = Queue(jobs.EMAIL, connection=queued).get_job_ids()
    job = Queue(jobs.EMAIL, connection=queued).fetch_job(job_id)
    assert job is not None and job.meta == {jobs.REQUEST_ID: first_id}, "the notice it queued carries the id"


@pytest.mark.parametrize(
    ("proxies", "sent", "taken"),
    [
        pytest.param("1", "edge-7f3a9c.42", True, id="behind a trusted proxy: the proxy's id"),
        pytest.param("0", "edge-7f3a9c.42", False, id="no trusted proxy: a client cannot choose its id"),
        pytest.param("1", "x" * 65, False, id="too long"),
        pytest.param("1", 'id" with; spaces', False, id="characters a log could misread"),
        pytest.param("1", "", False, id="empty"),
    ],
)
def test_a_proxys_request_id_is_kept_only_when_trusted_and_sane(
    build_app: AppFactory, slapd: Slapd, proxies: str, sent: str, taken: bool
) -> None:
    app = build_app(slapd, SSPM_TRUSTED_PROXIES=proxies)
    answered = app.test_client().get("/healthz", headers={HEADER: sent})
    got = answered.headers[HEADER]
    if taken:
        assert got == sent
    else:
        assert got != sent and len(got) == 32 and int(got, 16) >= 0


def test_under_gunicorn_its_own_lines_and_the_access_log_are_json_without_query_strings(
    slapd: Slapd, backing: Backing, tmp_path: Path
) -> None:
    """``--logger-class sspm.infra.logs.GunicornLogger``, as the README runs gunicorn."""
    port, log = free_port(), tmp_path / "gunicorn.log"
    environ = {
        **os.environ,
        **sspm_environ(
            slapd, redis_url=backing.redis_url, database_url=backing.database_url, smtp_port=backing.smtp_port
        ),
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-m", "gunicorn", "--preload", "-w", "1", "-b", f"127.0.0.1:{port}"]
    argv += ["--logger-class", "sspm.infra.logs.GunicornLogger", "--access-logfile", "-", "sspm.wsgi:app"]
    with log.open("wb") as out:
        server = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=out, stderr=out, start_new_session=True)
    try:
        answer = None
        deadline = time.monotonic() + PATIENCE
        while answer is None:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?token=Never-In-A-Log", timeout=5)
            except OSError:
                time.sleep(0.05)
        request_id = answer.headers[HEADER]
        answer.close()
        deadline = time.monotonic() + PATIENCE
        while "/healthz" not in log.read_text():  # the access line follows the response
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(PATIENCE)

    said = lines_of(log.read_text())  # every line gunicorn, its worker and the app wrote: each one JSON
    assert "Never-In-A-Log" not in log.read_text()
    assert any(line["logger"] == "gunicorn.error" and "Listening at" in str(line["message"]) for line in said)
    (access,) = [line for line in said if line["logger"] == "gunicorn.access"]
    assert (access["method"], access["path"], access["status"]) == ("GET", "/healthz", 200)
    assert access["request_id"] == request_id and access["level"] == "INFO"


def test_each_scheduled_run_gets_an_id_of_its_own_which_its_job_carries(
    captured: io.StringIO, backing: Backing
) -> None:
    connection = redis.Redis.from_url(backing.redis_url)
    entries = (
        schedule.Scheduled("first", "tests.support.jobs.note", jobs.HOUSEKEEPING, 3600),
        schedule.Scheduled("second", "tests.support.jobs.note", jobs.HOUSEKEEPING, 3600),
    )
    assert schedule.Scheduler(connection, entries, name="test").tick() == ["first", "second"]

    said = [line for line in lines_of(captured.getvalue()) if str(line["message"]).startswith("Scheduler: enqueued")]
    ids = [line["request_id"] for line in said]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(ids), "one id per run"
    queue = Queue(jobs.HOUSEKEEPING, connection=connection)
    carried = [job.meta[jobs.REQUEST_ID] for job in queue.jobs]
    assert carried == ids
