"""Forgot Password under a steady load: server time of each step with 20 flows at once.

    python -m bench.forgot_password [--flows 20] [--seconds 60] [--workers 2] [--threads 4] [--think 0]

Everything is real and on loopback, started as bench/change_password.py
starts it: a private slapd (ppolicy, ldaps) with ``--flows`` x
``--accounts-per-flow`` bench accounts, each enrolled in security questions
with lab.enrollment's known answers (argon2id, the product's own hasher),
redis-server, a migrated SQLite database, an SMTP catcher for the settings
to point at, and SSPM under gunicorn (``--preload -w 2 --threads 4`` by
default). No worker runs: each reset queues its "your password was reset"
email, which waits (sending is bench/email_pipeline.py's business).

``--flows`` client threads each loop over their own accounts, one fresh
browser (no cookies) per flow, doing what a browser does:

    GET /forgot, GET /captcha/image.png, POST /forgot (start),
    GET /recovery/challenge, GET /captcha/image.png, POST /recovery/challenge (answers),
    GET /recovery/new-password, POST /recovery/new-password (new password), GET /recovery/done

The CAPTCHA is solved as the tests solve it (tests/support/flows.py
captcha_text): its id from the browser's own session cookie (signed, not
encrypted; read with Flask's serializer and the SSPM_SECRET_KEY this bench
sets) and its characters from Redis (``sspm:captcha:<id>``); nothing else
exposes them. The questions are read off the page's labels and answered
from lab.enrollment.DEMO_ANSWERS.

Each client's first flow is untimed (warm pools and templates); then the
clock runs for ``--seconds``. A request counts if it was sent and answered
inside that window; a flow counts if its last request ended inside it.
Server time is gunicorn's own (its access log's ``%(D)s``: from the parsed
request to the written response, so without the wait for a free thread);
client time (requests, from send to body read) is printed beside it. See
bench/README.md for what is printed.
"""

from __future__ import annotations

import argparse
import html
import itertools
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from argon2 import extract_parameters
from redis import Redis
from rq import Queue

from bench.change_password import (
    _tree,
    account_dn,
    ldap_server,
    migrated_database,
    open_bound,
    passphrase,
    proc_cpu,
    start_gunicorn,
    stop,
    tail,
)
from bench.enumeration import Browser, Check, enroll, expect, token
from lab import DEMO_ACCOUNTS, SeedAccount, Slapd, bench_accounts, start_slapd
from lab.enrollment import DEMO_ANSWERS
from lab.env import sspm_environ
from lab.redis import RedisServer, start_redis
from lab.smtp import SmtpCatcher, start_smtp
from sspm.email.jobs import QUEUE
from sspm.infra import settings as settings_module
from sspm.policy.questions import AnswerHasher, Catalogue

#: Every step's p95 should stay under this, but the last POST's, which waits for the directory's write.
TARGET_P95_MS = 300.0
#: The limits, raised so that they never refuse the bench: it measures time, not the limits.
RAISED_LIMITS = {
    "SSPM_LIMIT_PER_IP": "1000000 per minute",
    "SSPM_LIMIT_PER_ACCOUNT": "1000000 per minute",
    "SSPM_RECOVERY_MAX_FAILURES": "1000000",
}
#: Names the request in gunicorn's access log, so server time joins client time.
TAG_HEADER = "X-Bench-Id"
ACCESS_FORMAT = "%({x-bench-id}i)s %(s)s %(D)s"

GET_FORM, IMAGE, START = "GET /forgot", "GET /captcha/image.png", "POST /forgot (start)"
GET_CHALLENGE, ANSWERS = "GET /recovery/challenge", "POST /recovery/challenge (answers)"
GET_NEW, NEW_PASSWORD, DONE = (
    "GET /recovery/new-password",
    "POST /recovery/new-password (new password)",
    "GET /recovery/done",
)
#: In the order a flow sends them (the image twice).
STEPS = (GET_FORM, IMAGE, START, GET_CHALLENGE, ANSWERS, GET_NEW, NEW_PASSWORD, DONE)
#: The directory's write: outside the 300 ms target.
FINAL_WRITE = NEW_PASSWORD

