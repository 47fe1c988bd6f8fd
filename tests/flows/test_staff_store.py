"""Staff in SSPM's store, on SQLite and on PostgreSQL: grants, who may make them, the second factor.

No directory here: a grant names an account the caller already found, so
these stories build the ``Account`` values themselves. What the rows say
is read back from the database, never from what the functions returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pyotp
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from connectors.directory import Account
from sspm.account import staff
from sspm.account.audit import Action, check_chain
from sspm.account.staff import Change, SecondFactor, TotpAlreadyConfirmed, TotpKeyMismatch
from sspm.infra.settings import staff_totp_key
from sspm.infra.store import AuditEvent, StaffGrant, StaffMember, StaffRecoveryCode, Store
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.roles import BadGrant, Grant, Role

KEY = staff_totp_key("a-test-totp-key-that-is-long-enough-0123456789")
OPERATOR = Actor.operator("root")
ST_MARY, NORTH = "st-mary", "north-clinic"


def _account(name: str) -> Account:
    return Account(id=f"id-{name}", dn=f"uid={name},ou=people,dc=partners,dc=example", username=name,
                   display_name=name.title(), email=f"{name}@partners.example")  # fmt: skip


ADMIN, AGENT, NURSE, OTHER_ADMIN = (_account(n) for n in ("admin1", "helpdesk1", "nurse", "admin2"))


def _staff_actor(account: Account) -> Actor:
    return Actor(ActorKind.STAFF, id=account.id, client_address="192.0.2.7")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.close()


def _rows(store: Store, action: Action) -> list[tuple[str, str | None, str | None, dict[str, str]]]:
    with store.session() as session:
        found = session.execute(
            select(AuditEvent.outcome, AuditEvent.account_id, AuditEvent.actor_id, AuditEvent.details)
            .where(AuditEvent.action == action.value)
            .order_by(AuditEvent.seq)
        )
        return [(r.outcome, r.account_id, r.actor_id, r.details) for r in found]


def _grant_count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(StaffGrant)) or 0


def test_an_operator_grants_once_and_revokes_once_each_audited(store: Store) -> None:
    assert staff.staff_of(store, ADMIN.id) is None
    assert staff.grant(store, OPERATOR, account=ADMIN, role="admin", organization="St-Mary") is Change.GRANTED
    assert staff.grant(store, OPERATOR, account=ADMIN, role=Role.ADMIN, organization="st-mary") is Change.UNCHANGED
    assert _grant_count(store) == 1
    member = staff.staff_of(store, ADMIN.id)
    assert member is not None and member.login == "admin1@partners.example" and not member.totp_confirmed
    assert set(member.grants) == {Grant(Role.ADMIN, ST_MARY)} and member.highest_role is Role.ADMIN
    assert _rows(store, Action.STAFF_GRANT) == [
        ("granted", ADMIN.id, "root", {"role": "admin", "organization": ST_MARY}),
        ("unchanged", ADMIN.id, "root", {"role": "admin", "organization": ST_MARY}),
    ]

    # A Super Admin's grant is for every organization, whatever was typed.
    assert staff.grant(store, OPERATOR, account=ADMIN, role="super-admin", organization=NORTH) is Change.GRANTED
    assert {g.organization for g in staff.staff_of(store, ADMIN.id).grants} == {ST_MARY, "*"}  # type: ignore[union-attr]

    assert staff.revoke(store, OPERATOR, account=ADMIN, role="admin", organization=ST_MARY) is Change.REVOKED
    assert staff.revoke(store, OPERATOR, account=ADMIN, role="admin", organization=ST_MARY) is Change.UNCHANGED
    assert staff.revoke(store, OPERATOR, account=ADMIN, role="super-admin") is Change.REVOKED
    assert staff.staff_of(store, ADMIN.id) is None, "with no grant left, no longer staff"
    assert [r[0] for r in _rows(store, Action.STAFF_REVOKE)] == ["revoked", "unchanged", "revoked"]
    assert staff.all_staff(store) == []
    assert check_chain(store)[1] is None
    with pytest.raises(BadGrant):
        staff.grant(store, OPERATOR, account=ADMIN, role="helpdesk")


def test_staff_grant_what_their_own_grants_allow_and_nothing_else(store: Store) -> None:
    staff.grant(store, OPERATOR, account=ADMIN, role="admin", organization=ST_MARY)
    staff.grant(store, OPERATOR, account=OTHER_ADMIN, role="admin", organization=NORTH)
    admin = _staff_actor(ADMIN)

    assert staff.grant(store, admin, account=AGENT, role="helpdesk", organization=ST_MARY) is Change.GRANTED
    assert staff.grant(store, admin, account=NURSE, role="assigning-manager", organization=ST_MARY) is Change.GRANTED
    refused = [
        dict(account=AGENT, role="helpdesk", organization=NORTH),  # not their organization
        dict(account=AGENT, role="admin", organization=ST_MARY),  # not a role an Admin gives
        dict(account=AGENT, role="super-admin"),  # above their own
        dict(account=ADMIN, role="helpdesk", organization=ST_MARY),  # themselves
        dict(account=OTHER_ADMIN, role="helpdesk", organization=ST_MARY),  # a holder of an equal role
    ]
    for asked in refused:
        assert staff.grant(store, admin, **asked) is Change.REFUSED, asked  # type: ignore[arg-type]
    assert staff.revoke(store, admin, account=OTHER_ADMIN, role="admin", organization=NORTH) is Change.REFUSED

    # An agent grants nothing; a visitor or a job neither; staff the store does not know, neither.
    agent = _staff_actor(AGENT)
    for who in (agent, Actor.anonymous("192.0.2.9"), Actor.job("sync"), _staff_actor(_account("ghost"))):
        assert staff.grant(store, who, account=NURSE, role="helpdesk", organization=ST_MARY) is Change.REFUSED

    # What the store holds now decides, not what a session remembered: revoked, the admin can no longer grant.
    staff.revoke(store, OPERATOR, account=ADMIN, role="admin", organization=ST_MARY)
    assert staff.revoke(store, admin, account=AGENT, role="helpdesk", organization=ST_MARY) is Change.REFUSED

    outcomes = [r[0] for r in _rows(store, Action.STAFF_GRANT)]
    assert outcomes == ["granted"] * 4 + ["refused"] * 9
    assert {r[2] for r in _rows(store, Action.STAFF_GRANT)} >= {ADMIN.id, AGENT.id, None, "sync", "id-ghost"}
    assert [(s.login, sorted(g.role.value for g in s.grants)) for s in staff.all_staff(store)] == [
        ("admin2@partners.example", ["admin"]),
        ("helpdesk1@partners.example", ["helpdesk"]),
        ("nurse@partners.example", ["assigning-manager"]),
    ]


def test_two_requests_granting_the_same_role_at_once_make_one_grant(store: Store) -> None:
    racers = 4
    start = threading.Barrier(racers)
    outcomes: list[Change] = []

    def grant() -> None:
        start.wait()
        outcomes.append(staff.grant(store, OPERATOR, account=AGENT, role="helpdesk", organization=ST_MARY))

    threads = [threading.Thread(target=grant) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [Change.GRANTED] + [Change.UNCHANGED] * (racers - 1)
    assert _grant_count(store) == 1
    assert check_chain(store) == (racers, None)


def test_the_database_keeps_one_grant_per_triple_and_deleting_staff_deletes_their_grants(store: Store) -> None:
    staff.grant(store, OPERATOR, account=AGENT, role="helpdesk", organization=ST_MARY)
    staff.grant(store, OPERATOR, account=AGENT, role="helpdesk", organization=NORTH)
    member = staff.staff_of(store, AGENT.id)
    assert member is not None
    staff.new_recovery_codes(store, member, actor=OPERATOR)
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(StaffGrant(staff_id=member.id, role="helpdesk", organization=ST_MARY))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(StaffMember(account_id=AGENT.id, login="again"))
    with store.session() as session:  # as an operator's SQL would: the database itself cascades
        session.execute(delete(StaffMember).where(StaffMember.id == member.id))
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(StaffGrant)) == 0
        assert session.scalar(select(func.count()).select_from(StaffRecoveryCode)) == 0


def test_totp_is_stored_encrypted_confirmed_by_a_code_and_each_code_works_once(store: Store) -> None:
    staff.grant(store, OPERATOR, account=AGENT, role="helpdesk", organization=ST_MARY)
    member = staff.staff_of(store, AGENT.id)
    assert member is not None
    me = _staff_actor(AGENT)
    secret, uri = staff.begin_totp(store, member, key=KEY)
    assert uri.startswith("otpauth://totp/SSPM:helpdesk1%40partners.example?secret=" + secret)
    with store.session() as session:
        stored = session.scalar(select(StaffMember.totp_secret).where(StaffMember.id == member.id))
    assert stored and secret not in stored, "the secret is not in the database as such"

    totp = pyotp.TOTP(secret)
    step = int(time.time()) // totp.interval

    def code(offset: int) -> str:
        return totp.at((step + offset) * totp.interval)

    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in {code(k) for k in range(-2, 3)})
    assert not staff.verify_second_factor(store, member, totp.now(), key=KEY, actor=me), "not confirmed yet"
    assert not staff.confirm_totp(store, member, wrong, key=KEY, actor=me)
    assert staff.confirm_totp(store, member, code(0), key=KEY, actor=me)
    member = staff.staff_of(store, AGENT.id)
    assert member is not None and member.totp_confirmed
    with pytest.raises(TotpAlreadyConfirmed):
        staff.begin_totp(store, member, key=KEY)

    assert staff.verify_second_factor(store, member, code(0), key=KEY, actor=me) is None, "replayed"
    assert staff.verify_second_factor(store, member, code(-1), key=KEY, actor=me) is None, "older"
    later = code(1)
    assert (
        staff.verify_second_factor(store, member, later[:3] + " " + later[3:], key=KEY, actor=me) is SecondFactor.TOTP
    )
    assert staff.verify_second_factor(store, member, later, key=KEY, actor=me) is None, "a code is good once"
    with pytest.raises(TotpKeyMismatch):
        staff.verify_second_factor(store, member, later, key=staff_totp_key("another-key-" * 4), actor=me)

    assert [r[0] for r in _rows(store, Action.STAFF_TOTP_ENROLL)] == ["wrong-code", "confirmed"]
    assert [r[0] for r in _rows(store, Action.STAFF_SECOND_FACTOR)] == ["refused"] * 3 + ["totp", "refused"]
    assert check_chain(store)[1] is None


def test_recovery_codes_are_shown_once_kept_hashed_and_each_works_once(store: Store) -> None:
    staff.grant(store, OPERATOR, account=AGENT, role="helpdesk", organization=ST_MARY)
    member = staff.staff_of(store, AGENT.id)
    assert member is not None
    me = _staff_actor(AGENT)
    secret, _uri = staff.begin_totp(store, member, key=KEY)
    assert staff.confirm_totp(store, member, pyotp.TOTP(secret).now(), key=KEY, actor=me)

    codes = staff.new_recovery_codes(store, member, actor=me)
    assert len(codes) == len(set(codes)) == 10
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes)
    with store.session() as session:
        hashes = set(session.scalars(select(StaffRecoveryCode.code_hash)))
        dump = " ".join(str(v) for row in session.execute(text("SELECT * FROM staff_recovery_code")) for v in row)
    assert len(hashes) == 10 and not any(c in dump or c.replace("-", "").upper() in dump for c in codes)

    typed = " " + codes[0].upper().replace("-", " ") + " "
    assert staff.verify_second_factor(store, member, typed, key=KEY, actor=me) is SecondFactor.RECOVERY_CODE
    assert staff.verify_second_factor(store, member, codes[0], key=KEY, actor=me) is None, "spent"
    assert staff.unused_recovery_codes(store, member) == 9

    fresh = staff.new_recovery_codes(store, member, actor=me)
    assert staff.verify_second_factor(store, member, codes[1], key=KEY, actor=me) is None, "void once renewed"
    assert staff.verify_second_factor(store, member, fresh[1], key=KEY, actor=me) is SecondFactor.RECOVERY_CODE
    assert [r[0] for r in _rows(store, Action.STAFF_RECOVERY_CODES)] == ["issued", "issued"]
