"""Run SSPM against a local demo PARTNERS domain: ``scripts/demo``.

``scripts/demo`` runs it on OpenLDAP (slapd with ppolicy);
``scripts/demo --directory ad`` on Active Directory (a Samba AD DC), with
the same accounts in the same states, the same enrolled users and the same
table printed.

Everything lives under .demo/ (git-ignored), the AD demo's under .demo/ad/:
the directory's database (so a changed password survives a restart), its
CA, Redis, SSPM's own database (enrollments, audit), caught emails and
text messages, and a secret generated once. Ports: DEMO_PORT (web, default 8000),
DEMO_LDAPS_PORT / DEMO_LDAP_PORT (OpenLDAP, default 10636 / 10389),
DEMO_REDIS_PORT (default 16379), DEMO_SMTP_PORT (default 10025). The Samba
DC listens on the standard LDAPS port, 636, of a spare loopback address
(127.0.0.2 first; never 127.0.0.1), and stops by itself after a week if
the demo was killed without a chance to stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
from sqlalchemy import select

from connectors import KINDS, open_directory
from connectors.directory import Directory, Outcome, Person
from lab import samba
from lab.enrollment import DEMO_ANSWERS, seed_enrollment
from lab.env import sspm_environ
from lab.redis import start_redis
from lab.seed import (
    DEMO_ACCOUNTS,
    DEMO_PEOPLE,
    MAIL_DOMAIN,
    NORTH_CLINIC,
    PEOPLE_DN,
    ST_MARY,
    STAFF_ACCOUNTS,
    DemoPerson,
)
from lab.slapd import Slapd, start_slapd
from lab.smtp import start_smtp
from sspm.account import audit, staff
from sspm.infra.settings import ROOT as SSPM_ROOT
from sspm.infra.settings import Settings, load, people_location
from sspm.infra.store import PersonRecord, Store, migrate, utcnow
from sspm.people.service import search_text_of
from sspm.policy.actor import Actor
from sspm.policy.organizations import key
from sspm.policy.questions import AnswerHasher, Catalogue

ROOT = Path(__file__).resolve().parent.parent
#: gunicorn's access log without query strings: an emailed link's one-time
#: token travels in one, and must not land in a log.
ACCESS_LOG = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'

DEMO = ROOT / ".demo"
#: Samba's own safety net: it exits by itself this long after starting.
SAMBA_MAX_RUNTIME = 7 * 24 * 3600

_STATE_TEXT = {
    "normal": "can sign in; change it for any reason",
    "temporary": "temporary password: must change it before anything else",
    "expired": "expired password: change it with the expired one",
    "locked": "locked after 5 wrong passwords",
    "disabled": "disabled by an administrator",
    "expiring": "expires in about 5 days",
}


def _data(kind: str) -> Path:
    """Where a demo keeps its state: each directory kind its own (its accounts have their own ids)."""
    return DEMO / "ad" if kind == "ad" else DEMO


def _start_directory(kind: str) -> Slapd | samba.SambaDC:
    """The demo's directory, as it was left last time (seeded the first time)."""
    if kind == "ad":
        return samba.start_kept_samba(
            _data(kind) / "directory",
            cache=samba.default_cache(),
            max_runtime=SAMBA_MAX_RUNTIME,
            accounts=(*DEMO_ACCOUNTS, *STAFF_ACCOUNTS),
        )
    return start_slapd(
        DEMO / "directory",
        (*DEMO_ACCOUNTS, *STAFF_ACCOUNTS),
        ldaps_port=int(os.environ.get("DEMO_LDAPS_PORT", "10636")),
        ldap_port=int(os.environ.get("DEMO_LDAP_PORT", "10389")),
        reuse=True,
    )


_DIRECTORY_NAMES = {"openldap": "OpenLDAP", "ad": "Active Directory, a Samba AD DC"}


def _secret(data: Path) -> str:
    path = data / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


#: Enrolled in the demo so Forgot Password (lsmith) and Unlock Account (klee) can be walked at once.
DEMO_ENROLLED = ("lsmith", "klee", "achen")