_LABEL = re.compile(r'<label for="answer_(\d+)">([^<]*)</label>')


# -- one browser, looping ----------------------------------------------------------------


@dataclass
class Sent:
    """One request as the client saw it."""

    tag: str
    step: str
    began: float  # perf_counter
    ended: float


@dataclass
class Client:
    """One of the ``--flows`` browsers: its requests, its flows and what went wrong."""

    number: int
    accounts: list[SeedAccount]
    sent: list[Sent] = field(default_factory=list)
    flows_ended: list[float] = field(default_factory=list)  # perf_counter at each done flow's last answer
    problems: list[str] = field(default_factory=list)
    #: uid -> the password its last confirmed reset set.
    passwords: dict[str, str] = field(default_factory=dict)
    resets: int = 0


class Flows:
    """What every client shares: where the app is, how to read its CAPTCHA and questions, the clock."""

    def __init__(self, base: str, secret_key: str, redis_url: str, catalogue: Catalogue, args: argparse.Namespace):
        self.base = base
        self.secret_key = secret_key
        self.redis_url = redis_url
        self.by_text = {text: q.id for q in catalogue.questions for text in q.text.values()}
        self.think = args.think
        self.keep_alive = args.keep_alive
        self.images = not args.no_images
        self.taken: set[str] = set()
        self.taken_lock = threading.Lock()
        self.deadline = float("inf")  # set when the clock starts

    def new_password(self) -> str:
        with self.taken_lock:
            return passphrase(self.taken)

    def loop(self, client: Client, ready: threading.Barrier) -> None:
        browser = Browser(self.base, self.secret_key, Redis.from_url(self.redis_url))
        if not self.keep_alive:
            # As behind a reverse proxy (nginx speaks HTTP/1.0 to its upstream by
            # default): a kept-alive connection stays on the worker that accepted
            # it, which would make the figures depend on how the 20 were dealt.
            browser.http.headers["Connection"] = "close"
        seq = itertools.count()
        accounts = itertools.cycle(client.accounts)
        try:
            try:
                self.flow(browser, client, next(accounts), seq)  # untimed: warms pools and templates
            except (Check, requests.RequestException) as exc:
                client.problems.append(f"warm-up flow: {exc}")
            try:
                ready.wait()
            except threading.BrokenBarrierError:
                return
            while time.perf_counter() < self.deadline:
                try:
                    self.flow(browser, client, next(accounts), seq)
                except (Check, requests.RequestException) as exc:
                    client.problems.append(str(exc))
                except _TimeUp:
                    return
        finally:
            browser.http.close()

    def flow(self, browser: Browser, client: Client, account: SeedAccount, seq: Iterator[int]) -> None:
        """One visitor through Forgot Password, start to done; raises Check on an unexpected answer."""

        def send(step: str, method: str, path: str, fields: dict[str, str] | None = None) -> requests.Response:
            if time.perf_counter() >= self.deadline:
                raise _TimeUp
            tag = f"c{client.number}-{next(seq)}"
            began = time.perf_counter()
            answer = browser.http.request(
                method,
                self.base + path,
                data=fields,
                headers={TAG_HEADER: tag},
                allow_redirects=False,
                timeout=60,
            )
            client.sent.append(Sent(tag, step, began, time.perf_counter()))
            return answer

        def pause() -> None:
            # Drawn afresh each time (exponential, mean --think): with one fixed pause
            # the browsers, released together, would stay in step and send their
            # answers in bursts of twenty, which no crowd of real people does.
            if self.think:
                time.sleep(random.expovariate(1 / self.think))

        browser.fresh()
        page = send(GET_FORM, "GET", "/forgot")
        expect(page, 200)
        if self.images:
            expect(send(IMAGE, "GET", "/captcha/image.png"), 200)
        pause()
        fields = {"csrf_token": token(page), "username": account.uid, "captcha": browser.captcha()}
        expect(send(START, "POST", "/forgot", {**fields, "action": "continue"}), 303, "/recovery/challenge")

        page = send(GET_CHALLENGE, "GET", "/recovery/challenge")
        expect(page, 200)
        if self.images:
            expect(send(IMAGE, "GET", "/captcha/image.png"), 200)
        pause()
        fields = {"csrf_token": token(page), "captcha": browser.captcha(), "action": "continue"}
        for i, text in _LABEL.findall(page.text):
            question = self.by_text.get(html.unescape(text))
            if question not in DEMO_ANSWERS:
                raise Check(f"the challenge asks a question {account.uid} did not enroll: {text!r}")
            fields[f"answer_{i}"] = DEMO_ANSWERS[question]
        if not any(name.startswith("answer_") for name in fields):
            raise Check("the challenge page asks no question")
        expect(send(ANSWERS, "POST", "/recovery/challenge", fields), 303, "/recovery/new-password")

        page = send(GET_NEW, "GET", "/recovery/new-password")
        expect(page, 200)
        pause()
        new = self.new_password()
        answer = send(
            NEW_PASSWORD, "POST", "/recovery/new-password", {"csrf_token": token(page), "new": new, "confirm": new}
        )
        expect(answer, 303, "/recovery/done")
        client.passwords[account.uid] = new
        client.resets += 1
        expect(send(DONE, "GET", "/recovery/done"), 200)
        client.flows_ended.append(time.perf_counter())
        pause()


