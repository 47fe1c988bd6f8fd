"""``python -m sspm health worker|scheduler``: what a systemd check or an orchestrator's probe runs.

Real processes (``python worker.py``, ``python -m sspm scheduler``) on the
test's own Redis; the health command is run as an operator runs it, and
its exit status and line are what is checked. A process killed with
SIGKILL leaves its record in Redis (RQ's registration lives minutes, the
scheduler's heartbeat 30 s): on its own host it must read dead at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from rq import Worker as RQWorker

from lab import Slapd
from lab.env import sspm_environ
from sspm.infra import schedule
from tests.support import Backing

ROOT = Path(__file__).resolve().parents[2]
#: A guard on waiting for a process to come up, not a measure.
PATIENCE = 60.0
HOST = socket.gethostname()


def environ(slapd: Slapd, backing: Backing) -> dict[str, str]:
    return {
        **os.environ,
        **sspm_environ(slapd, redis_url=backing.redis_url, database_url=backing.database_url),
        "PYTHONPATH": str(ROOT),
    }


def health(slapd: Slapd, backing: Backing, *arguments: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "sspm", "health", *arguments],
        cwd=ROOT,
        env=environ(slapd, backing),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("sspm:")]
    assert len(lines) == 1, done.stdout + done.stderr
    return done.returncode, lines[0]


@contextmanager
def running(command: list[str], slapd: Slapd, backing: Backing, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ(slapd, backing),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # its own group, as under systemd: a kill takes RQ's scheduler too
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(what: str, done: Callable[[], object], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert process.poll() is None, f"died waiting for {what}:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"never saw {what}:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.05)


def test_a_worker_is_alive_while_it_runs_serving_its_queues_and_dead_once_killed(
    slapd: Slapd, backing: Backing, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(backing.redis_url)
    assert health(slapd, backing, "worker") == (1, f"sspm: no live worker on {HOST} serving any queue")

    log = tmp_path / "worker.log"
    with running([sys.executable, "worker.py", "email"], slapd, backing, log) as worker:
        wait_for("the worker registered", lambda: RQWorker.all(connection=connection), worker, log)
        code, line = health(slapd, backing, "worker", "email")
        assert code == 0, line
        assert line.startswith(f"sspm: 1 worker(s) on {HOST} serving email, last heartbeat ")
        assert health(slapd, backing, "worker")[0] == 0, "any queue"
        assert health(slapd, backing, "worker", "sync") == (1, f"sspm: no live worker on {HOST} serving sync")
        assert health(slapd, backing, "worker", "email", "sync")[0] == 1, "serving both is asked"

        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        assert RQWorker.all(connection=connection), "its registration outlives it in Redis"
        assert health(slapd, backing, "worker", "email") == (1, f"sspm: no live worker on {HOST} serving email")


def test_the_scheduler_is_alive_while_it_ticks_and_dead_once_killed(
    slapd: Slapd, backing: Backing, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(backing.redis_url)
    assert health(slapd, backing, "scheduler") == (1, f"sspm: no scheduler ticking on {HOST}")

    log = tmp_path / "scheduler.log"
    command = [sys.executable, "-m", "sspm", "scheduler", "--tick", "0.05"]
    with running(command, slapd, backing, log) as one, running(command, slapd, backing, tmp_path / "2.log") as two:
        beats = f"{schedule.HEARTBEAT_PREFIX}*"
        wait_for("both schedulers ticking", lambda: len(connection.keys(beats)) == 2, one, log)
        assert health(slapd, backing, "scheduler") == (0, f"sspm: 2 scheduler(s) ticking on {HOST}")

        os.killpg(one.pid, signal.SIGKILL)
        one.wait()
        assert len(connection.keys(beats)) == 2, "the killed one's heartbeat has not expired yet"
        assert health(slapd, backing, "scheduler") == (0, f"sspm: 1 scheduler(s) ticking on {HOST}")

        two.send_signal(signal.SIGTERM)
        assert two.wait(PATIENCE) == 0
        assert health(slapd, backing, "scheduler") == (1, f"sspm: no scheduler ticking on {HOST}")
        # Their heartbeats still live in Redis; on their own host the pids say otherwise, even --anywhere.
        assert health(slapd, backing, "scheduler", "--anywhere") == (1, "sspm: no scheduler ticking anywhere")


def test_a_question_about_a_queue_that_does_not_exist_is_refused(slapd: Slapd, backing: Backing) -> None:
    assert health(slapd, backing, "worker", "emails") == (2, "sspm: no queue 'emails' to ask about")
