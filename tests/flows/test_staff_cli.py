"""``python -m sspm staff``: how the first Super Admin is made, at the server's command line.

Run as an operator runs it (a process of its own, the settings in its
environment, the lab's slapd), then read back what it wrote: the grants
and the audit rows, whose actor is the operator's OS user.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from connectors import open_directory
from lab import Pki, SeedAccount, Slapd, start_slapd
from lab.demo import seed_demo_staff, staff_table
from lab.env import sspm_environ
from lab.seed import DEMO_ACCOUNTS, STAFF_ACCOUNTS
from sspm.account import sessions, staff
from sspm.account.sessions import Timeouts
from sspm.infra.settings import load
from sspm.infra.state import State
from sspm.infra.store import AuditEvent, Store
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.realm import Realm
from sspm.policy.roles import Grant
from tests.support import Backing, settings_for

ROOT = Path(__file__).resolve().parents[2]
#: A guard against a hung command, not a measure.
PATIENCE = 60.0


def sspm(slapd: Slapd, backing: Backing, *arguments: str) -> subprocess.CompletedProcess[str]:
    environ = sspm_environ(
        slapd, redis_url=backing.redis_url, database_url=backing.database_url, smtp_port=backing.smtp_port
    )
    return subprocess.run(
        [sys.executable, "-m", "sspm", *arguments],
        cwd=ROOT,
        env={**os.environ, **environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def id_of(slapd: Slapd, person: SeedAccount) -> str:
    directory = open_directory("openldap", settings_for(slapd).directory)
    try:
        account = directory.find_account(person.uid)
        assert account is not None
        return account.id
    finally:
        directory.close()


@pytest.mark.both_databases
def test_an_operator_grants_lists_and_revokes_roles_and_the_audit_trail_names_them(
    slapd: Slapd, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    john, laura = accounts["normal"], accounts["other"]
    done = sspm(slapd, backing, "staff", "grant", john.mail or "", "super-admin")
    assert (done.returncode, done.stderr) == (0, "")
    john_id = id_of(slapd, john)
    assert done.stdout.strip() == f"sspm: granted: super-admin in every organization for jsmith ({john_id})"
    again = sspm(slapd, backing, "staff", "grant", "JSmith", "super-admin")
    assert again.stdout.startswith("sspm: unchanged: super-admin"), "found by user name too, any case"
    laura_grant = sspm(slapd, backing, "staff", "grant", "lsmith", "helpdesk", "--organization", "North-Clinic")
    assert laura_grant.stdout.startswith("sspm: granted: helpdesk in north-clinic for lsmith")

    listed = sspm(slapd, backing, "staff", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == [
        "jsmith@partners.example\tsuper-admin (every organization)\tno TOTP yet",
        "lsmith@partners.example\thelpdesk (north-clinic)\tno TOTP yet",
    ]

    revoked = sspm(slapd, backing, "staff", "revoke", "lsmith", "helpdesk", "--organization", "north-clinic")
    assert revoked.stdout.startswith("sspm: revoked: helpdesk in north-clinic for lsmith")
    assert sspm(slapd, backing, "staff", "list").stdout.splitlines() == [
        "jsmith@partners.example\tsuper-admin (every organization)\tno TOTP yet"
    ]

    store = Store(backing.database_url)
    try:
        with store.session() as session:
            rows = session.execute(
                select(
                    AuditEvent.actor_kind,
                    AuditEvent.actor_id,
                    AuditEvent.action,
                    AuditEvent.outcome,
                    AuditEvent.account_id,
                    AuditEvent.details,
                ).order_by(AuditEvent.seq)
            ).all()
    finally:
        store.close()
    me = getpass.getuser()
    laura_id = id_of(slapd, laura)
    assert [tuple(r) for r in rows] == [
        ("operator", me, "staff_grant", "granted", john_id, {"role": "super-admin", "organization": "*"}),
        ("operator", me, "staff_grant", "unchanged", john_id, {"role": "super-admin", "organization": "*"}),
        ("operator", me, "staff_grant", "granted", laura_id, {"role": "helpdesk", "organization": "north-clinic"}),
        ("operator", me, "staff_revoke", "revoked", laura_id, {"role": "helpdesk", "organization": "north-clinic"}),
    ]
    assert sspm(slapd, backing, "audit", "verify").returncode == 0


def test_what_the_command_cannot_do_it_says_in_one_line(slapd: Slapd, backing: Backing) -> None:
    unknown = sspm(slapd, backing, "staff", "grant", "nobody@partners.example", "admin", "--organization", "st-mary")
    assert (unknown.returncode, unknown.stderr) == (1, "sspm: no account 'nobody@partners.example' in the directory\n")
    no_org = sspm(slapd, backing, "staff", "grant", "jsmith", "helpdesk")
    assert no_org.returncode == 2
    assert no_org.stderr == "sspm: helpdesk is granted in an organization: add --organization\n"
    bad_role = sspm(slapd, backing, "staff", "grant", "jsmith", "root")
    assert bad_role.returncode == 2 and "invalid choice: 'root'" in bad_role.stderr
    assert sspm(slapd, backing, "staff", "list").stdout == ""


def test_the_demo_seeds_staff_in_every_role_with_a_working_authenticator(
    tmp_path: Path, pki: Pki, backing: Backing
) -> None:
    """What the demo prints is enough to sign in: each secret's printed command gives a code SSPM accepts once."""
    with start_slapd(tmp_path / "directory", (*DEMO_ACCOUNTS, *STAFF_ACCOUNTS), pki=pki) as directory_server:
        environ = sspm_environ(directory_server, redis_url=backing.redis_url, database_url=backing.database_url)
        shown = seed_demo_staff(environ, tmp_path)
        assert [(m.login, m.role, m.organization) for m in shown] == [
            ("super1", "super-admin", None),
            ("admin1", "admin", "st-mary"),
            ("manager1", "assigning-manager", "st-mary"),
            ("helpdesk1", "helpdesk", "st-mary"),
            ("helpdesk2", "helpdesk", "north-clinic"),
        ]
        table = staff_table(shown)
        for member in shown:
            assert f"{member.login:<10} {member.password:<24}" in table and member.totp_secret in table
        assert seed_demo_staff(environ, tmp_path) == shown, "a restart prints the same secrets and grants nothing new"

        settings = load(env_file=Path("/nonexistent/.env"), environ=environ)
        store = Store(backing.database_url)
        connector = open_directory("openldap", settings.directory)
        try:
            for member in shown:
                account = connector.find_account(member.login)
                assert account is not None
                held = staff.staff_of(store, account.id)
                assert held is not None and held.totp_confirmed
                assert set(held.grants) == {Grant.of(member.role, member.organization)}
                printed = f"  {member.login:<10} {member.code_command()}"
                assert printed in table
                done = subprocess.run(["bash", "-c", member.code_command()], capture_output=True, text=True, check=True)
                code = done.stdout.strip()
                me = Actor(ActorKind.STAFF, id=account.id)
                assert staff.verify_second_factor(store, held, code, key=settings.staff_totp_key, actor=me) == "totp"
                assert staff.verify_second_factor(store, held, code, key=settings.staff_totp_key, actor=me) is None
        finally:
            connector.close()
            store.close()


