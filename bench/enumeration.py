"""Response times by kind of user name: can a stopwatch tell accounts apart?

    python -m bench.enumeration [--n 30] [--change-n 30] [--email-n 200]

SSPM served by gunicorn as in production (bench/change_password.py starts
it the same way), on a private slapd, redis-server, a migrated SQLite
database and a local SMTP catcher. Four kinds of user name go through
Forgot Password, interleaved in random order round after round so that
whatever else the machine does falls on every kind alike:

- enrolled: a normal account with security questions,
- not enrolled: a normal account without,
- disabled: an account an administrator disabled, with security questions,
- unknown: a name no account has.

Each round is one fresh browser: GET /forgot, POST the user name with the
CAPTCHA, GET the challenge, POST wrong answers with the CAPTCHA. The
CAPTCHA's characters are read the way the tests read them: the id from the
browser's own session cookie (signed, not encrypted; decoded with Flask's
serializer and the SSPM_SECRET_KEY this bench sets), the text from Redis.
Then the change-password page: an unknown user name against a real user
with a wrong password (both refusals are padded to a floor, see
sspm/timing.py). Then the reset-email request (POST /forgot/email) for an
account that gets the email, a disabled account and an unknown name, each
round a fresh browser and a name not asked for before (the answer is padded
to the same floor; no worker runs, so the queued jobs wait, as they would
behind a busy worker).

For each step and kind it prints median, p10, p90 and mean, how far apart
the medians are, a Mann-Whitney U test and a two-sample Kolmogorov-Smirnov
test of each kind against the first one (stdlib only). Timing is reported, not asserted. The exit status is 1
only when a correctness check fails: a step that answered with another
status or page than expected, or pages that differ between kinds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from redis import Redis

from bench.change_password import (
    DIRECTORIES,
    migrated_database,
    passphrase,
    start_directory,
    start_gunicorn,
    stop,
    tail,
)
from connectors import open_directory
from lab import BENCH_PASSWORD, DEMO_ACCOUNTS, SeedAccount
from lab.enrollment import DEMO_ANSWERS, seed_enrollment
from lab.env import sspm_environ
from lab.redis import RedisServer, start_redis
from lab.seed import MAIL_DOMAIN
from lab.smtp import SmtpCatcher, start_smtp
from sspm.infra import settings as settings_module
from sspm.infra.store import Store
from sspm.policy.questions import AnswerHasher

KINDS = ("enrolled", "not enrolled", "disabled", "unknown")
CHANGE_KINDS = ("wrong password", "unknown user")
EMAIL_KINDS = ("emailed", "disabled", "unknown")
SESSION_COOKIE = "sspm_session"
WRONG_ANSWER = "Not-The-Answer"
WRONG_PASSWORD = "Wrong-Guess-Harbor-0000"
#: Untimed rounds per kind first, so both gunicorn workers have compiled templates and warm pools.
WARMUP = 3
_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
_ANSWER_FIELD = re.compile(r'name="answer_(\d+)"')


# -- the people --------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """User names by kind: ``count`` each, all shaped alike (benchNNNN), none shared."""

    recovery: dict[str, list[str]]
    change: dict[str, list[str]]
    email: dict[str, list[str]]
    seeded: list[SeedAccount]
    enrolled: list[str]


def people(count: int, change_count: int, email_count: int = 0) -> Names:
    numbers = iter(range(1, 10_000))

    def names(k: int) -> list[str]:
        return [f"bench{next(numbers):04d}" for _ in range(k)]

    def account(uid: str, state: str = "normal") -> SeedAccount:
        number = uid.removeprefix("bench")
        return SeedAccount(uid, "Bench", f"User {number}", BENCH_PASSWORD, state, f"{uid}@{MAIL_DOMAIN}")

    recovery = {kind: names(count) for kind in KINDS}
    change = {kind: names(change_count) for kind in CHANGE_KINDS}
    email = {kind: names(email_count) for kind in EMAIL_KINDS}
    seeded = [account(uid) for uid in recovery["enrolled"] + recovery["not enrolled"] + change["wrong password"]]
    seeded += [account(uid) for uid in email["emailed"]]
    seeded += [account(uid, "disabled") for uid in recovery["disabled"] + email["disabled"]]
    return Names(recovery, change, email, seeded, recovery["enrolled"] + recovery["disabled"])


class _HashOnce(AnswerHasher):
    """The product's hasher, each distinct answer hashed once: seeding 100 enrollments
    would otherwise cost 300 argon2 hashes. Verifying costs the same whatever the salt."""

    def __init__(self) -> None:
        super().__init__()
        self._done: dict[str, str] = {}

    def hash(self, answer: str) -> str:
        if answer not in self._done:
            self._done[answer] = super().hash(answer)
        return self._done[answer]


def enroll(environ: dict[str, str], uids: Sequence[str]) -> None:
    """Security questions for ``uids``, keyed by the ids the app's own connector reads."""
    settings = settings_module.load(env_file=Path("/nonexistent"), environ=environ)
    directory = open_directory(settings.directory_kind, settings.directory)
    store = Store(settings.database_url)
    hasher = _HashOnce()
    try:
        for uid in uids:
            account = directory.find_account(uid)
            if account is None:
                raise RuntimeError(f"seeded account {uid} not found in the directory")
            seed_enrollment(store, hasher, account.id, DEMO_ANSWERS)
    finally:
        directory.close()
        store.close()


