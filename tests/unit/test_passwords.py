"""The new-password rules, without a directory: the order of the checks, names in every form, zxcvbn's verdict."""

from __future__ import annotations

import pytest
from ldap3.core.exceptions import LDAPSASLPrepError
from ldap3.protocol.sasl.sasl import sasl_prep

from connectors.directory import Account, PasswordPolicy
from connectors.ldapconn import prepared
from sspm.policy.passwords import Rules, contains_name, first_problem, fold, name_parts, strength, user_inputs
from sspm.policy.reasons import Reason

RULES = Rules(min_length=8, history=5, min_strength=3)
STRONG = "Orchard-Kettle-Lantern-58"
OLD = "Old-Password-Quartz-11"

JOHN = Account(id="id-john", dn="uid=jsmith,ou=people", username="jsmith", display_name="John Smith", given_name="John")
ELOISE = Account(
    id="id-eloise", dn="uid=éloïse,ou=people", username="éloïse", display_name="Éloïse Côté", given_name="Éloïse"
)


def problem(new: str, account: Account | None = JOHN, *, confirm: str | None = None, old: str = OLD) -> Reason | None:
    return first_problem(new, new if confirm is None else confirm, old, RULES, account)


def test_a_strong_password_without_a_name_passes() -> None:
    assert problem(STRONG) is None


def test_the_confirmation_must_match() -> None:
    assert problem(STRONG, confirm=STRONG + "!") is Reason.MISMATCH


def test_the_new_password_must_differ_from_the_old() -> None:
    assert problem(STRONG, old=STRONG) is Reason.SAME_AS_OLD


def test_a_password_shorter_than_the_minimum_is_too_short() -> None:
    assert problem("Qz7!kP2") is Reason.TOO_SHORT
    assert problem("Qz7!kP2x") is not Reason.TOO_SHORT


def test_length_is_counted_in_code_points_as_the_meter_counts_it() -> None:
    # Seven accented letters are fourteen bytes of UTF-8, still seven characters.
    assert problem("éàüöçñø") is Reason.TOO_SHORT


def test_checks_that_need_no_account_come_first_in_a_fixed_order() -> None:
    """Mismatch, then same-as-old, then length: what is said never depends on who the user is."""
    assert problem("short", confirm="other", old="short") is Reason.MISMATCH
    assert problem("short", old="short") is Reason.SAME_AS_OLD
    assert problem("Smith", old="x") is Reason.TOO_SHORT


def test_without_a_proven_account_names_and_strength_are_not_judged() -> None:
    assert problem("Smith-password", account=None) is None
    assert problem("password1234", account=None) is None


@pytest.mark.parametrize(
    "password",
    ["Smith-Orchard-Kettle-58", "Orchard-JSMITH-Kettle-58", "Orchard-Kettle-john-58", "ｊｓｍｉｔｈ-Orchard-Kettle"],
)
def test_a_password_built_on_the_users_names_is_refused(password: str) -> None:
    assert problem(password) is Reason.CONTAINS_NAME


@pytest.mark.parametrize(
    "password",
    [
        "Eloise-Harbour-Quartz-19",
        "Quartz-ELOISE-Harbour-19",
        "Harbour-Cote-Quartz-19",
        "ｅｌｏｉｓｅ-Harbour-Quartz",
        "Harbour-Co\u0302te\u0301-Quartz",
        "Harbour-ÉLOÏSE-Quartz-19",
    ],
)
def test_an_accented_name_is_refused_without_its_accents_fullwidth_or_decomposed(password: str) -> None:
    assert problem(password, ELOISE) is Reason.CONTAINS_NAME


def test_every_word_of_a_hyphenated_name_counts() -> None:
    jean_pierre = Account(
        id="i", dn="d", username="jpmartin", display_name="Jean-Pierre Martin", given_name="Jean-Pierre"
    )
    assert problem("Pierre-Orchard-Kettle-58", jean_pierre) is Reason.CONTAINS_NAME


def test_name_parts_too_short_to_mean_anything_are_not_refused() -> None:
    al = Account(id="id-al", dn="uid=al,ou=people", username="al", display_name="Al Wu", given_name="Al")
    assert name_parts(al) == []
    assert problem("Always-Orchard-Kettle-58", al) is None


@pytest.mark.parametrize("password", ["password1234", "Summer2024!", "correcthorse"])
def test_a_guessable_password_is_too_weak(password: str) -> None:
    assert problem(password) is Reason.TOO_WEAK


def test_a_name_is_refused_before_strength_is_judged() -> None:
    assert problem("smith123", old="x") is Reason.CONTAINS_NAME


def test_the_folded_names_let_zxcvbn_see_a_disguised_name() -> None:
    """ "3l0is3C0t3!" holds no name as written; told only the names as written, zxcvbn
    scores it strong; told their folded forms too, it sees Éloïse Côté and refuses it."""
    disguised = "3l0is3C0t3!"
    assert not contains_name(disguised, user_inputs(ELOISE))
    assert strength(disguised, name_parts(ELOISE)) >= RULES.min_strength
    assert strength(disguised, user_inputs(ELOISE)) < RULES.min_strength
    assert problem(disguised, ELOISE) is Reason.TOO_WEAK


@pytest.mark.parametrize("spelling", ["Éloïse", "ELOISE", "ｅｌｏｉｓｅ", "E\u0301loi\u0308se", "eloise"])
def test_fold_sets_aside_accents_case_and_compatibility_forms(spelling: str) -> None:
    assert fold(spelling) == "eloise"


def test_the_names_given_to_zxcvbn_are_as_written_then_folded_once_each() -> None:
    assert name_parts(ELOISE) == ["éloïse", "Côté"]
    assert user_inputs(ELOISE) == ["éloïse", "Côté", "eloise", "cote"]
    assert user_inputs(JOHN) == ["jsmith", "John", "Smith", "john", "smith"]


def test_rules_from_the_directory_never_go_below_eight_characters() -> None:
    lax = PasswordPolicy(4, history=3, max_age_days=90, min_age_hours=0, lockout_threshold=5, lockout_minutes=30)
    strict = PasswordPolicy(
        12, history=0, max_age_days=None, min_age_hours=0, lockout_threshold=None, lockout_minutes=None
    )
    assert Rules.from_policy(lax, min_strength=3) == Rules(min_length=8, history=3, min_strength=3, max_age_days=90)
    assert Rules.from_policy(strict, min_strength=2) == Rules(min_length=12, history=0, min_strength=2)


def test_an_ascii_password_goes_to_openldap_exactly_as_sasl_prep_would_send_it() -> None:
    """The ASCII shortcut in connectors.ldapconn.prepared must agree with SASLprep on every ASCII character."""
    for code in range(128):
        password = f"Orchard{chr(code)}Kettle-58"
        try:
            expected = str(sasl_prep(password)).encode("utf-8")
        except LDAPSASLPrepError:
            expected = password.encode("utf-8")
        assert prepared(password) == expected, repr(password)
    assert prepared("Lantern\u00a0Orbit-2024") == b"Lantern Orbit-2024", "non-ASCII still goes through SASLprep"