def _enroll_demo_users(environ: dict[str, str]) -> None:
    """Enroll the demo users once; a later re-enrollment through the app is kept."""
    settings = load(env_file=DEMO / "none.env", environ=environ)
    store = Store(settings.database_url)
    directory = open_directory(settings.directory_kind, settings.directory)
    hasher = AnswerHasher()
    try:
        from sspm.account.enrollment import enrolled_questions

        for uid in DEMO_ENROLLED:
            account = directory.find_account(uid)
            if account and not enrolled_questions(store, account.id):
                seed_enrollment(store, hasher, account.id)
    finally:
        directory.close()
        store.close()


#: The demo's staff: one in every role (user name, role, organization), on STAFF_ACCOUNTS.
DEMO_STAFF: tuple[tuple[str, str, str | None], ...] = (
    ("super1", "super-admin", None),
    ("admin1", "admin", ST_MARY),
    ("manager1", "assigning-manager", ST_MARY),
    ("helpdesk1", "helpdesk", ST_MARY),
    ("helpdesk2", "helpdesk", NORTH_CLINIC),
)


@dataclass(frozen=True)
class DemoStaff:
    """One demo staff member as printed: how to sign in, as what, and the authenticator's secret."""

    login: str
    password: str
    role: str
    organization: str | None
    #: The TOTP secret (base32) to put in an authenticator; empty when unknown (see ``seed_demo_staff``).
    totp_secret: str

    def code_command(self) -> str:
        """A command that prints the current code, for a tester without an authenticator at hand."""
        program = f'import pyotp; print(pyotp.TOTP("{self.totp_secret}").now())'
        return f"{shlex.quote(sys.executable)} -c {shlex.quote(program)}"


def seed_demo_staff(environ: dict[str, str], data: Path) -> list[DemoStaff]:
    """Grant the demo staff their roles and a confirmed TOTP, once; what to print about them.

    Granted as an operator would (``python -m sspm staff grant``), so the
    audit trail shows it. The authenticator is confirmed with the code of
    the step before now, so the code a tester types next is still fresh.
    SSPM keeps only the encrypted secret: the demo keeps the plain one in
    ``data/staff-totp.json`` to print it again at each start.
    """
    settings = load(env_file=DEMO / "none.env", environ=environ)
    kept_file = data / "staff-totp.json"
    kept: dict[str, str] = json.loads(kept_file.read_text()) if kept_file.exists() else {}
    store = Store(settings.database_url)
    directory = open_directory(settings.directory_kind, settings.directory)
    operator = Actor.operator("demo")
    passwords = {a.uid: a.password for a in STAFF_ACCOUNTS}
    shown: list[DemoStaff] = []
    try:
        for uid, role, organization in DEMO_STAFF:
            account = directory.find_account(uid)
            if account is None:  # a demo directory seeded before there were staff
                continue
            staff.grant(store, operator, account=account, role=role, organization=organization)
            member = staff.staff_of(store, account.id)
            assert member is not None
            if not member.totp_confirmed:
                secret, _uri = staff.begin_totp(store, member, key=settings.staff_totp_key)
                previous = pyotp.TOTP(secret).at(time.time() - 30)
                staff.confirm_totp(store, member, previous, key=settings.staff_totp_key, actor=operator)
                kept[uid] = secret
            shown.append(DemoStaff(uid, passwords[uid], role, organization, kept.get(uid, "")))
    finally:
        directory.close()
        store.close()
    kept_file.write_text(json.dumps(kept, indent=1))
    kept_file.chmod(0o600)
    return shown


def seed_demo_people(environ: dict[str, str]) -> list[tuple[DemoPerson, str]]:
    """Provision the demo's Employees and Clinicians once, already set up, with their records; what to print.

    Each account is made as creating a record makes it (``create_account``
    awaiting set-up, in SSPM_PEOPLE_*_LOCATION, its organization written),
    then given its seeded password as the set-up link would
    (``activate_account``); the record says so. A restart finds them by user
    name and makes nothing twice; a record changed or ended in the demo stays so.
    """
    settings = load(env_file=DEMO / "none.env", environ=environ)
    store = Store(settings.database_url)
    directory = open_directory(settings.directory_kind, settings.directory)
    operator = Actor.operator("demo")
    shown: list[tuple[DemoPerson, str]] = []
    try:
        for person in DEMO_PEOPLE:
            with store.session() as session:
                record = session.scalar(select(PersonRecord).where(PersonRecord.username == person.uid))
            if record is None:
                record = _provision_demo_person(settings, store, directory, operator, person)
            shown.append((person, record.status))
    finally:
        directory.close()
        store.close()
    return shown