# -- one browser -------------------------------------------------------------------------


class Browser:
    """A requests.Session that can read its own CAPTCHA, as the tests' visitor does."""

    def __init__(self, base: str, secret_key: str, redis: Redis) -> None:
        self.base = base
        self.http = requests.Session()
        self.redis = redis
        signer = Flask("bench")
        signer.secret_key = secret_key
        serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
        assert isinstance(serializer, URLSafeTimedSerializer)
        self._serializer = serializer

    def fresh(self) -> None:
        """A new visitor: no cookies (the keep-alive connection stays)."""
        self.http.cookies.clear()

    def session(self) -> dict[str, Any]:
        value = self.http.cookies.get(SESSION_COOKIE)
        return dict(self._serializer.loads(value)) if value else {}

    def captcha(self) -> str:
        captcha_id = self.session().get("captcha")
        if not isinstance(captcha_id, str):
            raise Check("the page issued no CAPTCHA to this browser")
        raw = self.redis.get(f"sspm:captcha:{captcha_id}")
        if raw is None:
            raise Check("the CAPTCHA this browser holds is not in Redis")
        return str(json.loads(raw)["text"])

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=30)

    def post(self, path: str, fields: dict[str, str]) -> requests.Response:
        return self.http.post(self.base + path, data=fields, allow_redirects=False, timeout=30)


class Check(Exception):
    """A step answered otherwise than every kind should be answered."""


def token(page: requests.Response) -> str:
    found = _CSRF.search(page.text)
    if not found:
        raise Check(f"no csrf_token on {page.url}")
    return found.group(1)


def expect(response: requests.Response, status: int, location: str | None = None) -> None:
    where = response.headers.get("Location")
    if response.status_code != status or (location is not None and not (where or "").endswith(location)):
        raise Check(f"{response.request.method} {response.url}: HTTP {response.status_code} (Location {where!r})")


def page_shape(body: str) -> str:
    """A refusal page with what legitimately varies blanked out: the CSRF token."""
    return hashlib.sha256(_CSRF.sub("TOKEN", body).encode()).hexdigest()[:12]


STEPS = ("POST /forgot", "GET /recovery/challenge", "POST /recovery/challenge")


def recovery_round(browser: Browser, username: str) -> tuple[dict[str, float], str]:
    """One visitor through Forgot Password with wrong answers; seconds per step, and the refusal's shape."""
    browser.fresh()
    page = browser.get("/forgot")
    expect(page, 200)
    fields = {"csrf_token": token(page), "username": username, "captcha": browser.captcha(), "action": "continue"}
    began = time.perf_counter()
    started = browser.post("/forgot", fields)
    took = {STEPS[0]: time.perf_counter() - began}
    expect(started, 303, "/recovery/challenge")

    began = time.perf_counter()
    challenge = browser.get("/recovery/challenge")
    took[STEPS[1]] = time.perf_counter() - began
    expect(challenge, 200)
    asked = sorted(set(_ANSWER_FIELD.findall(challenge.text)))
    if not asked:
        raise Check("the challenge page asks no question")
    fields = {"csrf_token": token(challenge), "captcha": browser.captcha(), "action": "continue"}
    fields.update({f"answer_{i}": WRONG_ANSWER for i in asked})
    began = time.perf_counter()
    refused = browser.post("/recovery/challenge", fields)
    took[STEPS[2]] = time.perf_counter() - began
    expect(refused, 422)
    return took, page_shape(refused.text)


