"""Pages that do not need the directory, while the directory is frozen.

    python -m bench.frozen_directory [--waiting 16] [--seconds 20] [--set KEY=VALUE]

The outage this measures: the directory keeps its sockets open but answers
nothing (slapd stopped with SIGSTOP, as a hung server or a black-holed
network looks). SSPM runs as in production (gunicorn --preload -w 2
--threads 4, the README's command line but with the demo's 2 workers) on a
private slapd, Redis and SQLite database. Then:

1. healthy: a prober fetches a static file (/static/css/sspm.css) and the
   home page (/) one after the other, for a few seconds;
2. frozen: slapd is stopped, ``--waiting`` client threads each keep one
   sign-in (POST /signin, a user name nobody has, so it never changes
   anything) waiting on the directory, sending the next as soon as one is
   answered, while the prober goes on for ``--seconds``. Every request is
   on a new connection, so requests land on the workers as strangers'
   do; the default 16 waiting (8 per worker) is what it takes to fill
   2 x 4 threads whichever way they land;
3. thawed: slapd is continued, and the time until a sign-in gets the
   directory's answer again is measured.

It prints, per phase, the static and home latencies (median, p95, max) and
what the sign-ins got (how many, by status, and how long they waited). No
figure here is asserted anywhere; the tests check the behaviour
(tests/flows/test_frozen_directory.py).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.change_password import migrated_database, start_gunicorn, stop, tail
from lab import Slapd, start_slapd
from lab.redis import start_redis
from lab.smtp import start_smtp

_CSRF = re.compile(r'name="csrf_token"[^>]*\bvalue="([^"]+)"')
STATIC = "/static/css/sspm.css"
HOME = "/"
#: Nobody has this name: a sign-in with it costs a search and a decoy bind, and changes nothing.
NOBODY = "nobody-frozen-bench"
CLIENT_TIMEOUT = 120.0


@dataclass
class Timings:
    """Latencies in seconds, and the statuses seen."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)

    def add(self, seconds: float, status: int | str) -> None:
        self.latencies.append(seconds)
        self.statuses[status] += 1

    def summary(self) -> str:
        if not self.latencies:
            return f"{'-':>8} {'-':>8} {'-':>8} {0:>6}  -"
        ordered = sorted(self.latencies)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        statuses = " ".join(f"{status}x{count}" for status, count in sorted(self.statuses.items(), key=str))
        return (
            f"{1000 * statistics.median(ordered):8.0f} {1000 * p95:8.0f} {1000 * ordered[-1]:8.0f}"
            f" {len(ordered):6}  {statuses}"
        )


def probe(base: str, until: float, static: Timings, home: Timings, pause: float = 0.1) -> None:
    """Fetch the static file, then the home page, again and again until ``until``.

    Each fetch on a new connection, as a new visitor's: whichever worker
    accepts it serves it, so the figures do not hang on which worker one
    kept-alive connection happened to land on.
    """
    while time.monotonic() < until:
        for path, into in ((STATIC, static), (HOME, home)):
            began = time.monotonic()
            try:
                status: int | str = requests.get(base + path, timeout=CLIENT_TIMEOUT).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            into.add(time.monotonic() - began, status)
        time.sleep(pause)


def signin_form(base: str) -> tuple[requests.Session, str]:
    """A browser that loaded the sign-in page: its cookie and the form's CSRF token."""
    session = requests.Session()
    # A new connection per request, so the waiting sign-ins spread over the workers as strangers' do.
    session.headers["Connection"] = "close"
    page = session.get(base + "/signin", timeout=CLIENT_TIMEOUT)
    found = _CSRF.search(page.text)
    if page.status_code != 200 or not found:
        raise RuntimeError(f"GET /signin answered {page.status_code} without a form")
    return session, found.group(1)


def sign_in(base: str, session: requests.Session, token: str) -> int | str:
    fields = {"username": NOBODY, "password": "Not-A-Password-17", "next": "", "csrf_token": token}
    try:
        response = session.post(
            base + "/signin",
            data=fields,
            headers={"Referer": base + "/signin"},
            allow_redirects=False,
            timeout=CLIENT_TIMEOUT,
        )
    except requests.RequestException as exc:
        return type(exc).__name__
    return int(response.status_code)


