"""Security questions without a store: the catalogue file, answer normalisation, hashing, decoy questions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sspm.policy.questions import AnswerHasher, Catalogue, Question, normalise

LANGUAGES = ("en", "fr")
SECRET = b"decoy-secret-for-tests"
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "questions.toml"


def catalogue_file(tmp_path: Path, toml: str) -> Path:
    path = tmp_path / "questions.toml"
    path.write_text(textwrap.dedent(toml), encoding="utf-8")
    return path


def numbered(count: int, *, retired: tuple[int, ...] = ()) -> Catalogue:
    """A catalogue of questions q0, q1, ... in file order, the ``retired`` ones no longer offered."""
    return Catalogue([Question(f"q{i}", {"en": f"Question {i}?"}, offered=i not in retired) for i in range(count)])


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("  Montréal  Nord ", "montreal nord"),
        ("MONTREAL NORD", "montreal nord"),
        ("Montre\u0301al\tNord\n", "montreal nord"),
        ("Straße", "strasse"),
        ("Åsa", "asa"),
    ],
)
def test_answers_are_kept_without_case_accents_or_extra_spaces(typed: str, kept: str) -> None:
    assert normalise(typed) == kept


def test_the_shipped_catalogue_loads_in_every_language() -> None:
    catalogue = Catalogue.load(SHIPPED, LANGUAGES)
    assert len(catalogue.questions) >= 3
    assert len(catalogue.by_id) == len(catalogue.questions)
    for question in catalogue.questions:
        assert question.text["en"] and question.text["fr"]


def test_a_question_missing_a_language_is_refused_by_name(tmp_path: Path) -> None:
    path = catalogue_file(
        tmp_path,
        """\
        [[question]]
        id = "first-pet"
        en = "What was the name of your first pet?"
        fr = "Quel était le nom de votre premier animal de compagnie ?"

        [[question]]
        id = "first-job"
        en = "What was your first job?"
        """,
    )
    with pytest.raises(ValueError, match=r"question 'first-job' has no text in fr"):
        Catalogue.load(path, LANGUAGES)


def test_an_empty_text_counts_as_missing(tmp_path: Path) -> None:
    path = catalogue_file(tmp_path, '[[question]]\nid = "first-pet"\nen = ""\nfr = "Animal ?"\n')
    with pytest.raises(ValueError, match=r"'first-pet' has no text in en"):
        Catalogue.load(path, LANGUAGES)


def test_two_questions_with_one_id_are_refused(tmp_path: Path) -> None:
    path = catalogue_file(
        tmp_path,
        """\
        [[question]]
        id = "first-pet"
        en = "What was the name of your first pet?"

        [[question]]
        id = "first-pet"
        en = "What was your first pet called?"
        """,
    )
    with pytest.raises(ValueError, match="two questions share an id"):
        Catalogue.load(path, ("en",))


def test_a_retired_question_loads_but_is_not_offered(tmp_path: Path) -> None:
    path = catalogue_file(
        tmp_path,
        """\
        [[question]]
        id = "old"
        en = "What was your first car?"
        offered = false

        [[question]]
        id = "first-pet"
        en = "What was the name of your first pet?"
        """,
    )
    catalogue = Catalogue.load(path, ("en",))
    assert [q.id for q in catalogue.questions] == ["old", "first-pet"]
    assert [q.id for q in catalogue.offered(5)] == ["first-pet"]


def test_a_question_falls_back_to_english_in_a_language_it_lacks() -> None:
    question = Question("first-pet", {"en": "Pet?", "fr": "Animal ?"})
    assert question.in_language("fr") == "Animal ?"
    assert question.in_language("de") == "Pet?"


def test_decoys_are_the_same_for_the_same_key() -> None:
    catalogue = numbered(10)
    first = catalogue.decoys(SECRET, "unknown-name", 3, 10)
    assert catalogue.decoys(SECRET, "unknown-name", 3, 10) == first
    assert numbered(10).decoys(SECRET, "unknown-name", 3, 10) == first


def test_decoys_depend_on_the_key_and_on_the_secret() -> None:
    catalogue = numbered(10)
    by_key = {tuple(q.id for q in catalogue.decoys(SECRET, f"name{i}", 3, 10)) for i in range(20)}
    by_secret = {tuple(q.id for q in catalogue.decoys(bytes([i]) * 16, "name", 3, 10)) for i in range(20)}
    assert len(by_key) > 1
    assert len(by_secret) > 1


def test_decoys_are_distinct_questions_drawn_from_the_offered_ones() -> None:
    catalogue = numbered(10, retired=(1, 4))
    offered = {q.id for q in catalogue.offered(6)}
    for i in range(20):
        decoys = [q.id for q in catalogue.decoys(SECRET, f"name{i}", 3, 6)]
        assert len(set(decoys)) == 3
        assert set(decoys) <= offered


def test_decoys_are_as_many_as_the_pool_holds_at_most() -> None:
    assert len(numbered(10).decoys(SECRET, "name", 5, 2)) == 2


def test_an_answer_is_checked_as_normalised() -> None:
    hasher = AnswerHasher()
    stored = hasher.hash("Montréal")
    assert "montr" not in stored.lower()
    assert hasher.verify(stored, "  MONTREAL ")
    assert not hasher.verify(stored, "Toronto")


def test_a_missing_or_damaged_hash_matches_nothing() -> None:
    """A missing hash is checked against a decoy hash, whose own answer must not open it."""
    hasher = AnswerHasher()
    assert not hasher.verify(None, "sspm-decoy-answer")
    assert not hasher.verify("not-an-argon2-hash", "anything")


def test_answers_checked_side_by_side_keep_each_verdict_in_its_answers_place() -> None:
    hasher = AnswerHasher()
    stored = [hasher.hash("Riverside Elementary"), None, hasher.hash("Biscuit"), hasher.hash("Montréal")]
    typed = ["riverside  elementary", "anything", "Not the pet", "MONTREAL"]

    verdicts = hasher.verify_all(list(zip(stored, typed, strict=True)))

    assert verdicts == [True, False, False, hasher.verify(stored[3], typed[3])]
    assert hasher.verify_all([]) == []