class _TimeUp(Exception):
    """The window closed: the client stops before sending its next request."""


# -- server time, from gunicorn's access log ---------------------------------------------


@contextmanager
def access_log(path: Path) -> Iterator[None]:
    """gunicorn started inside reads its access log settings from GUNICORN_CMD_ARGS
    (bench/change_password.py's start_gunicorn passes the environment through)."""
    before = os.environ.get("GUNICORN_CMD_ARGS")
    os.environ["GUNICORN_CMD_ARGS"] = f"--access-logfile {path} --access-logformat '{ACCESS_FORMAT}'"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GUNICORN_CMD_ARGS", None)
        else:
            os.environ["GUNICORN_CMD_ARGS"] = before


def server_times(path: Path) -> dict[str, tuple[int, float]]:
    """tag -> (status, seconds in gunicorn's worker) for every tagged request."""
    found: dict[str, tuple[int, float]] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] != "-" and parts[1].isdigit() and parts[2].isdigit():
            found[parts[0]] = (int(parts[1]), int(parts[2]) / 1e6)
    return found


# -- figures -----------------------------------------------------------------------------


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (as bench/change_password.py's p95)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Row:
    step: str
    server: list[float]
    client: list[float]

    def figures(self, seconds: list[float]) -> tuple[float, float, float]:
        ordered = sorted(1000 * s for s in seconds)
        return (
            statistics.median(ordered) if ordered else float("nan"),
            quantile(ordered, 0.95),
            max(ordered, default=float("nan")),
        )


def cpu_probe(slapd_pid: int, redis_pid: int, gunicorn_pid: int) -> dict[str, float]:
    """CPU seconds so far of this process (the 20 browsers), gunicorn and its children, slapd, Redis."""
    own = os.times()
    return {
        "client": own.user + own.system,
        "app": sum(proc_cpu(pid) for pid in _tree(gunicorn_pid)),
        "dir": proc_cpu(slapd_pid),
        "redis": proc_cpu(redis_pid),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forgot_password", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--flows", type=int, default=20, help="browsers looping through Forgot Password at once (default 20)"
    )
    parser.add_argument(
        "--seconds", type=float, default=60, help="timed window, after one untimed flow each (default 60)"
    )
    parser.add_argument(
        "--accounts-per-flow", type=int, default=4, help="enrolled accounts each browser cycles through (default 4)"
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a browser waits before each form it sends, drawn at random (default 0)",
    )
    parser.add_argument("--no-images", action="store_true", help="do not fetch the CAPTCHA images")
    parser.add_argument(
        "--keep-alive", action="store_true", help="reuse each browser's connection (default: one per request)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra app setting (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.flows < 1 or args.seconds <= 0 or args.accounts_per_flow < 1 or args.think < 0:
        parser.error("--flows and --accounts-per-flow must be at least 1, --seconds more than 0, --think not negative")
    if any("=" not in item for item in args.set):
        parser.error("--set takes KEY=VALUE")

    wall = time.perf_counter()
    load_before = os.getloadavg()
    secret_key = secrets.token_urlsafe(48)
    extra = {"SSPM_SECRET_KEY": secret_key, **RAISED_LIMITS, **dict(item.split("=", 1) for item in args.set)}
    accounts = bench_accounts(args.flows * args.accounts_per_flow)
    clients = [Client(i, accounts[i :: args.flows]) for i in range(args.flows)]
    argon2 = extract_parameters(AnswerHasher().hash("x"))

    with tempfile.TemporaryDirectory(prefix="sspm-bench-") as tmp:
        workdir = Path(tmp)
        slapd = start_slapd(workdir / "slapd", [*DEMO_ACCOUNTS, *accounts])
        redis: RedisServer | None = None
        smtp: SmtpCatcher | None = None
        gunicorn: subprocess.Popen[bytes] | None = None
        log = workdir / "gunicorn.log"
        access = workdir / "access.log"
        try:
            redis = start_redis(workdir / "redis")
            smtp = start_smtp()
            database_url = migrated_database(workdir)
            environ = {
                **sspm_environ(slapd, redis_url=redis.url, database_url=database_url, smtp_port=smtp.port),
                **extra,
            }
            enroll(environ, [a.uid for a in accounts])
            settings = settings_module.load(env_file=Path("/nonexistent"), environ=environ)
            catalogue = Catalogue.load(settings.questions_file, settings.languages)
            with access_log(access):
                gunicorn, base, log = start_gunicorn(
                    slapd, redis, database_url, workdir, args.workers, args.threads, extra, smtp_port=smtp.port
                )
            ready = time.perf_counter() - wall
            flows = Flows(base, secret_key, redis.url, catalogue, args)
            barrier = threading.Barrier(args.flows + 1)
            threads = [threading.Thread(target=flows.loop, args=(c, barrier), name=f"flow-{c.number}") for c in clients]
            for thread in threads:
                thread.start()
            barrier.wait()
            before = cpu_probe(slapd.process.pid, redis.process.pid, gunicorn.pid)
            began = time.perf_counter()
            flows.deadline = began + args.seconds
            time.sleep(args.seconds)
            after = cpu_probe(slapd.process.pid, redis.process.pid, gunicorn.pid)
            load_after = os.getloadavg()
            for thread in threads:
                thread.join()
            queued = Queue(QUEUE, connection=Redis.from_url(redis.url)).count
            unverified = verify(slapd, clients)
        finally:
            if gunicorn is not None:
                stop(gunicorn)
            if smtp is not None:
                smtp.stop()
            if redis is not None:
                redis.stop()
            slapd.stop()
        served = server_times(access) if access.exists() else {}
        problems = [f"c{c.number}: {p}" for c in clients for p in c.problems]
        if problems:
            print(f"gunicorn log (tail):\n{tail(log)}\n", file=sys.stderr)

    end = began + args.seconds
    rows = {step: Row(step, [], []) for step in STEPS}
    missing = 0
    for c in clients:
        for s in c.sent:
            if s.began < began or s.ended > end:
                continue
            rows[s.step].client.append(s.ended - s.began)
            if s.tag in served:
                rows[s.step].server.append(served[s.tag][1])
            else:
                missing += 1
    done = sum(began <= t <= end for c in clients for t in c.flows_ended)
    resets = sum(c.resets for c in clients)
    cpu = {name: 1000 * (after[name] - before[name]) / max(done, 1) for name in before}

    print(
        f"openldap, redis, sqlite, smtp + gunicorn -w {args.workers} --threads {args.threads} ready in {ready:.1f} s;"
        f" {len(accounts)} accounts, each enrolled with 3 answers"
        f" (argon2id m={argon2.memory_cost} KiB, t={argon2.time_cost}, p={argon2.parallelism})"
    )
    print("app settings for this run: " + " ".join(f"{k}={v}" for k, v in extra.items() if k != "SSPM_SECRET_KEY"))
    print("  (the per-address, per-login and recovery-failure limits are raised so that they never refuse the bench)")
    print(
        f"{args.flows} flows at once for {args.seconds:.0f} s after one untimed flow each"
        f"{f', a pause before each form (exponential, mean {args.think:.1f} s)' if args.think else ''}"
        f"{'' if flows.images else ', no CAPTCHA images'}{', kept-alive connections' if args.keep_alive else ''};"
        " CAPTCHA read from Redis through the browser's own session cookie, as the tests do"
    )
    print(
        f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} at the start,"
        f" {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} at the end of the window"
    )
    print(f"{done} flows done in the window: {done / args.seconds:.2f} flows/s")
    print(
        f"{'ms':44} {'n':>5} {'server p50':>10} {'p95':>7} {'max':>7}  {'client p50':>10} {'p95':>7} {'max':>7}"
        f"  p95 < {TARGET_P95_MS:.0f}"
    )
    missed = []
    for step in STEPS:
        row = rows[step]
        s50, s95, smax = row.figures(row.server)
        c50, c95, cmax = row.figures(row.client)
        if step == FINAL_WRITE:
            verdict = "(directory write)"
        else:
            verdict = "met" if s95 < TARGET_P95_MS else "NOT met"
            if verdict != "met":
                missed.append(step)
        print(
            f"  {step:42} {len(row.server):5d} {s50:10.1f} {s95:7.1f} {smax:7.1f}"
            f"  {c50:10.1f} {c95:7.1f} {cmax:7.1f}  {verdict}"
        )
    print("  (server: gunicorn's %(D)s, parsed request to written response; client: send to body read; ms)")
    if missing:
        print(f"  {missing} timed requests not found in the access log")
    print(f"{'CPU ms per flow':16} {'client':>7} {'app':>7} {'dir':>7} {'redis':>7} {'total':>7}")
    print(
        f"{'':16}"
        + "".join(f" {cpu[name]:7.1f}" for name in ("client", "app", "dir", "redis"))
        + f" {sum(cpu.values()):7.1f}"
    )
    print("  (client: this process, the browsers; app: gunicorn and its children; dir: slapd)")
    print(
        f"target p95 < {TARGET_P95_MS:.0f} ms for every step but the directory write: "
        + ("met" if not missed else "NOT met: " + ", ".join(missed))
    )
    verified = sum(len(c.passwords) for c in clients)
    print(f"verified: {verified - len(unverified)}/{verified} reset accounts bind with their last new password")
    for uid, why in unverified[:10]:
        print(f"  NOT reset: {uid}: {why}")
    lost = queued != resets
    print(f"notifications queued: {queued} for {resets} resets{' (MISMATCH)' if lost else ''}")
    for problem in problems[:20]:
        print(f"CHECK FAILED: {problem}")
    print(f"wall-clock {time.perf_counter() - wall:.1f} s")
    return 1 if problems or unverified or lost or not done else 0


def verify(slapd: Slapd, clients: Sequence[Client]) -> list[tuple[str, str]]:
    """Every reset account binds with the password its last reset set; (uid, why) for those that don't."""
    server = ldap_server(slapd)
    by_uid = {a.uid: a for c in clients for a in c.accounts}
    failed = []
    for c in clients:
        for uid, password in c.passwords.items():
            try:
                conn, why = open_bound(server, account_dn("openldap", by_uid[uid]), password)
                conn.unbind()
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
            if why:
                failed.append((uid, why))
    return failed


if __name__ == "__main__":
    sys.exit(main())