def _provision_demo_person(
    settings: Settings, store: Store, directory: Directory, operator: Actor, person: DemoPerson
) -> PersonRecord:
    clinician = person.kind == "clinician"
    pattern = settings.people_clinicians_location if clinician else settings.people_employees_location
    account = directory.find_account(person.uid)
    if account is None:
        written = Person(
            person.given_name,
            person.surname,
            email=person.mail,
            title=person.title,
            department=person.department,
            mobile=person.mobile or None,
            organization=person.organization if settings.directory.organization_attribute else None,
        )
        outcome, account = directory.create_account(
            person.uid, written, None, location=people_location(pattern, person.organization)
        )
        assert outcome is Outcome.OK and account is not None
        assert directory.activate_account(account, person.password) is Outcome.OK
    now = utcnow()
    record = PersonRecord(
        kind=person.kind,
        organization=person.organization,
        given_name=person.given_name,
        family_name=person.surname,
        language=person.language,
        work_email=person.mail,
        job_title=person.title,
        department=person.department,
        manager_name="",
        start_date=now.date(),
        status="active",
        account_id=account.id,
        username=person.uid,
        college=person.college or None,
        college_key=key(person.college) or None,
        registration_number=person.registration_number or None,
        specialty=person.specialty or None,
        mobile=person.mobile or None,
        set_up_at=now,
        version=1,
        created_at=now,
        updated_at=now,
    )
    record.search_text = search_text_of(record)
    with store.session() as session:
        session.add(record)
    audit.record(
        store,
        audit.Action.RECORD_CREATE,
        "ok",
        actor=operator,
        account=account,
        details={"record": record.id, "kind": person.kind, "organization": person.organization, "demo": True},
    )
    return record


def people_table(people: list[tuple[DemoPerson, str]]) -> str:
    """The records block the demo prints: who, which section and organization, and how to sign in as them."""
    rows = [f"  {'user name':<10} {'password':<26} {'section':<10} {'organization':<13} name"]
    rows += [
        f"  {p.uid:<10} {p.password:<26} {p.kind + 's':<10} {p.organization:<13} {p.given_name} {p.surname}"
        + ("" if status == "active" else f" ({status})")
        for p, status in people
    ]
    return "\n".join(rows)


def staff_table(members: list[DemoStaff]) -> str:
    """The staff block the demo prints: logins, passwords, roles, secrets, and a code command each."""
    if not members:
        return "  (this demo directory was seeded before there were staff accounts: rm -r .demo to reseed)"
    rows = [f"  {'user name':<10} {'password':<24} {'role':<18} {'organization':<13} TOTP secret"]
    for m in members:
        where = m.organization or "every one"
        secret = m.totp_secret or "(unknown: rm -r .demo to reseed)"
        rows.append(f"  {m.login:<10} {m.password:<24} {m.role:<18} {where:<13} {secret}")
    rows.append("The current code for each (or add the secret to any authenticator app):")
    rows += [f"  {m.login:<10} {m.code_command()}" for m in members if m.totp_secret]
    return "\n".join(rows)


def _answers_table() -> str:
    catalogue = Catalogue.load(SSPM_ROOT / "config" / "questions.toml", ("en", "fr"))
    return "\n".join(f"  {catalogue.by_id[q].in_language('en'):<45} {a}" for q, a in DEMO_ANSWERS.items())


#: The account the printed example commands look at.
_EXAMPLE_UID = "jsmith"