CHANGE_STEP = "POST /change"


def change_round(browser: Browser, username: str, new: str) -> tuple[dict[str, float], str]:
    """A wrong current password (or an unknown name) on the change page; the new one passes every rule."""
    browser.fresh()
    page = browser.get("/change")
    expect(page, 200)
    fields = {"csrf_token": token(page), "username": username, "current": WRONG_PASSWORD, "new": new, "confirm": new}
    began = time.perf_counter()
    refused = browser.post("/change", fields)
    took = {CHANGE_STEP: time.perf_counter() - began}
    expect(refused, 422)
    # The page echoes the typed name back; blank it so both kinds compare.
    return took, page_shape(refused.text.replace(username, "NAME"))


EMAIL_STEP = "POST /forgot/email"


def email_round(browser: Browser, username: str) -> tuple[dict[str, float], str]:
    """Ask for a reset link for ``username``; the answer is the same page whoever it names."""
    browser.fresh()
    page = browser.get("/forgot/email")
    expect(page, 200)
    fields = {"csrf_token": token(page), "username": username}
    began = time.perf_counter()
    answered = browser.post("/forgot/email", fields)
    took = {EMAIL_STEP: time.perf_counter() - began}
    expect(answered, 200)
    return took, page_shape(answered.text.replace(username, "NAME"))


# -- statistics (stdlib only) ------------------------------------------------------------


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U: (P(a > b) + P(a = b)/2, p-value).

    Normal approximation with tie correction and continuity correction,
    fine from about 20 per sample. The first number is the common-language
    effect size: 0.5 means a timer cannot tell the two apart.
    """
    n1, n2 = len(a), len(b)
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = sum(rank for rank, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return u1 / (n1 * n2), 1.0
    z = (abs(u1 - mean) - 0.5) / sigma
    return u1 / (n1 * n2), min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def kolmogorov_smirnov(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (D, p-value), asymptotic (Stephens' correction).

    D is the largest gap between the two empirical distribution functions:
    unlike Mann-Whitney it also sees a difference in shape, not only a shift.
    """
    xs, ys = sorted(a), sorted(b)
    n1, n2 = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n1 and j < n2:
        value = min(xs[i], ys[j])
        while i < n1 and xs[i] == value:
            i += 1
        while j < n2 and ys[j] == value:
            j += 1
        d = max(d, abs(i / n1 - j / n2))
    n = math.sqrt(n1 * n2 / (n1 + n2))
    lam = (n + 0.12 + 0.11 / n) * d
    if lam < 0.2:
        return d, 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


@dataclass
class Summary:
    median: float
    p10: float
    p90: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = [1000 * s for s in seconds]
        deciles = statistics.quantiles(ms, n=10, method="inclusive")
        return cls(statistics.median(ms), deciles[0], deciles[-1], statistics.fmean(ms))


@dataclass
class Samples:
    """Seconds by step, then by kind."""

    by_step: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, kind: str, took: dict[str, float]) -> None:
        for step, seconds in took.items():
            self.by_step.setdefault(step, {}).setdefault(kind, []).append(seconds)


def report(samples: Samples, kinds: Sequence[str]) -> tuple[list[str], list[tuple[str, str, float, float]]]:
    """The table, and every (step, kind, effect, p) against the first kind."""
    rows: list[str] = []
    tests: list[tuple[str, str, float, float]] = []
    head = (
        f"  {'':14} {'n':>4} {'median':>8} {'p10':>8} {'p90':>8} {'mean':>8} {'P(slower)':>10} {'p':>7}"
        f" {'KS D':>6} {'KS p':>7}"
    )
    for step, by_kind in samples.by_step.items():
        rows += [f"{step} (ms)", head]
        summaries = {kind: Summary.of(by_kind[kind]) for kind in kinds}
        for kind in kinds:
            s = summaries[kind]
            line = f"  {kind:14} {len(by_kind[kind]):4d} {s.median:8.1f} {s.p10:8.1f} {s.p90:8.1f} {s.mean:8.1f}"
            if kind == kinds[0]:
                line += f" {'(reference)':>18}"
            else:
                effect, p = mann_whitney(by_kind[kind], by_kind[kinds[0]])
                d, ks_p = kolmogorov_smirnov(by_kind[kind], by_kind[kinds[0]])
                tests.append((step, kind, effect, p))
                line += f" {effect:10.2f} {p:7.3f} {d:6.3f} {ks_p:7.3f}"
            rows.append(line)
        medians = [summaries[kind].median for kind in kinds]
        spread = max(medians) - min(medians)
        rows.append(
            f"  medians {min(medians):.1f} to {max(medians):.1f} ms: {spread:.1f} ms apart,"
            f" {100 * spread / min(medians):.1f}% of the lowest"
        )
    return rows, tests


