"""A whole deployment on loopback, and a steady load on it: what the failover test drives.

Every part is the real thing, as an operator runs it: PostgreSQL (migrated),
Redis under Sentinel (a primary, a replica, three sentinels), two OpenLDAP
providers replicating each other (mirror mode, ``LDAP_URL`` naming both),
an SMTP catcher, two app nodes (separate gunicorn processes on ports of
their own, with the same settings), ``python worker.py email`` twice and
``python worker.py sync housekeeping`` once, as README deploys them, and one
``python -m sspm scheduler``. Each process is started in a session of its
own, so killing a node kills its gunicorn workers with it, as losing a host
would.

The load is a few client threads, each a browser going through the pages
the way bench/forgot_password.py and bench/change_password.py do, every
request to the next live node in turn (so each flow crosses nodes at every
step, which is what sessions, challenges and CAPTCHAs in Redis allow). Each
account is used by one flow only, so what the directory, the audit trail and
the mailbox hold for it afterwards belongs to that one flow.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import itertools
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.utils import now as rq_now
from sqlalchemy import select

from connectors import open_directory
from lab import DEMO_ACCOUNTS, Pki, SeedAccount, Slapd, bench_accounts
from lab.enrollment import DEMO_ANSWERS, seed_enrollment
from lab.env import sspm_environ
from lab.postgres import running_postgres
from lab.redis import SentinelCluster, start_sentinel_cluster
from lab.slapd import free_port, start_mirror_pair
from lab.smtp import Mailbox, start_smtp
from sspm.email.jobs import QUEUE as EMAIL_QUEUE
from sspm.infra import settings as settings_module
from sspm.infra.redisconn import connect
from sspm.infra.store import AuditEvent, ResetToken, Store, migrate
from sspm.policy.questions import AnswerHasher, Catalogue

ROOT = Path(__file__).resolve().parent.parent.parent
#: How long the harness waits for something to happen before it gives up (a guard, never a measure).
PATIENCE = 60.0
#: Settings the app reads from the environment; the caller's own are not let through.
APP_PREFIXES = ("SSPM_", "LDAP_", "DIRECTORY_KIND")
#: The workers, as README's deployment runs them: two on the email queue alone, one for the rest. A worker
#: of one queue takes a job by moving it to RQ's intermediate list, where it stays if the worker loses
#: Redis before starting it; a worker of several pops it, and a job popped as the primary dies is gone.
WORKERS = (("email",), ("email",), ("sync", "housekeeping"))
#: Seconds without a heartbeat after which a job listed as running is taken as abandoned (RQ beats every few).
ABANDONED_AFTER = 15
#: A browser whose flow failed tries again after this long, as a person would after a "try again" page
#: (an account is never used twice, so retrying at once would only burn accounts during an outage).
RETRY_AFTER = 0.25
SESSION_COOKIE = "sspm_session"
#: The limits, raised so that they never refuse the load: the test is about failover, not limits.
RAISED_LIMITS = {
    "SSPM_LIMIT_PER_IP": "1000000 per minute",
    "SSPM_LIMIT_PER_ACCOUNT": "1000000 per minute",
    "SSPM_LIMIT_EMAIL_PER_ACCOUNT": "1000000 per hour",
    "SSPM_LIMIT_EMAIL_PER_IP": "1000000 per hour",
    "SSPM_RECOVERY_MAX_FAILURES": "1000000",
    # A send that failed during a failover is tried again soon, not minutes later.
    "SSPM_EMAIL_RETRY_SECONDS": "1,1,2,2,5,5,10",
}
_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
_LABEL = re.compile(r'<label for="answer_(\d+)">([^<]*)</label>')
#: Passphrase words (none in a bench account's name).
# fmt: off
_WORDS = (
    "amber", "anchor", "badger", "beacon", "birch", "bramble", "cedar", "cinder", "clover", "cobalt", "comet",
    "copper", "coral", "crater", "delta", "ember", "falcon", "fennel", "fjord", "fossil", "garnet", "geyser",
    "ginger", "glacier", "granite", "harbor", "hazel", "heron", "indigo", "juniper", "kettle", "lagoon",
    "lantern", "lilac", "lotus", "maple", "marble", "meadow", "nebula", "nutmeg", "oasis", "orchid", "otter",
    "pebble", "quartz", "quill", "raven", "saffron", "sequoia", "sierra", "spruce", "summit", "thistle", "timber",
    "topaz", "tundra", "velvet", "walnut", "willow", "zephyr",
)
# fmt: on


def passphrase() -> str:
    """Four random words and two digits: never one an account had (history), always good enough for the rules."""
    words = [secrets.choice(_WORDS).capitalize() for _ in range(4)]
    return "-".join([*words, str(10 + secrets.randbelow(90))])


def redis_client(url: str) -> redis.Redis:
    """A client for the app's Redis that follows a Sentinel failover, as the app's own does."""
    return connect(url, socket_timeout=2.0)


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Process:
    """One process of the deployment, started in a session of its own; its output in ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def said(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the process and its children: a host lost, not a shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(PATIENCE)

    def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn(name: str, argv: Sequence[str], environ: dict[str, str], log: Path) -> Process:
    """``argv`` run from the repository root with exactly the app settings in ``environ``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_PREFIXES)}
    env.update(environ)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    return Process(name, popen, log)


def health(environ: dict[str, str], what: str) -> tuple[int, str]:
    """``python -m sspm health worker|scheduler`` as an operator's probe runs it: its exit status and line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_PREFIXES)}
    env.update(environ)
    done = subprocess.run(
        [sys.executable, "-m", "sspm", "health", what],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=PATIENCE,
    )
    said = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, said[-1] if said else ""


def passes(environ: dict[str, str], what: str) -> bool:
    return health(environ, what)[0] == 0


def wait_for(what: str, done: Callable[[], object], *watched: Process, patience: float = PATIENCE) -> None:
    """Poll until ``done()`` is true; fail, with the logs, if a watched process dies or it never happens."""
    deadline = time.monotonic() + patience
    while not done():
        for process in watched:
            if not process.alive:
                raise RuntimeError(f"{process.name} died while waiting for {what}:\n{process.said()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}:\n{p.said()[-2000:]}" for p in watched)
            raise RuntimeError(f"never saw {what} within {patience:.0f} s\n{logs}")
        time.sleep(0.05)


@dataclass
class Node:
    """One app node: gunicorn serving sspm.wsgi:app."""

    base: str
    process: Process


def start_node(name: str, environ: dict[str, str], workdir: Path, *, threads: int = 8) -> Node:
    """gunicorn as README's deployment runs it (one worker process: the machine has two cores), on a
    free port; its own emptied metrics directory, as each host has."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    metrics = workdir / f"{name}-metrics"
    metrics.mkdir()
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:sspm.gunicorn_conf", "--preload", "-w", "1"]
    argv += ["--threads", str(threads), "--graceful-timeout", "5", "--logger-class", "sspm.infra.logs.GunicornLogger"]
    argv += ["-b", f"127.0.0.1:{port}", "sspm.wsgi:app"]
    node_environ = {**environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    node = Node(base, spawn(name, argv, node_environ, workdir / f"{name}.log"))

    def answers() -> bool:
        try:
            return bool(requests.get(base + "/readyz", timeout=5).status_code == 200)
        except requests.ConnectionError:
            return False

    wait_for(f"{name} ready", answers, node.process)
    return node


def start_worker(
    name: str, queues: Sequence[str], environ: dict[str, str], workdir: Path, connection: redis.Redis
) -> Process:
    """``python worker.py QUEUE...``, up once RQ lists one more worker."""
    before = _workers(connection)
    process = spawn(name, [sys.executable, "worker.py", *queues], environ, workdir / f"{name}.log")
    wait_for(f"{name} registered", lambda: _workers(connection) > before, process)
    return process


def _workers(connection: redis.Redis) -> int:
    return len(connection.smembers("rq:workers"))


def start_scheduler(environ: dict[str, str], workdir: Path) -> Process:
    """``python -m sspm scheduler``, up once it has queued the jobs due at start."""
    process = spawn("scheduler", [sys.executable, "-m", "sspm", "scheduler"], environ, workdir / "scheduler.log")
    wait_for("the scheduler's first enqueue", lambda: "Scheduler: enqueued" in process.said(), process)
    return process


# -- the load ----------------------------------------------------------------------------------


CHANGE, RECOVERY, EMAIL = "change", "recovery", "email"
KINDS = (CHANGE, RECOVERY, EMAIL)
#: What each flow's success is recorded as in the audit trail.
AUDITED = {CHANGE: "change", RECOVERY: "forgot_reset", EMAIL: "reset_email_request"}


@dataclass(frozen=True)
class Sent:
    """One request as the client saw it; ``status`` 0 when no answer came (connection refused or cut)."""

    kind: str
    node: str
    what: str  # method and path
    began: float  # time.time()
    ended: float
    status: int


@dataclass(frozen=True)
class Done:
    """One flow that got its success page: the account, and its new password (none for an email request)."""

    kind: str
    uid: str
    password: str | None
    began: float  # time.time() at the flow's first request
    ended: float


@dataclass
class Tally:
    """What the load saw; appended to by every client thread under ``lock``."""

    sent: list[Sent] = field(default_factory=list)
    done: list[Done] = field(default_factory=list)
    #: Flows that ended without their success page, by kind and why (a refusal page, a cut connection...).
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # kind, uid, why
    #: Accounts whose last request got no answer: what the server did is not known to the client.
    unknown: list[tuple[str, str]] = field(default_factory=list)  # kind, uid
    lock: threading.Lock = field(default_factory=threading.Lock)


class Cut(Exception):
    """The request got no answer: the node died under it."""


class Refused(Exception):
    """A page other than the flow's next one (a refusal, "start again", a 5xx)."""


class Pools:
    """Accounts not yet used, per kind; each is handed out once."""

    def __init__(self, by_kind: dict[str, list[SeedAccount]]) -> None:
        self._left = {kind: iter(accounts) for kind, accounts in by_kind.items()}
        self._lock = threading.Lock()
        self.exhausted: set[str] = set()

    def take(self, kind: str) -> SeedAccount | None:
        with self._lock:
            account = next(self._left[kind], None)
            if account is None:
                self.exhausted.add(kind)
            return account


class Load:
    """``threads`` browsers, each doing change, recovery, email in turn, every request to the next live node."""

    def __init__(
        self,
        nodes: dict[str, str],
        pools: Pools,
        *,
        secret_key: str,
        redis_url: str,
        catalogue: Catalogue,
        threads: int = 4,
    ) -> None:
        self.nodes = dict(nodes)  # name -> base URL; a node is dropped when it refuses connections
        self.pools = pools
        self.tally = Tally()
        self.by_text = {text: q.id for q in catalogue.questions for text in q.text.values()}
        self._redis = redis_client(redis_url)
        signer = Flask("cluster-load")
        signer.secret_key = secret_key
        serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
        assert isinstance(serializer, URLSafeTimedSerializer)
        self._serializer = serializer
        self._turn = itertools.count()
        self._nodes_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(i,), name=f"load-{i}") for i in range(threads)]
        self.started = 0.0
        self.stopped = 0.0

    # the run

    def start(self) -> None:
        self.started = time.time()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(PATIENCE)
        self.stopped = time.time()

    def _loop(self, number: int) -> None:
        http = requests.Session()
        kinds = itertools.islice(itertools.cycle(KINDS), number % len(KINDS), None)
        try:
            while not self._stop.is_set():
                kind = next(kinds)
                account = self.pools.take(kind)
                if account is None:
                    continue
                http.cookies.clear()  # a new visitor each flow
                try:
                    {CHANGE: self._change, RECOVERY: self._recover, EMAIL: self._email}[kind](http, kind, account)
                except Refused as refused:
                    with self.tally.lock:
                        self.tally.failed.append((kind, account.uid, str(refused)))
                    self._stop.wait(RETRY_AFTER)
                except Cut as cut:
                    with self.tally.lock:
                        self.tally.failed.append((kind, account.uid, str(cut)))
                        self.tally.unknown.append((kind, account.uid))
                    self._stop.wait(RETRY_AFTER)
        finally:
            http.close()

    # one request

    def _next_node(self) -> tuple[str, str]:
        with self._nodes_lock:
            if not self.nodes:
                raise Cut("no node left")
            names = sorted(self.nodes)
            name = names[next(self._turn) % len(names)]
            return name, self.nodes[name]

    def _send(
        self, http: requests.Session, kind: str, method: str, path: str, fields: dict[str, str] | None = None
    ) -> requests.Response:
        """To the next live node; a node that refuses the connection is dropped and the next one tried
        (nothing reached it, so sending again is safe); an answer that never comes is a Cut."""
        while True:
            name, base = self._next_node()
            began = time.time()
            try:
                answer = http.request(method, base + path, data=fields, allow_redirects=False, timeout=60)
            except requests.RequestException as exc:
                refused = "Connection refused" in str(exc) or "NewConnectionError" in repr(exc)
                self._record(Sent(kind, name, f"{method} {path}", began, time.time(), 0))
                if refused:
                    with self._nodes_lock:
                        self.nodes.pop(name, None)
                    continue
                raise Cut(f"{method} {path} on {name}: no answer ({type(exc).__name__})") from None
            self._record(Sent(kind, name, f"{method} {path}", began, time.time(), answer.status_code))
            return answer

    def _record(self, sent: Sent) -> None:
        with self.tally.lock:
            self.tally.sent.append(sent)

    @staticmethod
    def _expect(answer: requests.Response, status: int, location: str | None = None) -> None:
        where = answer.headers.get("Location") or ""
        if answer.status_code != status or (location is not None and urlsplit(where).path != location):
            raise Refused(f"{answer.request.method} {urlsplit(answer.url).path}: HTTP {answer.status_code} {where}")

    @staticmethod
    def _token(page: requests.Response) -> str:
        found = _CSRF.search(page.text)
        if not found:
            raise Refused(f"no csrf_token on {urlsplit(page.url).path} (HTTP {page.status_code})")
        return found.group(1)

    def _captcha(self, http: requests.Session) -> str:
        """The characters of the CAPTCHA this browser holds, as a person reads them off the image."""
        cookie = http.cookies.get(SESSION_COOKIE)
        captcha_id = dict(self._serializer.loads(cookie)).get("captcha") if cookie else None
        if not isinstance(captcha_id, str):
            raise Refused("the page issued no CAPTCHA")
        try:
            raw = self._redis.get(f"sspm:captcha:{captcha_id}")
        except redis.RedisError as exc:
            raise Refused(f"the CAPTCHA could not be read ({type(exc).__name__})") from None
        if raw is None:
            raise Refused("the CAPTCHA is gone from Redis")
        return str(json.loads(raw)["text"])

    def _succeeded(self, kind: str, account: SeedAccount, password: str | None, began: float) -> None:
        with self.tally.lock:
            self.tally.done.append(Done(kind, account.uid, password, began, time.time()))

    # the flows

    def _change(self, http: requests.Session, kind: str, account: SeedAccount) -> None:
        began = time.time()
        page = self._send(http, kind, "GET", "/change")
        self._expect(page, 200)
        new = passphrase()
        fields = {"csrf_token": self._token(page), "username": account.uid, "current": account.password}
        answer = self._send(http, kind, "POST", "/change", {**fields, "new": new, "confirm": new})
        self._expect(answer, 303, "/change/done")
        self._succeeded(kind, account, new, began)

    def _recover(self, http: requests.Session, kind: str, account: SeedAccount) -> None:
        began = time.time()
        page = self._send(http, kind, "GET", "/forgot")
        self._expect(page, 200)
        fields = {"csrf_token": self._token(page), "username": account.uid, "captcha": self._captcha(http)}
        answer = self._send(http, kind, "POST", "/forgot", {**fields, "action": "continue"})
        self._expect(answer, 303, "/recovery/challenge")
        page = self._send(http, kind, "GET", "/recovery/challenge")
        self._expect(page, 200)
        fields = {"csrf_token": self._token(page), "captcha": self._captcha(http), "action": "continue"}
        for i, text in _LABEL.findall(page.text):
            fields[f"answer_{i}"] = DEMO_ANSWERS[self.by_text[html.unescape(text)]]
        answer = self._send(http, kind, "POST", "/recovery/challenge", fields)
        self._expect(answer, 303, "/recovery/new-password")
        page = self._send(http, kind, "GET", "/recovery/new-password")
        self._expect(page, 200)
        new = passphrase()
        fields = {"csrf_token": self._token(page), "new": new, "confirm": new}
        self._expect(self._send(http, kind, "POST", "/recovery/new-password", fields), 303, "/recovery/done")
        self._succeeded(kind, account, new, began)

    def _email(self, http: requests.Session, kind: str, account: SeedAccount) -> None:
        began = time.time()
        page = self._send(http, kind, "GET", "/forgot/email")
        self._expect(page, 200)
        fields = {"csrf_token": self._token(page), "username": account.uid}
        answer = self._send(http, kind, "POST", "/forgot/email", fields)
        self._expect(answer, 200)
        if "Check your email" not in answer.text:
            raise Refused("POST /forgot/email: not accepted")
        self._succeeded(kind, account, None, began)

    # what was seen

    def successes_since(self, moment: float) -> dict[str, int]:
        """Flows of each kind begun after ``moment`` that got their success page."""
        with self.tally.lock:
            done = list(self.tally.done)
        counts = dict.fromkeys(KINDS, 0)
        for one in done:
            if one.began > moment:
                counts[one.kind] += 1
        return counts


