"""deploy/ and docs/deployment.md say what the code does.

The units' commands are parsed as systemd would run them (``%%`` is ``%``,
``%I`` the instance, ``$VAR`` split into words) and handed to the parser of
the program they start: gunicorn's own, worker.py's, ``python -m sspm``'s.
Every setting the document names is one SSPM reads, every secret setting
SSPM reads is named where the document says what must be identical on
every node, and the proxy sets exactly the headers a live app, built with
SSPM_TRUSTED_PROXIES=1, trusts.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest
from dotenv import dotenv_values
from gunicorn.config import Config  # type: ignore[import-untyped]  # gunicorn ships no types
from werkzeug.middleware.proxy_fix import ProxyFix

import worker
from lab import Slapd
from sspm.__main__ import build_parser
from sspm.web import request_ids
from tests.support.flows import AppFactory

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
DOC = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
INSTALLED_AT = "/opt/sspm"
SETTINGS = set(dotenv_values(ROOT / "config" / "defaults.env"))
#: Read from the environment by a library as the process starts, not a setting of SSPM's.
PROCESS_ENVIRONMENT = {"PROMETHEUS_MULTIPROC_DIR"}
#: ProxyFix's arguments and the header each makes the app believe.
PROXY_FIX_HEADERS = {
    "x_for": "X-Forwarded-For",
    "x_proto": "X-Forwarded-Proto",
    "x_host": "X-Forwarded-Host",
    "x_port": "X-Forwarded-Port",
    "x_prefix": "X-Forwarded-Prefix",
}


def service(name: str) -> dict[str, list[str]]:
    """A unit's [Service] entries, each key with all its values (continuation lines joined)."""
    text = (UNITS / name).read_text(encoding="utf-8").replace("\\\n", " ")
    entries: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def command(name: str, instance: str = "") -> list[str]:
    """ExecStart as systemd runs it, with the install's paths made this checkout's."""
    entries = service(name)
    variables = dict(v.replace("%I", instance).split("=", 1) for v in entries.get("Environment", []))
    (line,) = entries["ExecStart"]
    words = []
    for word in shlex.split(line.replace("%I", instance).replace("%%", "%")):
        if word.startswith("$") and word[1:] in variables:
            words += variables[word[1:]].split()  # $VAR unbraced: split into words
        else:
            words.append(word.replace(INSTALLED_AT, str(ROOT)))
    assert Path(words[0]).exists(), f"{name}: {words[0]} is not in the install"
    return words


def test_every_unit_runs_in_the_install_with_the_one_environment_file() -> None:
    units = sorted(UNITS.glob("*.service"))
    assert {u.name for u in units} == {"sspm-web.service", "sspm-worker@.service", "sspm-scheduler.service"}
    for unit in units:
        entries = service(unit.name)
        assert entries["WorkingDirectory"] == [INSTALLED_AT]
        assert entries["EnvironmentFile"] == ["/etc/sspm/sspm.env"]
        assert "/etc/sspm/sspm.env" in DOC
        assert entries["Restart"] == ["on-failure"]
        assert entries["User"] == ["sspm"] and entries["NoNewPrivileges"] == ["yes"]
        assert entries["ProtectSystem"] == ["strict"] and entries["PrivateTmp"] == ["yes"]
        for assignment in entries.get("Environment", []):
            key = assignment.split("=", 1)[0]
            # Either a variable ExecStart expands, or one a library reads; never a setting set behind the file's back.
            assert key not in SETTINGS, f"{unit.name}: {key} belongs in /etc/sspm/sspm.env"
            assert key in PROCESS_ENVIRONMENT or f"${key}" in entries["ExecStart"][0], f"{unit.name}: {key}"
        # What it writes is writable under ProtectSystem=strict: the metrics every process of the host shares.
        assert "/run/sspm/metrics" in entries["ReadWritePaths"][0]


