"""Emails through one real worker: one job per email, the bulk path, and how long a reset email takes.

    python -m bench.email_pipeline [--n 1000] [--latency-n 100] [--set KEY=VALUE]
    python -m bench.email_pipeline --profile single|bulk [--clock cpu] [--n 300]

Everything is real and on loopback: a private slapd seeded with N bench
accounts (each has a mail address), redis-server, a migrated SQLite
database, lab.smtp's aiosmtpd catcher in a process of its own (this module
run with ``--serve-smtp``: it says when each message was accepted), ONE
``python worker.py`` subprocess with the app's settings and, for the
third part, the app under gunicorn. Three parts, in one run, against the
same worker:

1. **single**: N reset emails queued as the web app queues them
   (``Outbox.reset_link``, one job each); the clock runs from the first
   enqueue to the Nth message accepted.
2. **bulk**: N expiry reminders queued as the scheduled job will
   (``Outbox.bulk``, ``password_expires_soon``, batches of
   ``outbox.BATCH_SIZE``), each dated with its password's expiry as the
   directory has it (the worker reads it again before sending); the same clock.
3. **latency**: --latency-n users, one after the other, ask for a reset
   email (``POST /forgot/email`` to gunicorn, one worker process); for each,
   the time from the request leaving the browser to the SMTP server
   accepting the message (p50, p95 against the 1 s target).

For each part, CPU ms per email of each process (/proc): the worker (and
the scheduler it forks), Redis, the SMTP catcher, the app (part 3) and
this process (enqueueing, part 1 and 2; the browser, part 3).

Checks, once the worker has stopped (exit status 1 if any fails): every
message arrived once (as many distinct Message-IDs, each address once per
part and no other), nothing in a failed registry, and the store agrees
(email events marked sent per kind, a reset token per reset email). If
not all arrived within --timeout, what did not must still be queued (none
lost) and the exit status is 3: too slow to check, not a wrong count.

``--profile single|bulk`` runs that part's jobs in this process instead,
through RQ's SimpleWorker in burst mode under cProfile (the catcher in
this process too), and prints the top costs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests
from aiosmtpd.smtp import SMTP, Envelope, Session
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.intermediate_queue import IntermediateQueue
from rq.suspension import resume, suspend
from sqlalchemy import func, select

from bench.change_password import (
    APP_PREFIXES,
    DIRECTORIES,
    ROOT,
    LabDirectory,
    _tree,
    migrated_database,
    proc_cpu,
    start_directory,
    start_gunicorn,
    stop,
    tail,
)
from connectors import open_directory
from connectors.directory import Account
from lab import bench_accounts
from lab.env import sspm_environ
from lab.redis import RedisServer, start_redis
from lab.slapd import free_port
from lab.smtp import Mailbox, SmtpCatcher
from sspm.infra import jobs
from sspm.infra import settings as settings_module
from sspm.infra.outbox import BATCH_SIZE, Outbox, Recipient
from sspm.infra.services import build
from sspm.infra.store import EmailEvent, ResetToken, Store

BULK_TARGET = 200.0  # emails per second per worker, the bulk path (issue 11)
LATENCY_TARGET = 1.0  # seconds, request to accepted, p95 (issue 11)
KIND = "password_expires_soon"
_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
#: What the app needs for part 3 to measure the pipeline, not the limits.
UNLIMITED = {
    "SSPM_LIMIT_PER_IP": "1000000 per minute",
    "SSPM_LIMIT_PER_ACCOUNT": "1000000 per minute",
    "SSPM_LIMIT_EMAIL_PER_IP": "1000000 per minute",
    "SSPM_LIMIT_EMAIL_PER_ACCOUNT": "1000000 per minute",
}


# -- the SMTP catcher, in a process of its own -----------------------------------------------------


@dataclass
class Arrival:
    """One message as the catcher accepted it: when (time.monotonic, the same clock in every process)."""

    at: float
    to: str
    message_id: str
    subject: str


@dataclass
class Announcing(Mailbox):
    """lab.smtp's mailbox, which writes one line per accepted message: time, To, Message-ID, Subject."""

    out: io.TextIOBase | None = None
    _write: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if answer.startswith("250"):
            message = self.messages.pop()  # kept by whoever reads the lines, not here
            line = "\t".join([f"{time.monotonic():.6f}", str(message["To"]), str(message["Message-ID"])])
            with self._write:
                print(f"{line}\t{message['Subject']}", file=self.out or sys.stdout, flush=True)
        return answer