class _HashOnce(AnswerHasher):
    """The product's hasher, each distinct answer hashed once: enrolling hundreds of accounts
    would otherwise cost three argon2 hashes each. Verifying costs the same whatever the salt."""

    def __init__(self) -> None:
        super().__init__()
        self._done: dict[str, str] = {}

    def hash(self, answer: str) -> str:
        if answer not in self._done:
            self._done[answer] = super().hash(answer)
        return self._done[answer]


# -- the deployment ----------------------------------------------------------------------------


@dataclass
class Cluster:
    """The whole deployment; ``environ`` is the settings every SSPM process gets."""

    environ: dict[str, str]
    directories: list[Slapd]
    redis_servers: SentinelCluster
    mailbox: Mailbox
    store: Store
    nodes: dict[str, Node] = field(default_factory=dict)
    workers: list[Process] = field(default_factory=list)
    scheduler: Process | None = None
    #: The accounts each kind of flow takes, one flow per account.
    pools: dict[str, list[SeedAccount]] = field(default_factory=dict)
    #: Directory servers killed and not started again yet.
    killed: list[Slapd] = field(default_factory=list)

    @property
    def processes(self) -> list[Process]:
        found = [*(node.process for node in self.nodes.values()), *self.workers]
        return [*found, self.scheduler] if self.scheduler else found

    def redis(self) -> redis.Redis:
        return redis_client(self.environ["SSPM_REDIS_URL"])

    def stop_processes(self) -> None:
        """SIGTERM to every process at once, then each waited for (SIGKILL if it lingers)."""
        for process in self.processes:
            if process.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        for process in self.processes:
            process.stop()

    # the failures

    def kill_redis_primary(self) -> None:
        """SIGKILL the Redis primary (no shutdown, no save) and wait until the sentinels promote the replica."""
        self.redis_servers.kill_primary()
        self.redis_servers.wait_for_new_primary(PATIENCE)

    def kill_directory(self) -> None:
        """SIGKILL the preferred directory provider, the one every node writes to."""
        first = self.directories[0]
        first.process.kill()
        first.process.wait()
        self.killed.append(first)

    def restart_killed_directories(self) -> None:
        """Start the killed providers again on their data and ports: they catch up by replication."""
        while self.killed:
            self.killed.pop().restart()


