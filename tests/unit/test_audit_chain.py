"""The audit chain's policy, without a database: what an insider's edit looks like to ``verify``.

Each story starts from a sound chain of audit rows, does to it what
someone with write access to the database could do, and checks that the
first damaged row is named, and how.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sspm.account.audit import Action
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.auditchain import (
    GENESIS,
    Break,
    Damage,
    Entry,
    Head,
    Link,
    ListIndex,
    canonical,
    digest,
    refuse_secrets,
    utc_text,
    verify,
)

T0 = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def entry(seq: int, **changes: object) -> Entry:
    base = Entry(
        seq=seq,
        at=T0 + timedelta(seconds=seq, microseconds=seq),
        actor_kind="anonymous",
        actor_id=None,
        actor_role=None,
        action="sign_in",
        outcome="bad_credentials" if seq % 3 else "ok",
        account_id=f"id-{seq % 4}",
        subject=f"user{seq % 4}",
        source_ip="203.0.113.9",
        details={"n": seq},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def chain(length: int, start_id: int = 100) -> tuple[list[Link], Head]:
    """``length`` rows written one after the other, as ``sspm.account.audit.record`` writes them."""
    links: list[Link] = []
    prev = GENESIS
    for seq in range(1, length + 1):
        content = entry(seq)
        mine = digest(content, prev)
        links.append(Link(start_id + seq, content, prev, mine))
        prev = mine
    return links, Head(length, prev)


def check(links: list[Link], head: Head | None) -> Break | None:
    return verify(iter(links), head, ListIndex(links))


def forge(seq: int, prev: str, row_id: int = 999, **changes: object) -> Link:
    """A row forged by someone who knows the algorithm: its own digest is right."""
    content = entry(seq, **changes)
    return Link(row_id, content, prev, digest(content, prev))


def test_a_sound_chain_verifies_from_the_first_row_to_the_head() -> None:
    links, head = chain(12)
    assert check(links, head) is None


def test_an_empty_trail_is_sound() -> None:
    assert check([], Head(0, GENESIS)) is None


def test_an_edited_row_is_named_as_altered() -> None:
    links, head = chain(10)
    # A failed sign-in rewritten as a success, straight in the database.
    links[4] = dataclasses.replace(links[4], entry=dataclasses.replace(links[4].entry, outcome="ok"))

    found = check(links, head)

    assert found is not None
    assert (found.damage, found.seq, found.row_id) == (Damage.ALTERED, 5, 105)
    assert "row 5 (id 105" in str(found)


@pytest.mark.parametrize("field", ["at", "subject", "source_ip", "details", "actor_kind", "account_id"])
def test_any_field_edited_breaks_the_row(field: str) -> None:
    links, head = chain(5)
    changed = {
        "at": T0 - timedelta(days=1),
        "subject": "someone_else",
        "source_ip": "198.51.100.1",
        "details": {"n": 0},
        "actor_kind": "staff",
        "account_id": None,
    }[field]
    links[2] = dataclasses.replace(links[2], entry=dataclasses.replace(links[2].entry, **{field: changed}))

    found = check(links, head)

    assert found is not None and (found.damage, found.seq) == (Damage.ALTERED, 3)


def test_an_edited_and_rehashed_row_is_named_by_the_row_that_disowns_it() -> None:
    links, head = chain(10)
    # The editor recomputed the row's own digest; the next row still names the old one.
    links[4] = forge(5, links[3].digest, row_id=105, outcome="ok")

    found = check(links, head)

    assert found is not None
    assert (found.damage, found.seq, found.row_id) == (Damage.ALTERED, 5, 105)


def test_a_deleted_row_is_named_as_removed() -> None:
    links, head = chain(10)
    del links[6]  # row 7

    found = check(links, head)

    assert found is not None
    assert (found.damage, found.seq) == (Damage.REMOVED, 8)
    assert str(found).startswith("row 7 was removed")


def test_deleting_the_first_row_shows() -> None:
    links, head = chain(4)
    del links[0]

    found = check(links, head)

    assert found is not None and found.damage is Damage.REMOVED and "the first row" in str(found)


def test_rows_cut_off_the_end_show_against_the_head() -> None:
    links, head = chain(10)

    found = check(links[:8], head)

    assert found is not None
    assert (found.damage, found.seq) == (Damage.REMOVED, 9)
    assert "rows 9 to 10 were removed from the end" in str(found)


def test_a_well_forged_row_appended_at_the_end_is_caught_by_the_head() -> None:
    links, head = chain(6)
    links.append(forge(7, links[-1].digest))

    found = check(links, head)

    assert found is not None
    assert (found.damage, found.seq, found.row_id) == (Damage.INSERTED, 7, 999)


def test_a_forged_row_slipped_in_the_middle_is_named_as_inserted() -> None:
    links, head = chain(8)
    # Room made by renumbering the rows after it (the numbers alone are not chained to anything).
    forged = forge(5, links[3].digest, outcome="ok")
    rest = [dataclasses.replace(x, entry=dataclasses.replace(x.entry, seq=x.seq + 1)) for x in links[4:]]
    tampered = [*links[:4], forged, *rest]

    found = check(tampered, head)

    assert found is not None
    assert (found.damage, found.row_id) == (Damage.INSERTED, 999)


def test_a_row_with_made_up_digests_is_named_as_inserted() -> None:
    links, head = chain(8)
    junk = Link(999, entry(5), "f" * 64, "e" * 64)
    tampered = [*links[:4], junk, *links[4:]]

    found = check(tampered, head)

    assert found is not None and (found.damage, found.row_id) == (Damage.INSERTED, 999)


def test_a_row_whose_number_is_taken_twice_is_named_as_inserted() -> None:
    links, _ = chain(5)
    duplicate = forge(5, links[4].digest)  # after row 5, as row 5 again

    found = check([*links, duplicate], Head(6, duplicate.digest))

    assert found is not None and (found.damage, found.row_id) == (Damage.INSERTED, 999)


def test_two_writers_that_did_not_wait_for_each_other_show_as_a_fork() -> None:
    links, _ = chain(5)
    sibling = forge(6, links[4].digest, row_id=998)
    other = forge(7, links[4].digest, row_id=999)  # also after row 5

    found = check([*links, sibling, other], Head(7, other.digest))

    assert found is not None and (found.damage, found.row_id) == (Damage.FORKED, 999)


def test_a_missing_or_edited_head_shows() -> None:
    links, _ = chain(3)
    missing = check(links, None)
    edited = check(links, Head(3, "a" * 64))

    assert missing is not None and missing.damage is Damage.HEAD
    assert edited is not None and edited.damage is Damage.HEAD


def test_the_digest_is_frozen() -> None:
    """Every chain ever written depends on this exact form: changing it makes every row read as altered."""
    content = Entry(
        seq=1,
        at=datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC),
        actor_kind="anonymous",
        actor_id=None,
        actor_role=None,
        action="sign_in",
        outcome="ok",
        account_id="2b1e6f3c-0000-4000-8000-000000000001",
        subject="éloïse",
        source_ip="203.0.113.9",
        details={"endpoint": "signin.signin", "b": [1, 2]},
    )
    form = (
        '{"account_id":"2b1e6f3c-0000-4000-8000-000000000001","action":"sign_in",'
        '"actor":{"id":null,"kind":"anonymous","role":null},"at":"2026-12-01T08:30:00.123456Z",'
        '"details":{"b":[1,2],"endpoint":"signin.signin"},"outcome":"ok","prev":"' + GENESIS + '",'
        '"seq":1,"source_ip":"203.0.113.9","subject":"éloïse"}'
    ).encode()
    assert canonical(content, GENESIS) == form
    assert digest(content, GENESIS) == hashlib.sha256(form).hexdigest()
    assert digest(content, GENESIS) == "900f5ef536d4d14cc470345803b606b7005f4acad4f7aff96ad3297c470bfa2c"


def test_a_time_reads_the_same_whichever_zone_the_database_hands_it_back_in() -> None:
    instant = datetime(2026, 12, 1, 8, 30, 0, 5, tzinfo=UTC)
    kathmandu = instant.astimezone(timezone(timedelta(hours=5, minutes=45)))
    naive_utc = instant.replace(tzinfo=None)  # how SQLite gives it back

    assert utc_text(instant) == utc_text(kathmandu) == utc_text(naive_utc) == "2026-12-01T08:30:00.000005Z"


@pytest.mark.parametrize("key", ["password", "new_password", "answers", "token", "resetToken", "captcha_text"])
def test_details_that_name_a_secret_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        refuse_secrets({key: "x"})


def test_details_without_a_secret_pass() -> None:
    refuse_secrets({"endpoint": "signin.signin", "sessions": 2, "purpose": "forgot"})


# -- the vocabulary ---------------------------------------------------------------------------------


def test_each_recovery_step_and_email_has_its_action() -> None:
    assert Action.recovery_start("forgot") is Action.FORGOT_START
    assert Action.recovery_answers("unlock") is Action.UNLOCK_ANSWERS
    assert Action.email("re_enrolled") is Action.EMAIL_RE_ENROLLED
    with pytest.raises(KeyError):
        Action.recovery_start("forgto")
    with pytest.raises(KeyError):
        Action.email("newsletter")


def test_the_values_are_those_rows_already_carry() -> None:
    """Rows written before the enum existed stay in the vocabulary."""
    assert {a.value for a in Action} >= {"sign_in", "change", "re-enroll", "forgot_start", "email_reset_link"}


def test_an_actor_is_a_value() -> None:
    visitor = Actor.anonymous("203.0.113.9", "fr")
    worker = Actor.job("worker")

    assert visitor == Actor(ActorKind.ANONYMOUS, client_address="203.0.113.9", language="fr")
    assert (worker.kind, worker.id) == (ActorKind.JOB, "worker")
    with pytest.raises(dataclasses.FrozenInstanceError):
        visitor.id = "someone"  # type: ignore[misc]
