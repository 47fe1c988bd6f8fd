"""The audio CAPTCHA as a flood: CPU per clip, and the home page's latency under 16 looping listeners.

    python -m bench.captcha_audio [--clients 16] [--seconds 20] [--workers 2] [--threads 4]

Everything is real and on loopback: a private slapd, redis-server, a migrated
SQLite database, and SSPM under gunicorn (``--preload -w 2 --threads 4`` as
the demo). Two measures, each printed BEFORE (the audio as it was: captcha's
AudioCaptcha with its built-in voice, made in the request thread on every
GET, no limit) beside AFTER (this code):

1. CPU per clip: one process making clips of six random characters, one
   after another (AFTER: what the helper process spends per clip).
2. The home page under a flood: ``--clients`` threads each loop "open
   /forgot (a new CAPTCHA), fetch its audio" as fast as they are answered,
   while one more thread loads ``/`` one request after another and times it
   (every request on a new connection, see fresh_connections).
   The same is first measured with no flood (idle). Each run starts its own
   gunicorn: BEFORE on ``bench.captcha_audio:before()`` (the app with its
   audio route put back as it was), AFTER on ``sspm.wsgi:app``. The limits
   are raised in both, as for an attacker with many addresses (what the cache
   and the helper process must absorb on their own); a third column keeps
   the default per-address limit, as for a flood from one address; the last
   is the same clients opening /forgot only, never the audio: what such a
   flood of pages costs anyway, which no audio change can remove. Server
   CPU counts the gunicorn processes and their children (the helper
   processes), from /proc.

No assertion: it prints figures. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from captcha.audio import AudioCaptcha
from flask import Flask, make_response, session
from werkzeug.wrappers import Response

from bench.change_password import APP_PREFIXES, ROOT, migrated_database, proc_cpu, stop, tail
from lab import Slapd, free_port, start_slapd
from lab.env import sspm_environ
from lab.redis import RedisServer, start_redis
from lab.smtp import start_smtp
from sspm.app import create_app
from sspm.recovery import captcha
from sspm.recovery.captcha_audio import make
from sspm.web.context import services

RAISED = {"SSPM_LIMIT_PER_IP": "1000000 per minute", "SSPM_LIMIT_PER_ACCOUNT": "1000000 per minute"}


# -- BEFORE: the audio route as it was ------------------------------------------------------


def _old_audio() -> Response:
    """The route as it was: captcha's AudioCaptcha, built-in voice, made in the request thread every time."""
    cid = session.get("captcha")
    record = services().state.get("captcha", cid) if isinstance(cid, str) else None
    body = bytes(AudioCaptcha().generate(str(record["text"]))) if record else b""
    response = make_response(body, 200 if body else 404)
    response.mimetype = "audio/wav"
    response.headers["Cache-Control"] = "no-store"
    return response


def before() -> Flask:
    """gunicorn's app for the BEFORE runs: SSPM with its audio route put back as it was (no limit on it)."""
    app = create_app()
    app.view_functions["recovery.captcha_audio"] = _old_audio
    return app


# -- CPU per clip ----------------------------------------------------------------------------


def cpu_per_clip(make_one: Callable[[str], object], n: int) -> float:
    make_one("ACDEFH")  # voices loaded, caches warm
    began = time.process_time()
    for _ in range(n):
        make_one("".join(secrets.choice(captcha.ALPHABET) for _ in range(captcha.LENGTH)))
    return (time.process_time() - began) / n


# -- the flood -------------------------------------------------------------------------------


@dataclass
class Flood:
    name: str
    home_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    server_cpu: float = 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.home_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def serve(target: str, slapd: Slapd, redis: RedisServer, database_url: str, smtp_port: int, workdir: Path,
          workers: int, threads: int, limits: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_PREFIXES)}
    env.update(
        sspm_environ(
            slapd, redis_url=redis.url, database_url=database_url, smtp_port=smtp_port,
            SSPM_PUBLIC_BASE_URL=base, **limits,
        )
    )  # fmt: skip
    log = workdir / f"gunicorn-{port}.log"
    command = [sys.executable, "-m", "gunicorn", "--preload", "-w", str(workers), "--threads", str(threads)]
    command += ["-b", f"127.0.0.1:{port}", target]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"gunicorn not answering after 30 s:\n{tail(log)}")
        try:
            if requests.get(base + "/", timeout=2).status_code == 200:
                return process, base
        except requests.ConnectionError:
            pass
        time.sleep(0.05)