@contextlib.contextmanager
def running_cluster(workdir: Path, pki: Pki, *, per_kind: int = 400, node_threads: int = 8) -> Iterator[Cluster]:
    """Start every server and process on loopback; stop them all on the way out, whatever happened."""
    with contextlib.ExitStack() as stack:
        yield _start(stack, workdir, pki, per_kind, node_threads)


def _start(stack: contextlib.ExitStack, workdir: Path, pki: Pki, per_kind: int, node_threads: int) -> Cluster:
    accounts = bench_accounts(3 * per_kind)
    pools = {kind: accounts[i * per_kind : (i + 1) * per_kind] for i, kind in enumerate(KINDS)}

    directories = start_directories(stack, workdir, pki, [*DEMO_ACCOUNTS, *accounts])
    redis_servers = start_redis_servers(stack, workdir)
    postgres = stack.enter_context(running_postgres())
    database_url = postgres.create_database("sspm")
    migrate(database_url)
    smtp = start_smtp(workdir / "mail")
    stack.callback(smtp.stop)

    environ = sspm_environ(
        directories[0],
        redis_url=redis_servers.url,
        database_url=database_url,
        smtp_port=smtp.port,
        SSPM_PUBLIC_BASE_URL="http://127.0.0.1",
        **RAISED_LIMITS,
    )
    environ.update(directory_environ(directories))
    store = Store(database_url)
    stack.callback(store.close)
    cluster = Cluster(environ, directories, redis_servers, smtp.mailbox, store, pools=pools)
    enroll(environ, store, pools[RECOVERY])

    stack.callback(cluster.stop_processes)
    for i in (1, 2):
        cluster.nodes[f"node{i}"] = start_node(f"node{i}", environ, workdir, threads=node_threads)
    connection = cluster.redis()
    for i, queues in enumerate(WORKERS, start=1):
        cluster.workers.append(start_worker(f"worker{i}", queues, environ, workdir, connection))
    cluster.scheduler = start_scheduler(environ, workdir)
    return cluster