def directory_facts(directory: Slapd | samba.SambaDC) -> str:
    """Where the demo's directory is and how to look in it, as printed by the demo.

    A user who changed a password or locked an account wants to see it in
    the directory itself: this says the ports, the CA, the DNs and the
    accounts to bind with, then gives commands (ldap-utils) that work as
    printed; tests/flows/test_demo_output.py runs them.
    """
    example = next(a for a in DEMO_ACCOUNTS if a.uid == _EXAMPLE_UID)
    if isinstance(directory, samba.SambaDC):
        user_dn = samba.person_dn(example)
        rows = [
            ("LDAPS", directory.ldaps_url),
            ("plain LDAP", f"ldap://{directory.address}:389 (binds with a password need StartTLS: -ZZ)"),
            ("CA file", str(directory.ca_file)),
            ("base DN", directory.domain_dn),
            ("users under", directory.people_dn),
            ("user DN", f"CN=<given name> <surname>,{directory.people_dn}, e.g. {user_dn}"),
            ("", f"(a user may also bind as <user name>@{MAIL_DOMAIN})"),
            ("service account", f"{directory.service_dn}, password {directory.service_password}"),
            ("administrator", f"{directory.admin_dn}, password {directory.admin_password}"),
        ]
        plain = f"LDAPTLS_CACERT={directory.ca_file} ldapsearch -x -LLL -ZZ -H ldap://{directory.address}:389"
        state = "pwdLastSet lockoutTime badPwdCount msDS-UserPasswordExpiryTimeComputed"
    else:
        user_dn = f"uid={example.uid},{PEOPLE_DN}"
        rows = [
            ("LDAPS", directory.ldaps_url),
            ("plain LDAP", directory.ldap_url),
            ("CA file", str(directory.ca_file)),
            ("base DN", directory.base_dn),
            ("users under", PEOPLE_DN),
            ("user DN", f"uid=<user name>,{PEOPLE_DN}, e.g. {user_dn}"),
            ("service account", f"{directory.service_dn}, password {directory.service_password}"),
            ("root DN", f"{directory.root_dn}, password {directory.root_password}"),
        ]
        plain = f"ldapsearch -x -LLL -H {directory.ldap_url}"
        state = "pwdChangedTime pwdAccountLockedTime pwdFailureTime pwdReset"
    table = "\n".join(f"  {name:<16} {value}" for name, value in rows)
    return (
        f"{table}\n"
        f"Sign in as {example.uid} (plain LDAP) and read the entry:\n"
        f"  {plain} -D '{user_dn}' -w '{example.password}' -b '{user_dn}' -s base cn\n"
        f"See {example.uid}'s password state (LDAPS, as SSPM's service account):\n"
        f"  LDAPTLS_CACERT={directory.ca_file} ldapsearch -x -LLL -H {directory.ldaps_url} "
        f"-D '{directory.service_dn}' -w '{directory.service_password}' -b '{user_dn}' -s base {state}"
    )