def serve_smtp(port: int) -> int:
    """``--serve-smtp PORT``: lab.smtp's catcher until SIGTERM, one line per message on stdout."""
    catcher = SmtpCatcher(Announcing(), port).start()
    print("ready", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    catcher.stop()
    return 0


class CatcherProcess:
    """The catcher subprocess and what it said, read by a thread of this process."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: list[Arrival] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.email_pipeline", "--serve-smtp", str(port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP catcher did not start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at, to, message_id, subject = line.rstrip("\n").split("\t", 3)
            self.arrivals.append(Arrival(float(at), to, message_id, subject))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)


# -- the worker -------------------------------------------------------------------------------------


def start_worker(environ: dict[str, str], redis: Redis, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_PREFIXES)}
    env.update(environ)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 30
    while Worker.count(connection=redis) < 1:
        if process.poll() is not None:
            raise RuntimeError(f"worker.py exited with {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            stop_worker(process)
            raise RuntimeError(f"worker.py not listening after 30 s:\n{tail(log)}")
        time.sleep(0.05)
    return process


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # RQ's warm shutdown: finishes the job in hand
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def quiesce(process: subprocess.Popen[bytes], connection: Redis, queues: Sequence[Queue], timeout: float = 15) -> None:
    """Stop the worker without stranding a job: let it finish the one in hand and take no other.

    A SIGTERM that lands while a SimpleWorker is inside a Redis call (it
    runs jobs in its main thread, where the signal handler also talks to
    Redis) can leave a dequeued job in RQ's intermediate queue, to be
    failed-and-retried a minute later. So: suspend, wait, then stop.
    """
    suspend(connection)
    deadline = time.monotonic() + timeout
    while any(queue.count for queue in queues) and time.monotonic() < deadline:
        if all(w.get_state() == "suspended" for w in Worker.all(connection=connection)):
            break
        time.sleep(0.05)
    stop_worker(process)
    resume(connection)


# -- the parts --------------------------------------------------------------------------------------

Probe = Callable[[], dict[str, float]]


@dataclass
class Part:
    """What one part measured."""

    name: str
    #: The user names emailed, one message each.
    uids: list[str]
    began: float
    arrivals: list[Arrival]
    cpu: dict[str, float]
    queued_in: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answered_in: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.uids)

    @property
    def rate(self) -> float:
        if not self.arrivals:
            return 0.0
        return len(self.arrivals) / (self.arrivals[-1].at - self.began)

    def cpu_line(self) -> str:
        per = ", ".join(f"{name} {1000 * used / max(len(self.arrivals), 1):.2f}" for name, used in self.cpu.items())
        return f"CPU ms per email: {per}"


def probe_of(
    worker: subprocess.Popen[bytes],
    redis: RedisServer,
    smtp: CatcherProcess,
    directory: LabDirectory,
    app: subprocess.Popen[bytes] | None,
) -> Probe:
    """CPU seconds so far of each process: the worker (and its scheduler), Redis, the SMTP catcher,
    the directory, the app if it runs, and this process (enqueueing, reading the catcher, the browser)."""

    def probe() -> dict[str, float]:
        own = os.times()
        found = {
            "worker": sum(proc_cpu(pid) for pid in _tree(worker.pid)),
            "redis": proc_cpu(redis.process.pid),
            "smtp": proc_cpu(smtp.process.pid),
            "directory": sum(proc_cpu(pid) for pid in _tree(directory.process.pid)),
        }
        if app is not None:
            found["app"] = sum(proc_cpu(pid) for pid in _tree(app.pid))
        found["bench"] = own.user + own.system
        return found

    return probe


def delivered(catcher: CatcherProcess, since: int, n: int, queues: Sequence[Queue], timeout: float) -> list[Arrival]:
    """The arrivals after index ``since`` once N are in, or nothing is left to send, or time is up.

    The queues are looked at only when nothing arrived for a while, so that
    waiting costs Redis and this process next to nothing.
    """
    deadline = time.monotonic() + timeout
    seen, seen_at = len(catcher.arrivals), time.monotonic()
    while len(catcher.arrivals) - since < n and time.monotonic() < deadline:
        time.sleep(0.005)
        if len(catcher.arrivals) != seen:
            seen, seen_at = len(catcher.arrivals), time.monotonic()
        # Nothing for 2 s and nothing queued or running: whatever is missing is not coming.
        elif time.monotonic() - seen_at > 2 and all(q.count == 0 and q.started_job_registry.count == 0 for q in queues):
            break
    return catcher.arrivals[since : since + n]


def timed(
    name: str,
    uids: list[str],
    queue_all: Callable[[], object],
    probe: Probe,
    catcher: CatcherProcess,
    queues: Sequence[Queue],
    timeout: float,
) -> Part:
    """Queue with ``queue_all``, then wait for the messages to ``uids``.

    The clock runs from the first enqueue to the last arrival.
    """
    since = len(catcher.arrivals)
    before = probe()
    began = time.monotonic()
    queue_all()
    queued_in = time.monotonic() - began
    arrivals = delivered(catcher, since, len(uids), queues, timeout)
    after = probe()
    return Part(name, uids, began, arrivals, {k: after[k] - before[k] for k in after}, queued_in)


def ask_for_links(
    base: str, accounts: Sequence[Account], catcher: CatcherProcess, timeout: float
) -> tuple[list[float], list[float]]:
    """One user after another asks for a reset email; (request -> accepted, request -> answered) in seconds."""
    http = requests.Session()
    latencies, answered = [], []
    for account in accounts:
        http.cookies.clear()
        page = http.get(base + "/forgot/email", timeout=30)
        page.raise_for_status()
        found = _CSRF.search(page.text)
        if not found:
            raise RuntimeError("no csrf_token on /forgot/email")
        fields = {"csrf_token": found.group(1), "username": account.username}
        since = len(catcher.arrivals)
        began = time.monotonic()
        answer = http.post(base + "/forgot/email", data=fields, timeout=30, allow_redirects=False)
        answered.append(time.monotonic() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"POST /forgot/email for {account.username}: HTTP {answer.status_code}")
        while len(catcher.arrivals) == since and time.monotonic() < began + timeout:
            time.sleep(0.0005)
        if len(catcher.arrivals) == since:
            raise RuntimeError(f"no email for {account.username} within {timeout:.0f} s")
        arrival = catcher.arrivals[since]
        if arrival.to != account.email:
            raise RuntimeError(f"asked for {account.email}'s email, {arrival.to} got one")
        latencies.append(arrival.at - began)
    return latencies, answered


# -- checks -----------------------------------------------------------------------------------------


def checks(parts: Sequence[Part], accounts: Sequence[Account], queues: Sequence[Queue], store: Store) -> list[str]:
    """What went wrong, after the worker stopped; nothing if every email arrived once, or is still queued."""
    problems = []
    waiting = sum(queue.count for queue in queues)
    in_flight = sum(
        queue.started_job_registry.count + len(IntermediateQueue(queue.key, queue.connection).get_job_ids())
        for queue in queues
    )
    if in_flight:
        problems.append(f"{in_flight} jobs left in flight (started or dequeued) when the worker stopped")
    failed = sum(queue.failed_job_registry.count for queue in queues)
    if failed:
        problems.append(f"{failed} jobs in a failed registry")
    by_uid = {account.username: account for account in accounts}
    every = [arrival for part in parts for arrival in part.arrivals]
    ids = Counter(arrival.message_id for arrival in every)
    if len(ids) != len(every) or "None" in ids:
        problems.append(f"{len(every) - len(ids)} duplicate or missing Message-IDs ({ids.most_common(1)})")
    for part in parts:
        expected = Counter(str(by_uid[uid].email) for uid in part.uids)
        got = Counter(arrival.to for arrival in part.arrivals)
        if got - expected:
            problems.append(
                f"{part.name}: {sum((got - expected).values())} messages to an unexpected or repeated address"
            )
        if waiting == 0 and got != expected:
            problems.append(f"{part.name}: {sum((expected - got).values())} addresses never got their message")
    with store.session() as session:
        sent = dict(
            session.execute(
                select(EmailEvent.kind, func.count()).where(EmailEvent.state == "sent").group_by(EmailEvent.kind)
            ).all()
        )
        tokens = session.scalar(select(func.count()).select_from(ResetToken))
    resets = sum(len(part.arrivals) for part in parts if part.name != "bulk")
    bulk = sum(len(part.arrivals) for part in parts if part.name == "bulk")
    if sent.get("reset_link", 0) != resets or tokens != resets or sent.get(KIND, 0) != bulk:
        problems.append(f"store: {sent} email events sent and {tokens} reset tokens for {resets} + {bulk} messages")
    return problems


# -- in-process profile -----------------------------------------------------------------------------


def profile_in_process(environ: dict[str, str], accounts: Sequence[Account], path: str, top: int, clock: str) -> str:
    """One part's jobs through SimpleWorker in this process, under cProfile; the top costs.

    ``clock`` "wall" shows where a job waits (fsync, sockets); "cpu" shows what it computes.
    """
    the = build(settings_module.load(env_file=Path("/nonexistent"), environ=environ))
    if path == "single":
        for account in accounts:
            the.outbox.reset_link(account, "en")
        queue = jobs.EMAIL
    else:
        expiries = expiries_of(environ, accounts)
        the.outbox.bulk(KIND, [Recipient(a.id, "en", at) for a, at in zip(accounts, expiries, strict=True)])
        queue = jobs.HOUSEKEEPING
    worker = SimpleWorker([queue], connection=the.state.redis)
    profiler = cProfile.Profile(time.thread_time) if clock == "cpu" else cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    worker.work(burst=True, logging_level="WARNING")
    profiler.disable()
    took = time.perf_counter() - began
    the.close()
    out = io.StringIO()
    out.write(f"{path}, in-process SimpleWorker under cProfile ({clock} clock): {len(accounts)} emails in {took:.2f} s")
    out.write(f" ({len(accounts) / took:.0f}/s with the profiler's overhead)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def accounts_of(environ: dict[str, str], uids: Sequence[str]) -> list[Account]:
    """The accounts as the app's own connector reads them (ids, addresses)."""
    settings = settings_module.load(env_file=Path("/nonexistent"), environ=environ)
    directory = open_directory(settings.directory_kind, settings.directory)
    try:
        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(directory.find_account, uids))
    finally:
        directory.close()
    missing = [uid for uid, account in zip(uids, found, strict=True) if account is None]
    if missing:
        raise RuntimeError(f"{len(missing)} seeded accounts not found, e.g. {missing[0]}")
    return [account for account in found if account is not None]