def start_directories(stack: contextlib.ExitStack, workdir: Path, pki: Pki, accounts: list[SeedAccount]) -> list[Slapd]:
    """Two OpenLDAP providers in mirror mode, the preferred first."""
    first, second = start_mirror_pair(workdir / "slapd", pki, accounts)
    stack.callback(first.stop)
    stack.callback(second.stop)
    return [first, second]


def directory_environ(directories: Sequence[Slapd]) -> dict[str, str]:
    """LDAP_URL naming every server, the preferred first."""
    return {"LDAP_URL": " ".join(d.ldaps_url for d in directories)}


def start_redis_servers(stack: contextlib.ExitStack, workdir: Path) -> SentinelCluster:
    """A primary, a replica and three sentinels."""
    group = start_sentinel_cluster(workdir / "redis")
    stack.callback(group.stop)
    return group


def enroll(environ: dict[str, str], store: Store, accounts: Sequence[SeedAccount]) -> None:
    """Security questions for ``accounts``, keyed by the ids the app's own connector reads."""
    settings = settings_module.load(env_file=Path("/nonexistent/.env"), environ=environ)
    directory = open_directory(settings.directory_kind, settings.directory)
    hasher = _HashOnce()
    try:
        for account in accounts:
            found = directory.find_account(account.uid)
            if found is None:
                raise RuntimeError(f"seeded account {account.uid} not found in the directory")
            seed_enrollment(store, hasher, found.id, DEMO_ANSWERS)
    finally:
        directory.close()