def _accounts_table() -> str:
    rows = [f"  {'user name':<10} {'password':<26} state"]
    rows += [f"  {a.uid:<10} {a.password:<26} {_STATE_TEXT[a.state]}" for a in DEMO_ACCOUNTS]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
    parser.add_argument(
        "--directory",
        choices=KINDS,
        default="openldap",
        help="the demo domain's directory: OpenLDAP (default) or Active Directory (a Samba AD DC)",
    )
    args = parser.parse_args()
    # Stopped by Ctrl-C or by SIGTERM alike, even while starting: whatever
    # was started is taken down, the directory last.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    data = _data(args.directory)
    data.mkdir(parents=True, exist_ok=True)
    _compile_translations()
    with contextlib.ExitStack() as running:
        directory = _start_directory(args.directory)
        running.callback(directory.stop)
        redis = start_redis(data / "redis", port=int(os.environ.get("DEMO_REDIS_PORT", "16379")), persist=True)
        running.callback(redis.stop)
        mail = start_smtp(data / "mail", port=int(os.environ.get("DEMO_SMTP_PORT", "10025")))
        running.callback(mail.stop)
        database_url = f"sqlite:///{data / 'sspm.db'}"
        migrate(database_url)
        base_url = f"http://127.0.0.1:{args.port}"
        sspm_env = sspm_environ(
            directory,
            redis_url=redis.url,
            database_url=database_url,
            smtp_port=mail.port,
            SSPM_SECRET_KEY=_secret(data),
            SSPM_PUBLIC_BASE_URL=base_url,
            SSPM_SMS_SENDER="catcher",
            SSPM_SMS_DIR=str(data / "sms"),
            # Plain lines read better in a terminal than JSON, which is for a log shipper (README: Logs).
            SSPM_LOG_FORMAT="text",
        )
        _enroll_demo_users(sspm_env)
        demo_staff = seed_demo_staff(sspm_env, data)
        demo_people = seed_demo_people(sspm_env)
        # Every process's metrics in one directory emptied at each start (README: Metrics): /metrics shows them all.
        metrics_dir = data / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        environ = {**os.environ, **sspm_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        print(
            f"\nSSPM demo: PARTNERS directory ({_DIRECTORY_NAMES[args.directory]}) at {directory.ldaps_url}, "
            f"Redis at {redis.url}, data in {data}\n"
            f"Open {base_url}/ (phone layout: {base_url}/m)\n\n"
            f"The directory, to see for yourself what happened in it:\n"
            f"{directory_facts(directory)}\n\n"
            f"Demo accounts (passwords as seeded; a password you change stays changed; "
            f"rm -r {data.relative_to(ROOT)} to reseed):\n"
            f"{_accounts_table()}\n\n"
            f"Enrolled in security questions: {', '.join(DEMO_ENROLLED)}, each with these answers:\n"
            f"{_answers_table()}\n"
            f"(Forgot Password: lsmith. Unlock Account: klee, who is locked. "
            f"Any other user name gets decoy questions.)\n\n"
            f"Staff console at {base_url}/staff (user name and password, then the TOTP code):\n"
            f"{staff_table(demo_staff)}\n"
            f"(Elsewhere staff are made with: python -m sspm staff grant <email> <role> --organization <org>.)\n\n"
            f"People's records at {base_url}/staff/people (admin1 sees both sections of st-mary, manager1 its "
            f"employees, helpdesk1 reads them), each already set up; their own passwords:\n"
            f"{people_table(demo_people)}\n"
            f"(A record created there emails its person a set-up link: it lands in {data / 'mail'}.)\n\n"
            f"Emails (reset links, notifications) are caught locally: each lands as a .eml file in {data / 'mail'}\n"
            f"Text messages (the code that proves a new mobile number, at /profile) too: each lands as a .sms file "
            f"in {data / 'sms'}\n"
            f"\nCtrl-C stops the demo.\n",
            flush=True,
        )
        command = [sys.executable, "-m", "gunicorn", "-c", "python:sspm.gunicorn_conf", "--preload"]
        command += ["--workers", "2", "--threads", "4"]
        command += ["--bind", f"127.0.0.1:{args.port}", "--access-logfile", "-", "--access-logformat", ACCESS_LOG]
        command += ["--logger-class", "sspm.infra.logs.GunicornLogger"]
        command += ["sspm.wsgi:app"]
        web = running.enter_context(_running(command, environ))
        # As the README has it: email on a worker of its own, so a long sync never delays a reset link.
        running.enter_context(_running([sys.executable, "worker.py", "email"], environ))
        running.enter_context(_running([sys.executable, "worker.py", "sync", "housekeeping"], environ))
        # And the scheduler that queues the hourly clean-up and the other scheduled jobs.
        running.enter_context(_running([sys.executable, "-m", "sspm", "scheduler"], environ))
        try:
            return web.wait()
        except KeyboardInterrupt:
            return 0
    return 0  # not reached; mypy cannot tell, as an ExitStack may swallow exceptions


def _compile_translations() -> None:
    """As scripts/setup does: the compiled catalogues are git-ignored, and SSPM will not start without them.

    So ``python -m lab.demo`` from a fresh clone (without scripts/demo) speaks French too.
    """
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", "compile", "-d", str(ROOT / "sspm" / "translations")], check=True)


@contextlib.contextmanager
def _running(command: list[str], environ: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=environ, cwd=ROOT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    sys.exit(main())