def expiries_of(environ: dict[str, str], accounts: Sequence[Account]) -> list[datetime | None]:
    """When each password expires, as the directory says: what a reminder quotes (the worker checks it again)."""
    settings = settings_module.load(env_file=Path("/nonexistent"), environ=environ)
    directory = open_directory(settings.directory_kind, settings.directory)
    try:
        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(directory.account_details, [account.id for account in accounts]))
    finally:
        directory.close()
    return [details.expires_at if details else None for details in found]


def outbox_for(environ: dict[str, str]) -> tuple[Outbox, Store]:
    """The web app's Outbox, on the same Redis, database and retry settings."""
    settings = settings_module.load(env_file=Path("/nonexistent"), environ=environ)
    store = Store(settings.database_url)
    return Outbox(Redis.from_url(settings.redis_url), store, settings.email_retry_seconds), store


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the value at or below which ``share`` of them lie."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


# -- main -------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.email_pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="emails in the single and in the bulk part (default 1000)")
    parser.add_argument("--latency-n", type=int, default=100, help="reset emails asked for one by one (default 100)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for a part's delivery (default 60)")
    parser.add_argument("--directory", choices=DIRECTORIES, default="openldap")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra app setting, e.g. SSPM_SMTP_TIMEOUT=5"
    )
    parser.add_argument("--profile", choices=("single", "bulk"), help="run that part's jobs in-process under cProfile")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="--profile's clock: waits, or CPU (default wall)"
    )
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile (default 25)")
    parser.add_argument("--serve-smtp", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_smtp:
        return serve_smtp(args.serve_smtp)
    if args.n < 1 or args.latency_n < 1:
        parser.error("--n and --latency-n must be at least 1")
    if any("=" not in item for item in args.set):
        parser.error("--set takes KEY=VALUE")
    extra = dict(item.split("=", 1) for item in args.set)

    wall = time.monotonic()
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start", end="")
    print(" (other work on the machine lowers emails/s; the CPU per email hardly moves)" if load[0] > 0.5 else "")
    seeded = bench_accounts(max(args.n, args.latency_n))
    parts: list[Part] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sspm-bench-") as tmp:
        workdir = Path(tmp)
        slapd = start_directory(args.directory, workdir, seeded)
        redis: RedisServer | None = None
        catcher: CatcherProcess | None = None
        worker: subprocess.Popen[bytes] | None = None
        gunicorn: subprocess.Popen[bytes] | None = None
        log = workdir / "worker.log"
        try:
            redis = start_redis(workdir / "redis")
            database_url = migrated_database(workdir)
            if args.profile:
                local = SmtpCatcher(Mailbox()).start()
                environ = sspm_environ(
                    slapd, redis_url=redis.url, database_url=database_url, smtp_port=local.port, **extra
                )
                accounts = accounts_of(environ, [a.uid for a in seeded[: args.n]])
                print(profile_in_process(environ, accounts, args.profile, args.top, args.clock))
                local.stop()
                return 0
            catcher = CatcherProcess(free_port())
            environ = sspm_environ(
                slapd, redis_url=redis.url, database_url=database_url, smtp_port=catcher.port, **{**UNLIMITED, **extra}
            )
            uids = [a.uid for a in seeded]
            accounts = accounts_of(environ, uids)
            connection = Redis.from_url(redis.url)
            queues = [Queue(name, connection=connection) for name in jobs.QUEUES]
            outbox, store = outbox_for(environ)
            worker = start_worker(environ, connection, log)
            ready = time.monotonic() - wall
            probe = probe_of(worker, redis, catcher, slapd, None)

            first = accounts[: args.n]
            names = [a.username for a in first]
            expiries = expiries_of(environ, first)

            def singles() -> None:
                for account in first:
                    outbox.reset_link(account, "en")

            def reminders() -> None:
                outbox.bulk(KIND, [Recipient(a.id, "en", at) for a, at in zip(first, expiries, strict=True)])

            parts.append(timed("single", names, singles, probe, catcher, queues, args.timeout))
            parts.append(timed("bulk", names, reminders, probe, catcher, queues, args.timeout))

            gunicorn, base, _ = start_gunicorn(
                slapd, redis, database_url, workdir, 1, 4, {**UNLIMITED, **extra}, smtp_port=catcher.port
            )
            asking = accounts[: args.latency_n]
            probe = probe_of(worker, redis, catcher, slapd, gunicorn)
            since = len(catcher.arrivals)
            before = probe()
            began = time.monotonic()
            latencies, answered = ask_for_links(base, asking, catcher, args.timeout)
            after = probe()
            parts.append(
                Part(
                    "latency",
                    [account.username for account in asking],
                    began,
                    catcher.arrivals[since : since + args.latency_n],
                    {k: after[k] - before[k] for k in after},
                    latencies=latencies,
                    answered_in=answered,
                )
            )
            quiesce(worker, connection, queues)  # the job in hand finishes: the store and the mailbox agree
            time.sleep(0.2)  # the catcher's last lines
            problems = checks(parts, accounts, queues, store)
            store.close()
        finally:
            if gunicorn is not None:
                stop(gunicorn)
            if worker is not None:
                stop_worker(worker)
            if catcher is not None:
                catcher.stop()
            if redis is not None:
                redis.stop()
            slapd.stop()
        if problems:
            print(f"worker log (tail):\n{tail(log)}\n", file=sys.stderr)

    print(f"{args.directory}, redis, database, smtp (own process) + one `python worker.py` ready in {ready:.1f} s")
    if extra:
        print("app settings: " + " ".join(f"{k}={v}" for k, v in extra.items()))
    incomplete = report(parts, problems)
    if incomplete and not problems:
        print(f"INCOMPLETE: stopped waiting after {args.timeout:.0f} s with emails still queued (none lost):", end="")
        print(" use a smaller --n or a longer --timeout")
    print(f"wall-clock {time.monotonic() - wall:.1f} s")
    return 1 if problems else 3 if incomplete else 0


def report(parts: Sequence[Part], problems: Sequence[str]) -> bool:
    """Print each part's figures and the checks; True if a part is incomplete."""
    single, bulk, latency = parts
    print(f"single: {len(single.arrivals)}/{single.n} reset emails, one job each (Outbox.reset_link,", end="")
    print(f" queued in {single.queued_in:.2f} s): {single.rate:.0f} emails/s")
    print(f"  {single.cpu_line()}")
    verdict = "met" if bulk.rate >= BULK_TARGET else "NOT met"
    print(f"bulk: {len(bulk.arrivals)}/{bulk.n} reminders, {BATCH_SIZE} to a job (Outbox.bulk,", end="")
    print(f" queued in {bulk.queued_in:.2f} s): {bulk.rate:.0f} emails/s (target >= {BULK_TARGET:.0f}: {verdict})")
    print(f"  {bulk.cpu_line()}")
    if latency.latencies:
        p50, p95 = percentile(latency.latencies, 0.5), percentile(latency.latencies, 0.95)
        verdict = "met" if p95 < LATENCY_TARGET else "NOT met"
        print(f"latency: {len(latency.latencies)} reset emails asked one after another (gunicorn -w 1 --threads 4),")
        print(f"  request -> SMTP accepted: p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms,", end="")
        print(
            f" max {1000 * max(latency.latencies):.0f} ms (target p95 < {1000 * LATENCY_TARGET:.0f} ms: {verdict});",
            end="",
        )
        print(f" the page answered in p50 {1000 * statistics.median(latency.answered_in):.0f} ms")
        print(f"  {latency.cpu_line()}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    if not problems:
        print("checked: every message once (Message-IDs, addresses), none failed, the store agrees")
    return any(len(part.arrivals) < part.n for part in parts)


if __name__ == "__main__":
    sys.exit(main())