# -- what the test checks afterwards ---------------------------------------------------------------


@dataclass
class Window:
    """One failover: from the kill to when every kind of flow had succeeded again after it, plus a margin
    (cut short by the next failover's kill)."""

    name: str
    killed: float
    recovered: float
    ends: float = 0.0

    def holds(self, sent: Sent) -> bool:
        """Whether the request was under way during the window (sent before it closed, answered after the kill)."""
        return sent.began <= self.ends and sent.ended >= self.killed


def recovered_after(load: Load, moment: float, what: str, *watched: Process) -> float:
    """When every kind of flow begun after ``moment`` had got its success page (the first of each, the last
    of those firsts)."""

    def firsts() -> dict[str, float]:
        with load.tally.lock:
            done = list(load.tally.done)
        found: dict[str, float] = {}
        for one in done:
            if one.began > moment:
                found[one.kind] = min(found.get(one.kind, one.ended), one.ended)
        return found

    wait_for(what, lambda: len(firsts()) == len(KINDS), *watched, patience=PATIENCE)
    return max(firsts().values())


def steady(load: Load, since: float, flows: int, *watched: Process) -> None:
    """Let the load run until ``flows`` more flows of each kind succeeded (a condition, not a sleep)."""
    wait_for(f"{flows} flows of each kind", lambda: min(load.successes_since(since).values()) >= flows, *watched)