def keep_waiting(base: str, form: tuple[requests.Session, str], stop_at: threading.Event, into: Timings) -> None:
    """One client that always has a sign-in waiting on the directory."""
    session, token = form
    while not stop_at.is_set():
        began = time.monotonic()
        status = sign_in(base, session, token)
        into.add(time.monotonic() - began, status)


def freeze(slapd: Slapd) -> None:
    slapd.process.send_signal(signal.SIGSTOP)
    tasks = Path(f"/proc/{slapd.process.pid}/task")
    deadline = time.monotonic() + 10
    while not all(_stopped(stat) for stat in tasks.glob("*/stat")):
        if time.monotonic() > deadline:
            raise RuntimeError("slapd did not stop on SIGSTOP")
        time.sleep(0.001)


def _stopped(stat: Path) -> bool:
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frozen_directory", description=__doc__.split("\n")[0])
    parser.add_argument("--waiting", type=int, default=16, help="sign-ins kept waiting on the frozen directory (16)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the directory stays frozen (20)")
    parser.add_argument("--healthy", type=float, default=3.0, help="how long the healthy baseline lasts (3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra app setting")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.set):
        parser.error("--set takes KEY=VALUE")
    extra = dict(item.split("=", 1) for item in args.set)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.1f} at the start; other work on this machine adds to every figure")

    with tempfile.TemporaryDirectory(prefix="sspm-frozen-") as tmp:
        workdir = Path(tmp)
        slapd = start_slapd(workdir / "slapd")
        redis = start_redis(workdir / "redis")
        smtp = start_smtp()
        gunicorn: subprocess.Popen[bytes] | None = None
        log = workdir / "gunicorn.log"
        try:
            database_url = migrated_database(workdir)
            gunicorn, base, log = start_gunicorn(
                slapd, redis, database_url, workdir, args.workers, args.threads, extra, smtp_port=smtp.port
            )
            # Every worker reads the policy once (the home page shows it), and every client loads its form.
            forms = [signin_form(base) for _ in range(args.waiting)]
            for session, token in forms[: 2 * args.workers]:
                sign_in(base, session, token)
                session.get(base + HOME, timeout=CLIENT_TIMEOUT)

            healthy_static, healthy_home = Timings(), Timings()
            probe(base, time.monotonic() + args.healthy, healthy_static, healthy_home)

            frozen_static, frozen_home, waiting = Timings(), Timings(), Timings()
            stop_at = threading.Event()
            freeze(slapd)
            try:
                clients = [
                    threading.Thread(target=keep_waiting, args=(base, form, stop_at, waiting), daemon=True)
                    for form in forms
                ]
                for client in clients:
                    client.start()
                time.sleep(0.2)  # let every client have a sign-in in flight before the first probe
                probe(base, time.monotonic() + args.seconds, frozen_static, frozen_home)
                stop_at.set()
            finally:
                slapd.process.send_signal(signal.SIGCONT)
            thawed = time.monotonic()
            session, token = forms[0]
            while sign_in(base, session, token) == 503:
                time.sleep(0.05)
            recovered = time.monotonic() - thawed
            for client in clients:
                client.join(CLIENT_TIMEOUT)
        finally:
            if gunicorn is not None:
                stop(gunicorn)
            smtp.stop()
            redis.stop()
            slapd.stop()
        print(f"gunicorn --preload -w {args.workers} --threads {args.threads}; {args.waiting} sign-ins kept waiting")
        if extra:
            print("app settings: " + " ".join(f"{k}={v}" for k, v in extra.items()))
        print(f"{'':26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'n':>6}  statuses")
        print(f"{'healthy  static':26} {healthy_static.summary()}")
        print(f"{'healthy  home':26} {healthy_home.summary()}")
        print(f"{'frozen   static':26} {frozen_static.summary()}")
        print(f"{'frozen   home':26} {frozen_home.summary()}")
        print(f"{'frozen   sign-in (waiting)':26} {waiting.summary()}")
        print(f"after SIGCONT, a sign-in got the directory's answer again after {recovered:.2f} s")
        if gunicorn is not None and gunicorn.returncode not in (0, -signal.SIGINT, None):
            print(f"gunicorn log (tail):\n{tail(log)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