def server_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and all its descendants (gunicorn workers, their audio helpers)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += proc_cpu(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending += [int(child) for child in task.read_text().split()]
    return total


def fresh_connections() -> requests.Session:
    """A browser that opens a new connection per request (keeping its cookies).

    gunicorn's workers share the listening socket, and a kept-alive
    connection stays with the worker that accepted it: with kept-alive
    connections the home page's latency depended on which worker it had
    landed on beside how many listeners (from 40 ms to 8 s in three runs).
    A new connection per request is served by whichever worker accepts it.
    """
    browser = requests.Session()
    browser.headers["Connection"] = "close"
    return browser


def flood(
    name: str, base: str, gunicorn: subprocess.Popen[bytes], clients: int, seconds: float, *, audio: bool = True
) -> Flood:
    run = Flood(name)
    stopping = threading.Event()
    lock = threading.Lock()

    def listener() -> None:
        with fresh_connections() as browser:
            while not stopping.is_set():
                try:
                    status = browser.get(base + "/forgot", timeout=60).status_code
                    if audio:
                        status = browser.get(base + "/captcha/audio.wav", timeout=60).status_code
                except requests.RequestException:
                    status = 0
                with lock:
                    run.statuses[status] += 1

    def reader() -> None:
        with fresh_connections() as browser:
            while not stopping.is_set():
                began = time.perf_counter()
                ok = browser.get(base + "/", timeout=60).status_code == 200
                if ok and not stopping.is_set():
                    run.home_ms.append(1000 * (time.perf_counter() - began))
                time.sleep(0.05)  # a person clicking, not a second flood

    flooders = [threading.Thread(target=listener) for _ in range(clients)]
    for thread in flooders:
        thread.start()
    time.sleep(min(3.0, seconds / 4))  # the flood reaches its pace; the helpers have started
    with lock:
        run.statuses.clear()
    cpu, began = server_cpu(gunicorn.pid), time.perf_counter()
    timing = threading.Thread(target=reader)
    timing.start()
    time.sleep(seconds)
    run.seconds, run.server_cpu = time.perf_counter() - began, server_cpu(gunicorn.pid) - cpu
    stopping.set()
    for thread in [timing, *flooders]:
        thread.join()
    return run


def idle(base: str, n: int = 100) -> Flood:
    run = Flood("idle")
    with fresh_connections() as browser:
        for _ in range(n):
            began = time.perf_counter()
            if browser.get(base + "/", timeout=60).status_code == 200:
                run.home_ms.append(1000 * (time.perf_counter() - began))
    return run


def table(runs: list[Flood], clients: int) -> str:
    width = 22
    rows = [f"{'home page (GET /)':<28}" + "".join(f"{run.name:>{width}}" for run in runs)]

    def row(label: str, cell: Callable[[Flood], str]) -> None:
        rows.append(f"{label:<28}" + "".join(f"{cell(run):>{width}}" for run in runs))

    row("  median ms", lambda r: f"{statistics.median(r.home_ms):.0f}" if r.home_ms else "-")
    row("  p95 ms", lambda r: f"{r.pct(0.95):.0f}")
    row("  max ms", lambda r: f"{max(r.home_ms):.0f}" if r.home_ms else "-")
    row("  loads timed", lambda r: str(len(r.home_ms)))
    rows.append(f"audio fetches ({clients} clients)")

    def per_second(status: int) -> Callable[[Flood], str]:
        return lambda r: f"{r.statuses[status] / r.seconds:.1f}" if r.seconds else "-"

    for status, label in ((200, "200 (clip; page)"), (503, "503 try again"), (429, "429 limit"), (0, "error")):
        row(f"  {label} /s", per_second(status))
    row("server CPU s per s", lambda r: f"{r.server_cpu / r.seconds:.2f}" if r.seconds else "-")
    row("server CPU ms per 200", lambda r: f"{1000 * r.server_cpu / r.statuses[200]:.0f}" if r.statuses[200] else "-")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    old_voice = AudioCaptcha()
    old = cpu_per_clip(lambda text: old_voice.generate(text), 10)
    new = cpu_per_clip(lambda text: make(text, "en"), 200)
    print(f"CPU per clip:   before {1000 * old:.0f} ms   after {1000 * new:.1f} ms   ({old / new:.0f}x less)")
    print(f"(cpu count {os.cpu_count()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")

    with tempfile.TemporaryDirectory(prefix="sspm-bench-audio-") as tmp:
        workdir = Path(tmp)
        slapd = start_slapd(workdir / "slapd")
        redis = start_redis(workdir / "redis")
        smtp = start_smtp()
        database_url = migrated_database(workdir)
        runs: list[Flood] = []
        plan = [
            ("bench.captcha_audio:before()", "before", RAISED, True),
            ("sspm.wsgi:app", "after", RAISED, True),
            ("sspm.wsgi:app", "after, one address", {}, True),
            ("sspm.wsgi:app", "pages only (no audio)", RAISED, False),
        ]
        try:
            for target, name, limits, audio in plan:
                process, base = serve(
                    target, slapd, redis, database_url, smtp.port, workdir, args.workers, args.threads, limits
                )
                try:
                    if not runs:
                        runs.append(idle(base))
                    runs.append(flood(name, base, process, args.clients, args.seconds, audio=audio))
                finally:
                    stop(process)
                print(f"  measured: {name}", file=sys.stderr)
        finally:
            smtp.stop()
            redis.stop()
            slapd.stop()
    print(table(runs, args.clients))


if __name__ == "__main__":
    main()