def audit_successes(store: Store) -> Counter[tuple[str, str]]:
    """(user name, action) of every success the trail records for the load's three flows."""
    wanted = {"change": "ok", "forgot_reset": "ok", "reset_email_request": "queued"}
    with store.session() as session:
        rows = session.execute(
            select(AuditEvent.subject, AuditEvent.action, AuditEvent.outcome).where(AuditEvent.action.in_(list(wanted)))
        ).all()
    return Counter((subject, action) for subject, action, outcome in rows if wanted[action] == outcome)


def notifications_not_queued(store: Store) -> set[str]:
    """User names whose "your password was changed/reset" email could not be queued (audited so)."""
    with store.session() as session:
        rows = session.scalars(
            select(AuditEvent.subject).where(
                AuditEvent.action.in_(["email_password_changed", "email_password_reset"]),
                AuditEvent.outcome == "not_queued",
            )
        ).all()
    return set(rows)


_LINK = re.compile(r"/reset\?token=([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Mail:
    uid: str
    token: str | None  # a reset link's token; None for any other email


def mail_of(mailbox: Mailbox) -> list[Mail]:
    found = []
    for message in list(mailbox.messages):
        uid = parseaddr(str(message["To"]))[1].split("@", 1)[0]
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        link = _LINK.search(text)
        found.append(Mail(uid, link.group(1) if link else None))
    return found


@dataclass
class Settled:
    """What was left on the email queue by workers that lost Redis, and handed to RQ's retry."""

    abandoned: int = 0  # listed as started, no heartbeat since
    stuck: int = 0  # taken off the queue (RQ's intermediate list), never started


def settle_email_queue(connection: redis.Redis) -> Settled:
    """Wait until nothing is queued, waiting for a retry or running on the email queue.

    A worker that lost Redis in the middle of a job leaves it listed as
    started, or taken but not started (RQ's intermediate list); RQ's own
    maintenance finds such a job ten minutes later and runs it again if it has
    retries left. That is done here as soon as a job has sat there for
    ABANDONED_AFTER seconds, with RQ's own calls, so that the email it owes
    (or a duplicate it could send: the store's claim on each email event is
    what prevents one) shows within the test.
    """
    queue = Queue(EMAIL_QUEUE, connection=connection)
    registry = queue.started_job_registry
    intermediate = queue.intermediate_queue
    settled = Settled()
    first_seen: dict[str, float] = {}
    janitor = SimpleWorker([queue], connection=connection)  # never started: only its failure handling is used

    def idle() -> bool:
        try:
            taken = [job_id for job_id in intermediate.get_job_ids() if job_id not in registry]
            for job_id in taken:
                if time.monotonic() - first_seen.setdefault(job_id, time.monotonic()) > ABANDONED_AFTER:
                    job = queue.fetch_job(job_id)
                    if job is not None:
                        janitor.handle_job_failure(job, queue, exc_string="Job was stuck in intermediate queue.")
                        settled.stuck += 1
                    intermediate.remove(job_id)
            if queue.count or queue.scheduled_job_registry.count or taken:
                return False
            listed = registry.get_job_ids()
            if not listed:
                return True
            jobs = [job for job in Job.fetch_many(listed, connection=connection) if job is not None]
            stale = rq_now() - timedelta(seconds=ABANDONED_AFTER)
            started = [job for job in jobs if job.get_status() == JobStatus.STARTED]
            if all((job.last_heartbeat or rq_now()) < stale for job in started):
                settled.abandoned += len(started)
                registry.cleanup(timestamp=time.time() + 10 * 86400)  # RQ's own handling of abandoned jobs
        except redis.RedisError:
            pass
        return False

    wait_for("the email queue idle", idle)
    return settled


def token_owners(store: Store, tokens: Sequence[str]) -> dict[str, str]:
    """Token -> the account id the store holds it for (by its SHA-256, as the store keeps it)."""
    digests = {hashlib.sha256(token.encode()).hexdigest(): token for token in tokens}
    with store.session() as session:
        rows = session.execute(
            select(ResetToken.token_hash, ResetToken.account_id).where(ResetToken.token_hash.in_(list(digests)))
        ).all()
    return {digests[digest]: account_id for digest, account_id in rows}


@dataclass(frozen=True)
class Stored:
    """An entry's password as the server stores it, and which server made its last change."""

    password: str
    writer: str  # the server id in its entryCSN (YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod)


def stored(directory: Slapd) -> dict[str, Stored]:
    """Every person's stored password and last writer on this server, read in one search as the root DN.

    Read before any bind: a bind with a password that has not replicated
    yet would count as a failure, and five of them lock the account."""
    conn = _connection(directory, directory.root_dn, directory.root_password)
    try:
        if not conn.bind():
            return {}
        conn.search(
            directory.people_dn, "(objectClass=inetOrgPerson)", SUBTREE, attributes=["userPassword", "entryCSN"]
        )
        found = {}
        for entry in conn.entries:
            value = entry.userPassword.value
            text = value.decode() if isinstance(value, bytes) else str(value or "")
            found[entry.entry_dn] = Stored(text, str(entry.entryCSN.value).split("#")[2])
        return found
    finally:
        conn.unbind()


def is_password(stored: Stored | None, password: str) -> bool:
    """Whether a stored {SSHA} value is ``password``."""
    if stored is None or not stored.password.startswith("{SSHA}"):
        return False
    raw = base64.b64decode(stored.password.removeprefix("{SSHA}"))
    return hashlib.sha1(password.encode() + raw[20:]).digest() == raw[:20]  # noqa: S324 - {SSHA} is SHA-1


def holds_all(directory: Slapd, passwords: dict[str, str]) -> bool:
    """Whether this server stores every one of ``passwords`` (DN -> password)."""
    here = stored(directory)
    return all(is_password(here.get(dn), password) for dn, password in passwords.items())


def not_binding(directory: Slapd, passwords: dict[str, str]) -> list[str]:
    """The DNs that do not bind with their password here (one connection, a simple bind per DN)."""
    failing = []
    conn = _connection(directory, directory.root_dn, directory.root_password)
    try:
        conn.open()
        for dn, password in passwords.items():
            if not conn.rebind(user=dn, password=password):
                failing.append(dn)
    finally:
        conn.unbind()
    return failing


def _connection(directory: Slapd, dn: str, password: str) -> Connection:
    tls = Tls(ca_certs_file=str(directory.ca_file), validate=ssl.CERT_REQUIRED)
    where = urlsplit(directory.ldaps_url)
    server = Server(where.hostname, port=where.port, use_ssl=True, tls=tls, get_info=NONE, connect_timeout=5)
    return Connection(server, user=dn, password=password, receive_timeout=10, raise_exceptions=False)


def seen(done: Sequence[Done]) -> set[tuple[str, str]]:
    """(user name, audit action) of each success the browsers saw."""
    return {(one.uid, AUDITED[one.kind]) for one in done}