def test_the_app_unit_is_gunicorn_as_the_readme_runs_it() -> None:
    words = command("sspm-web.service")
    assert words[0].endswith("/.venv/bin/gunicorn")
    config = Config()
    parsed = config.parser().parse_args(words[1:])
    # The project's gunicorn settings file (metrics of exited workers dropped) and a logger class that exist.
    assert parsed.config == "python:sspm.gunicorn_conf"
    assert callable(importlib.import_module("sspm.gunicorn_conf").child_exit)
    module, _, name = parsed.logger_class.rpartition(".")
    assert hasattr(importlib.import_module(module), name)
    assert parsed.preload_app is True
    # The WSGI app named exists (imported, it would start SSPM: read instead).
    (target,) = parsed.args
    module_name, _, attribute = target.partition(":")
    tree = ast.parse((ROOT / (module_name.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    assert attribute in {
        t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
    }
    # Only the proxy reaches it; more threads than directory calls allowed (config/defaults.env says why).
    assert all(bind.startswith("127.0.0.1:") for bind in parsed.bind)
    assert parsed.threads > int(dotenv_values(ROOT / "config" / "defaults.env")["LDAP_MAX_CALLS"] or 0)
    # No query string in the access log (an emailed link carries a token in one): %(U)s, never %(r)s or %(q)s.
    assert parsed.access_log_format and "%(U)s" in parsed.access_log_format
    assert not re.search(r"%\((r|q)\)s", parsed.access_log_format)


@pytest.mark.parametrize("instance", ["email", "sync housekeeping"])
def test_the_worker_template_takes_the_instances_the_doc_names(instance: str) -> None:
    words = command("sspm-worker@.service", instance)
    assert words[1] == "worker.py" and (ROOT / words[1]).is_file(), "relative to WorkingDirectory"
    assert worker.chosen_queues(words[2:]) == tuple(instance.split()), "worker.py takes them, in priority order"
    # The document names the instance as systemctl does: systemd-escape turns a space into \x20.
    escaped = instance.replace(" ", "\\x20")
    assert f"sspm-worker@{escaped}" in DOC or f"systemd-escape '{instance}'" in DOC


def test_the_scheduler_unit_runs_the_scheduler_command() -> None:
    words = command("sspm-scheduler.service")
    assert words[1:3] == ["-m", "sspm"]
    assert build_parser().parse_args(words[3:]).command == "scheduler"
    # And the health command the doc gives an orchestrator parses too.
    for line in re.findall(r"python -m sspm (health [a-z -]+)", DOC):
        assert build_parser().parse_args(line.split()).command == "health", line


def test_every_setting_the_document_names_is_one_sspm_reads() -> None:
    named = set(re.findall(r"\b((?:SSPM|LDAP)_[A-Z_]+[A-Z])\b", DOC))
    assert named, "the document names settings"
    assert named - SETTINGS - PROCESS_ENVIRONMENT == set()


def test_every_secret_setting_is_named_among_what_every_node_needs() -> None:
    source = (ROOT / "sspm" / "infra" / "settings.py").read_text(encoding="utf-8")
    # The secrets read either inline or from a file (KEY and KEY_FILE), plus the two read as text.
    from_files = set(re.findall(r'secret_of\("([A-Z_]+)"\)', source))
    assert from_files, "settings.py reads secrets with secret_of()"
    secrets = from_files | {f"{key}_FILE" for key in from_files} | {"SSPM_SECRET_KEY", "SSPM_SMTP_PASSWORD"}
    section = DOC[DOC.index("**Identical on every node**") : DOC.index("**Run once:**")]
    assert {key for key in secrets if f"`{key}`" not in section} == set()


def test_the_proxy_sets_exactly_the_headers_the_app_trusts_behind_one_proxy(
    build_app: AppFactory, slapd: Slapd
) -> None:
    app = build_app(slapd, SSPM_TRUSTED_PROXIES="1")
    fix = app.wsgi_app
    assert isinstance(fix, ProxyFix)
    trusted = {header for argument, header in PROXY_FIX_HEADERS.items() if getattr(fix, argument)}
    trusted.add(request_ids.HEADER)
    nginx = (ROOT / "deploy" / "nginx" / "sspm.conf").read_text(encoding="utf-8")
    set_headers = dict(re.findall(r"^\s*proxy_set_header\s+(\S+)\s+(.+);", nginx, re.MULTILINE))
    assert trusted <= set(set_headers), f"the proxy must set {sorted(trusted - set(set_headers))}"
    for header in PROXY_FIX_HEADERS.values():
        assert header in trusted or header not in set_headers, f"{header} is set but not trusted: drop it"
    # Each from what nginx saw itself, never copied from the client alone.
    assert set_headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    assert set_headers["X-Forwarded-Proto"] == "$scheme"
    assert set_headers[request_ids.HEADER] == "$request_id"
    # As nginx sends them (a client's own X-Forwarded-For to the left): the id is taken as the request's.
    answer = app.test_client().get(
        "/healthz",
        headers={
            "X-Forwarded-For": "198.51.100.7, 203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Request-Id": "4f2a9c",
        },
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert answer.headers[request_ids.HEADER] == "4f2a9c"
    assert "SSPM_TRUSTED_PROXIES=1" in DOC and "`ProxyFix(x_for=N, x_proto=N)`" in DOC