# -- the run -----------------------------------------------------------------------------


def rounds(names: dict[str, list[str]], rng: random.Random) -> list[tuple[str, str]]:
    """(kind, name) in rounds: each round has one of every kind, in a random order."""
    kinds = list(names)
    order: list[tuple[str, str]] = []
    for i in range(min(len(v) for v in names.values())):
        rng.shuffle(kinds)
        order += [(kind, names[kind][i]) for kind in kinds]
    return order


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.enumeration", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=30, help="Forgot Password rounds per kind of user name (default 30)")
    parser.add_argument("--change-n", type=int, default=30, help="change-password refusals per kind (default 30)")
    parser.add_argument("--email-n", type=int, default=50, help="reset-email requests per kind (default 50)")
    parser.add_argument(
        "--change-concurrency",
        type=int,
        default=1,
        help="browsers at once on the change page (default 1: faster with more, but the noise hides small gaps)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the order of kinds")
    parser.add_argument("--directory", choices=DIRECTORIES, default="openldap")
    args = parser.parse_args(argv)
    if args.n < 5 or args.change_n < 5 or args.email_n < 5 or args.change_concurrency < 1:
        parser.error("--n, --change-n and --email-n must be at least 5, --change-concurrency at least 1")

    wall = time.perf_counter()
    rng = random.Random(args.seed)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.1f} before the start; other work on this machine widens every spread")
    names = people(args.n + WARMUP, args.change_n + WARMUP, args.email_n + WARMUP)
    secret_key = secrets.token_urlsafe(48)
    extra = {
        "SSPM_SECRET_KEY": secret_key,
        "SSPM_LIMIT_PER_IP": "1000000 per minute",
        "SSPM_LIMIT_PER_ACCOUNT": "1000000 per minute",
        "SSPM_RECOVERY_MAX_FAILURES": "1000000",
        "SSPM_LIMIT_EMAIL_PER_IP": "1000000 per minute",
        "SSPM_LIMIT_EMAIL_PER_ACCOUNT": "1000000 per minute",
    }
    problems: list[str] = []
    recovery, change, email = Samples(), Samples(), Samples()
    shapes: dict[str, set[str]] = {"recovery": set(), "change": set(), "email": set()}

    with tempfile.TemporaryDirectory(prefix="sspm-bench-") as tmp:
        workdir = Path(tmp)
        slapd = start_directory(args.directory, workdir, [*DEMO_ACCOUNTS, *names.seeded])
        redis: RedisServer | None = None
        smtp: SmtpCatcher | None = None
        gunicorn: subprocess.Popen[bytes] | None = None
        log = workdir / "gunicorn.log"
        try:
            redis = start_redis(workdir / "redis")
            smtp = start_smtp()
            database_url = migrated_database(workdir)
            environ = sspm_environ(slapd, redis_url=redis.url, database_url=database_url, smtp_port=smtp.port)
            enroll({**environ, **extra}, names.enrolled)
            gunicorn, base, log = start_gunicorn(
                slapd, redis, database_url, workdir, args.workers, args.threads, extra, smtp_port=smtp.port
            )
            ready = time.perf_counter() - wall
            browser = Browser(base, secret_key, Redis.from_url(redis.url))

            warm = {kind: uids[:WARMUP] for kind, uids in names.recovery.items()}
            timed = {kind: uids[WARMUP:] for kind, uids in names.recovery.items()}
            for kind, uid in rounds(warm, rng) + rounds(timed, rng):
                try:
                    took, shape = recovery_round(browser, uid)
                except Check as exc:
                    problems.append(f"recovery, {kind} ({uid}): {exc}")
                    continue
                if uid not in warm[kind]:
                    recovery.add(kind, took)
                    shapes["recovery"].add(shape)

            browser.http.close()

            # Each refusal here is mostly the padding's sleep, so several browsers at
            # once would cut the wall-clock; but their contention widens every
            # distribution and hides small gaps, hence one by default.
            taken: set[str] = set()
            warm = {kind: uids[:WARMUP] for kind, uids in names.change.items()}
            timed = {kind: uids[WARMUP:] for kind, uids in names.change.items()}
            jobs = [(kind, uid, passphrase(taken)) for kind, uid in rounds(warm, rng) + rounds(timed, rng)]
            local = threading.local()
            browsers: list[Browser] = []

            def one(job: tuple[str, str, str]) -> tuple[str, str, dict[str, float], str] | str:
                kind, uid, new = job
                if not hasattr(local, "browser"):
                    local.browser = Browser(base, secret_key, Redis.from_url(redis_url))
                    browsers.append(local.browser)
                try:
                    took, shape = change_round(local.browser, uid, new)
                except Check as exc:
                    return f"change, {kind} ({uid}): {exc}"
                return kind, uid, took, shape

            redis_url = redis.url
            with ThreadPoolExecutor(args.change_concurrency) as pool:
                for outcome in pool.map(one, jobs):
                    if isinstance(outcome, str):
                        problems.append(outcome)
                    elif outcome[1] not in warm[outcome[0]]:
                        change.add(outcome[0], outcome[2])
                        shapes["change"].add(outcome[3])
            for each in browsers:
                each.http.close()

            browser = Browser(base, secret_key, Redis.from_url(redis.url))
            warm = {kind: uids[:WARMUP] for kind, uids in names.email.items()}
            timed = {kind: uids[WARMUP:] for kind, uids in names.email.items()}
            for kind, uid in rounds(warm, rng) + rounds(timed, rng):
                try:
                    took, shape = email_round(browser, uid)
                except Check as exc:
                    problems.append(f"email, {kind} ({uid}): {exc}")
                    continue
                if uid not in warm[kind]:
                    email.add(kind, took)
                    shapes["email"].add(shape)
            browser.http.close()
        finally:
            if gunicorn is not None:
                stop(gunicorn)
            if smtp is not None:
                smtp.stop()
            if redis is not None:
                redis.stop()
            slapd.stop()
        if problems:
            print(f"gunicorn log (tail):\n{tail(log)}\n", file=sys.stderr)

    for part, seen in shapes.items():
        if len(seen) > 1:
            problems.append(f"{part}: the refusal page differs between kinds ({len(seen)} different pages)")

    print(f"{args.directory}, redis, database, smtp + gunicorn -w {args.workers} --threads {args.threads}")
    print(
        f"ready in {ready:.1f} s; {args.n} rounds per kind, {args.change_n} change refusals per kind,"
        f" {args.email_n} reset-email requests per kind"
    )
    print(
        "P(slower): the chance that a request of that kind takes longer than one of the reference kind"
        " (0.50: a stopwatch cannot tell them apart); p: two-sided Mann-Whitney U against the reference;"
        " KS D and p: two-sample Kolmogorov-Smirnov against the reference."
    )
    print()
    tests: list[tuple[str, str, float, float]] = []
    for samples, kinds in ((recovery, KINDS), (change, CHANGE_KINDS), (email, EMAIL_KINDS)):
        if samples.by_step and all(len(samples.by_step[s].get(k, [])) >= 2 for s in samples.by_step for k in kinds):
            rows, found = report(samples, kinds)
            tests += found
            print("\n".join(rows))
            print()
    if tests:
        worst = min(tests, key=lambda t: t[3])
        alpha = 0.01 / len(tests)
        flagged = [t for t in tests if t[3] < alpha]
        print(
            f"smallest p: {worst[3]:.3g} ({worst[0]}, {worst[1]}); {len(tests)} comparisons,"
            f" so p < {alpha:.1g} (0.01 Bonferroni) is the bar: "
            + (", ".join(f"{s}: {k} (P {e:.2f})" for s, k, e, _ in flagged) if flagged else "none below it")
        )
    for problem in problems[:20]:
        print(f"CHECK FAILED: {problem}")
    print(f"wall-clock {time.perf_counter() - wall:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
