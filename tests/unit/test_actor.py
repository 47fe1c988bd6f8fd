"""Who acts: one immutable value per use case, whose kind is stored as is in the audit trail."""

from __future__ import annotations

import dataclasses

import pytest

from sspm.policy.actor import Actor, ActorKind


def test_the_kinds_are_the_values_the_audit_trail_stores() -> None:
    """Changing one would orphan every audit row written with the old value."""
    assert {kind.value for kind in ActorKind} == {"user", "staff", "api", "job", "operator", "anonymous"}
    assert ActorKind("job") is ActorKind.JOB


def test_an_anonymous_visitor_has_an_address_and_no_identity() -> None:
    visitor = Actor.anonymous("203.0.113.9", "fr")
    assert visitor == Actor(ActorKind.ANONYMOUS, client_address="203.0.113.9", language="fr")
    assert visitor.id is None and visitor.role is None and visitor.organizations == ()


def test_a_user_acts_as_their_account_id() -> None:
    user = Actor.user("id-jsmith", "2001:db8::1")
    assert (user.kind, user.id, user.client_address, user.language) == (ActorKind.USER, "id-jsmith", "2001:db8::1", "")


def test_a_job_and_an_operator_act_by_name_from_nowhere() -> None:
    assert Actor.job("send-email") == Actor(ActorKind.JOB, id="send-email")
    assert Actor.operator("root") == Actor(ActorKind.OPERATOR, id="root")
    assert Actor.job("send-email").client_address == ""


def test_an_actor_cannot_be_changed_once_made() -> None:
    actor = Actor.anonymous("203.0.113.9")
    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.id = "id-jsmith"  # type: ignore[misc]


def test_actors_compare_and_hash_by_value() -> None:
    assert Actor.user("id-1", "203.0.113.9") == Actor.user("id-1", "203.0.113.9")
    assert len({Actor.user("id-1", "203.0.113.9"), Actor.user("id-1", "203.0.113.9"), Actor.job("x")}) == 2