def test_an_operator_makes_a_staff_member_who_lost_their_phone_enroll_again(
    slapd: Slapd, backing: Backing, accounts: dict[str, SeedAccount]
) -> None:
    """A lost phone and no recovery code left: the operator resets the second factor; the old one and the
    codes stop working, the member's staff sessions end, and the trail says who did it."""
    john = accounts["normal"]
    assert sspm(slapd, backing, "staff", "grant", john.uid, "super-admin").returncode == 0
    settings = settings_for(slapd)
    store = Store(backing.database_url)
    try:
        member = staff.staff_of(store, id_of(slapd, john))
        assert member is not None
        operator = Actor.operator("test")
        secret, _ = staff.begin_totp(store, member, key=settings.staff_totp_key)
        assert staff.confirm_totp(store, member, pyotp.TOTP(secret).now(), key=settings.staff_totp_key, actor=operator)
        codes = staff.new_recovery_codes(store, member, actor=operator)
        state = State(backing.redis_url)
        sessions.start(state, Realm.STAFF, Timeouts(600, 3600), member.account_id, {"staff_id": member.account_id})

        done = sspm(slapd, backing, "staff", "reset-2fa", john.uid)

        assert (done.returncode, done.stderr) == (0, "")
        assert (
            done.stdout.strip()
            == "sspm: jsmith enrolls a new authenticator at the next sign-in; 1 staff session(s) ended"
        )
        after = staff.staff_of(store, member.account_id)
        assert after is not None and not after.totp_confirmed
        assert staff.verify_second_factor(store, after, codes[0], key=settings.staff_totp_key, actor=operator) is None
        assert sspm(slapd, backing, "staff", "reset-2fa", "lsmith").returncode == 1, "not staff: nothing to reset"
        with store.session() as session:
            reset = session.scalars(select(AuditEvent).where(AuditEvent.action == "staff_totp_reset")).all()
        assert [(row.actor_kind, row.actor_id, row.outcome) for row in reset] == [
            ("operator", getpass.getuser(), "reset")
        ]
        state.close()
    finally:
        store.close()
