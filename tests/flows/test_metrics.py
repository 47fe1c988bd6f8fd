"""Prometheus metrics: each story shows in /metrics as counts, with no name, address, DN or IP in it.

Counters in one test process are shared by every app it builds (the
default registry, as in one production process), so each story compares
the counts before and after. The multiprocess story runs gunicorn with two
workers and an RQ worker process on one PROMETHEUS_MULTIPROC_DIR, as a
host runs them, and reads the sum from the app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import SimpleWorker

from connectors.directory import AccountAdministration, Directory, Provisioning, SelfService, SyncReader
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.env import sspm_environ
from lab.slapd import free_port
from sspm.infra import jobs, metrics
from sspm.infra.settings import ROOT, ConfigError
from tests.support import Backing, services_of, settings_for
from tests.support.flows import AppFactory, Visitor, recover, seed_enrolled

#: Where the people in these stories browse from (documentation range); it must never show in /metrics.
CLIENT_IP = "198.51.100.23"
NEW_PASSWORD = "Correct-Horse-Battery-42"
#: Retries run at once, so a burst worker sees a job to its end.
EMAIL_ENV = {"SSPM_EMAIL_RETRY_SECONDS": "0"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parsed(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_text(app: Flask, remote: str = "127.0.0.1", **headers: str) -> tuple[int, str]:
    client = app.test_client()
    page = client.get("/metrics", environ_base={"REMOTE_ADDR": remote}, headers=headers)
    return page.status_code, page.get_data(as_text=True)


def scrape(app: Flask) -> Samples:
    status, text = scrape_text(app)
    assert status == 200
    return parsed(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def browsing(app: Flask) -> Visitor:
    visitor = Visitor(app)
    visitor.client.environ_base["REMOTE_ADDR"] = CLIENT_IP
    return visitor


def run_email_jobs(app: Flask) -> None:
    """What ``python worker.py email`` does, in this process, until the queue is empty."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([jobs.EMAIL], connection=services_of(app).state.redis).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def ask_for_link(visitor: Visitor, typed: str) -> None:
    asked = visitor.submit("/forgot/email", {"username": typed})
    assert asked.status_code in (200, 303), asked.status


# -- each story, counted ----------------------------------------------------------------------


def test_a_password_change_is_counted_by_page_status_and_directory_operation(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd)
    person = accounts["normal"]
    before = scrape(app)

    changed = browsing(app).change_password(person.uid, person.password, NEW_PASSWORD)

    assert changed.status_code == 303
    after = scrape(app)
    assert grew(before, after, "sspm_requests_total", page="change.form", status="303") == 1
    assert grew(before, after, "sspm_requests_total", page="change.form", status="200") == 1  # the form itself
    assert grew(before, after, "sspm_request_duration_seconds_count", page="change.form") == 2
    assert grew(before, after, "sspm_directory_calls_total", operation="change_password", outcome="ok") == 1
    assert grew(before, after, "sspm_directory_duration_seconds_count", operation="change_password") == 1
    assert grew(before, after, "sspm_directory_calls_total", operation="verify_password", outcome="ok") >= 1


def test_a_failed_recovery_is_counted_by_purpose_and_reason(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd)
    john = accounts["normal"]
    seed_enrolled(app, john)
    before = scrape(app)

    refused = recover(browsing(app), "forgot", john.uid, {})  # every answer wrong

    assert refused.status_code == 422
    after = scrape(app)
    assert grew(before, after, "sspm_recovery_failures_total", purpose="forgot", reason="answers_refused") == 1
    assert grew(before, after, "sspm_recovery_failures_total", purpose="unlock", reason="answers_refused") == 0


