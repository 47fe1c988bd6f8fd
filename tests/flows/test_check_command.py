"""``python -m sspm check``, as an operator runs it before serving anyone.

It builds what the web app and the worker build (sspm.infra.services.build),
without either, and says in one line whether every outside system answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab import Slapd
from lab.env import sspm_environ
from lab.slapd import free_port
from tests.support import Backing

ROOT = Path(__file__).resolve().parents[2]
#: A guard against a hung check, not a measure.
PATIENCE = 60.0


def check(slapd: Slapd, backing: Backing, **overrides: str) -> subprocess.CompletedProcess[str]:
    environ = sspm_environ(
        slapd,
        redis_url=backing.redis_url,
        database_url=backing.database_url,
        smtp_port=backing.smtp_port,
        **overrides,
    )
    return subprocess.run(
        [sys.executable, "-m", "sspm", "check"],
        cwd=ROOT,
        env={**os.environ, **environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def test_check_says_ok_when_the_directory_redis_and_the_database_answer(slapd: Slapd, backing: Backing) -> None:
    done = check(slapd, backing)
    assert (done.returncode, done.stdout.strip()) == (0, "sspm: configuration, directory, Redis and database OK")


def test_check_names_redis_when_it_does_not_answer(slapd: Slapd, backing: Backing) -> None:
    done = check(slapd, backing, SSPM_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 2
    assert done.stderr.startswith("sspm: cannot start: cannot reach Redis")
    assert "Traceback" not in done.stderr