def test_limit_hits_are_counted_by_what_the_limit_counts(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_IP="2 per minute", SSPM_LIMIT_PER_ACCOUNT="1 per minute")
    person = accounts["normal"]
    before = scrape(app)

    # Two tries at one name: the second is over the per-account limit.
    visitor = browsing(app)
    assert visitor.change_password(person.uid, "wrong-1", NEW_PASSWORD).status_code == 422
    assert visitor.change_password(person.uid, "wrong-2", NEW_PASSWORD).status_code == 429
    between = scrape(app)
    # A third from the same address, at another name: over the per-address limit.
    assert visitor.change_password(accounts["other"].uid, "wrong-3", NEW_PASSWORD).status_code == 429

    after = scrape(app)
    assert grew(before, between, "sspm_limit_hits_total", scope="account") == 1
    assert grew(between, after, "sspm_limit_hits_total", scope="ip") == 1
    assert grew(before, after, "sspm_requests_total", page="change.form", status="429") == 2


def test_an_email_queued_then_sent_shows_in_the_queue_depth_then_as_sent_and_as_a_job_run(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    app = build_app(slapd, **EMAIL_ENV)
    person = accounts["normal"]
    before = scrape(app)

    ask_for_link(browsing(app), person.uid)
    queued = scrape(app)
    run_email_jobs(app)

    after = scrape(app)
    assert value(queued, "sspm_queue_depth", queue="email") == 1
    assert value(after, "sspm_queue_depth", queue="email") == 0
    assert grew(before, after, "sspm_emails_total", outcome="sent") == 1
    job = "sspm.email.jobs.send_reset_link"
    assert grew(before, after, "sspm_job_runs_total", job=job, outcome="ok") == 1
    assert grew(before, after, "sspm_job_duration_seconds_count", job=job) == 1
    assert len(backing.mailbox.messages) == 1


def test_an_email_the_server_refuses_is_counted_retried_then_failed(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, **EMAIL_ENV, SSPM_SMTP_PORT=str(free_port()))  # nobody listens: every try fails
    before = scrape(app)

    ask_for_link(browsing(app), accounts["normal"].uid)
    run_email_jobs(app)  # one try, one retry at once (SSPM_EMAIL_RETRY_SECONDS=0)

    after = scrape(app)
    assert grew(before, after, "sspm_emails_total", outcome="retried") == 1
    assert grew(before, after, "sspm_emails_total", outcome="failed") == 1
    assert grew(before, after, "sspm_emails_total", outcome="sent") == 0
    assert grew(before, after, "sspm_job_runs_total", job="sspm.email.jobs.send_reset_link", outcome="failed") == 2


def test_a_directory_that_does_not_answer_is_counted_unavailable(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, LDAP_CONNECT_TIMEOUT="1", LDAP_TIMEOUT="1")
    person = accounts["normal"]
    visitor = browsing(app)
    visitor.get("/change")
    before = scrape(app)
    slapd.stop()

    answered = visitor.change_password(person.uid, person.password, NEW_PASSWORD)

    assert answered.status_code == 503
    after = scrape(app)
    assert grew(before, after, "sspm_directory_calls_total", operation="verify_password", outcome="unavailable") == 1
    assert grew(before, after, "sspm_requests_total", page="change.form", status="503") == 1


def test_the_timed_directory_is_still_every_role_and_keeps_the_connectors_attributes(
    build_app: AppFactory, slapd: Slapd
) -> None:
    directory = services_of(build_app(slapd)).directory

    for role in (Directory, SelfService, AccountAdministration, Provisioning, SyncReader):
        assert isinstance(directory, role)
    assert getattr(directory, "guard", None) is not None  # a connector's own attribute, read through


def test_metrics_name_no_user_address_dn_or_client_ip(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, **EMAIL_ENV)
    john, laura = accounts["normal"], accounts["other"]
    seed_enrolled(app, john)
    visitor = browsing(app)
    visitor.change_password(john.uid, john.password, NEW_PASSWORD)
    recover(browsing(app), "forgot", john.uid, DEMO_ANSWERS)
    recover(browsing(app), "unlock", laura.uid, {})
    ask_for_link(browsing(app), str(laura.mail or laura.uid))
    visitor.get(f"/no-such-page/{john.uid}")  # a path with a name in it: counted as "unmatched"
    run_email_jobs(app)

    status, text = scrape_text(app)

    assert status == 200
    assert 'page="unmatched"' in text
    folded = text.lower()
    for person in (john, laura):
        for said in (person.uid, person.mail, person.given_name, person.surname, person.display_name):
            assert not said or said.lower() not in folded, said
    assert CLIENT_IP not in text
    assert "uid=" not in folded and slapd.base_dn.lower() not in folded


# -- who may read them ------------------------------------------------------------------------


def test_metrics_are_served_only_to_the_allowed_addresses(build_app: AppFactory, slapd: Slapd) -> None:
    app = build_app(slapd)

    assert scrape_text(app, "127.0.0.1")[0] == 200
    assert scrape_text(app, "::1")[0] == 200
    status, text = scrape_text(app, CLIENT_IP)
    assert status == 404 and "sspm_" not in text
    assert scrape_text(app, "10.1.2.3")[0] == 404

    elsewhere = build_app(slapd, SSPM_METRICS_ALLOWED="198.51.100.0/24")
    assert scrape_text(elsewhere, CLIENT_IP)[0] == 200
    assert scrape_text(elsewhere, "127.0.0.1")[0] == 404


def test_the_allowed_addresses_are_read_and_checked_at_start(slapd: Slapd) -> None:
    networks = settings_for(slapd, SSPM_METRICS_ALLOWED=" 10.0.5.20 , 192.0.2.0/24,2001:db8::/32").metrics_allowed

    assert metrics.allowed("10.0.5.20", networks) and metrics.allowed("192.0.2.77", networks)
    assert metrics.allowed("2001:db8::1", networks) and metrics.allowed("::ffff:192.0.2.1", networks)
    assert not metrics.allowed("10.0.5.21", networks) and not metrics.allowed("unknown", networks)
    with pytest.raises(ConfigError, match="SSPM_METRICS_ALLOWED: 'localhost' is not an address or a network"):
        settings_for(slapd, SSPM_METRICS_ALLOWED="127.0.0.1,localhost")


def test_behind_a_trusted_proxy_the_client_address_decides_and_cannot_be_spoofed(
    build_app: AppFactory, slapd: Slapd
) -> None:
    app = build_app(slapd, SSPM_TRUSTED_PROXIES="1")  # the proxy runs on this host: every request comes from 127.0.0.1

    # A visitor through the proxy: the proxy appends the address it saw.
    assert scrape_text(app, "127.0.0.1", **{"X-Forwarded-For": CLIENT_IP})[0] == 404
    # The same visitor claiming to be loopback: the proxy appends the real address after the claim.
    assert scrape_text(app, "127.0.0.1", **{"X-Forwarded-For": f"127.0.0.1, {CLIENT_IP}"})[0] == 404
    # The scraper on the proxy's host, through the proxy.
    assert scrape_text(app, "127.0.0.1", **{"X-Forwarded-For": "127.0.0.1"})[0] == 200


def test_a_worker_serves_its_own_metrics_on_its_port_to_the_allowed_only(slapd: Slapd, backing: Backing) -> None:
    redis = Redis.from_url(backing.redis_url)
    port = free_port()
    open_to_all = settings_for(slapd, SSPM_METRICS_PORT=str(port))
    server = metrics.serve(open_to_all, redis, jobs.QUEUES)
    assert server is not None
    try:
        text = read(f"http://127.0.0.1:{port}/metrics")
        assert 'sspm_queue_depth{queue="email"}' in text
        assert get_status(f"http://127.0.0.1:{port}/elsewhere") == 404
        # The port already served (another process of the host): logged, and the process runs on.
        assert metrics.serve(open_to_all, redis, jobs.QUEUES) is None
    finally:
        server.shutdown()
        server.server_close()

    other = free_port()
    closed = metrics.serve(settings_for(slapd, SSPM_METRICS_PORT=str(other), SSPM_METRICS_ALLOWED="10.9.9.9"), None, ())
    assert closed is not None
    try:
        assert get_status(f"http://127.0.0.1:{other}/metrics") == 404
    finally:
        closed.shutdown()
        closed.server_close()
    assert metrics.serve(settings_for(slapd), None, ()) is None  # SSPM_METRICS_PORT=0: not served


def get_status(url: str) -> int:
    return int(requests.get(url, timeout=30).status_code)


# -- several processes on one host ------------------------------------------------------------


def wait_until(condition: Callable[[], bool], *, within: float = 60.0) -> None:
    """Wait for ``condition`` (a liveness check with a generous bound, not a timing)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return get_status(url) == 200
    except requests.ConnectionError:
        return False


@contextmanager
def running(command: list[str], environ: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def children(pid: int) -> set[int]:
    return {int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()}


def test_under_gunicorn_the_counts_of_every_process_of_the_host_add_up(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing, tmp_path: Path
) -> None:
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    (tmp_path / "home").mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_prefixes = ("SSPM_", "LDAP_", "DIRECTORY_KIND", "PROMETHEUS_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(app_prefixes)}
    environ.update(
        sspm_environ(
            slapd,
            redis_url=backing.redis_url,
            database_url=backing.database_url,
            smtp_port=backing.smtp_port,
            SSPM_PUBLIC_BASE_URL=base,
            **EMAIL_ENV,
        ),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path / "home"),  # where gunicorn would put its control socket
    )
    environ.pop("XDG_RUNTIME_DIR", None)
    here = build_app(slapd)  # to queue an email as the app would, into the same Redis
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:sspm.gunicorn_conf", "--preload"]
    gunicorn += ["-w", "2", "--threads", "2", "-b", f"127.0.0.1:{port}", "sspm.wsgi:app"]
    with (
        running(gunicorn, environ, tmp_path / "gunicorn.log") as web,
        running([sys.executable, "worker.py", "email"], environ, tmp_path / "worker.log") as worker,
    ):
        wait_until(lambda: answers(base + "/healthz") and len(children(web.pid)) == 2)
        before = parsed(read(base + "/metrics"))

        healthy = 40  # each on a new connection, taken by whichever of gunicorn's two workers accepts it
        for _ in range(healthy):
            assert get_status(base + "/healthz") == 200
        # A reset email queued as the app queues it, sent by the worker process.
        person = services_of(here).directory.find_account(accounts["normal"].uid)
        assert person is not None
        services_of(here).outbox.reset_link(person, "en")
        wait_until(lambda: len(backing.mailbox.messages) == 1)
        sent = "sspm.email.jobs.send_reset_link"
        wait_until(
            lambda: grew(before, parsed(read(base + "/metrics")), "sspm_job_runs_total", job=sent, outcome="ok") == 1
        )

        after = parsed(read(base + "/metrics"))
        assert grew(before, after, "sspm_requests_total", page="health.alive", status="200") == healthy
        assert grew(before, after, "sspm_emails_total", outcome="sent") == 1  # counted in the worker process
        # The master's start-up check (gunicorn --preload) is counted in its own file, read by a worker.
        assert value(after, "sspm_directory_calls_total", operation="check", outcome="ok") >= 1

        # A gunicorn worker killed: gunicorn starts another (child_exit marks it dead); its counts stay.
        killed = min(children(web.pid))
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: killed not in children(web.pid) and len(children(web.pid)) == 2)
        wait_until(lambda: answers(base + "/healthz"))
        later = parsed(read(base + "/metrics"))
        assert grew(before, later, "sspm_requests_total", page="health.alive", status="200") >= healthy + 1
        assert web.poll() is None and worker.poll() is None
    # No control socket: nothing in gunicorn's default place for it.
    assert not (tmp_path / "home" / ".gunicorn").exists()


def read(url: str) -> str:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200
    return str(answer.text)
