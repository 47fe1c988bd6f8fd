"""The one vocabulary of refusals: every reason has its sentence, every directory refusal its reason."""

from __future__ import annotations

import pytest

from connectors.directory import DirectoryMisconfigured, DirectoryUnavailable, Outcome
from sspm.policy import reasons
from sspm.policy.reasons import NEW_PASSWORD_REASONS, Reason
from sspm.web.messages import REASONS


def test_every_reason_has_a_sentence_and_every_sentence_a_reason() -> None:
    assert set(REASONS) == set(Reason)


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.OK])
def test_every_refusal_the_directory_can_give_is_a_reason_the_user_can_be_told(outcome: Outcome) -> None:
    assert reasons.of(outcome).value == outcome.value


def test_success_is_not_a_reason() -> None:
    with pytest.raises(ValueError):
        reasons.of(Outcome.OK)


def test_new_password_reasons_are_reasons_about_a_new_password() -> None:
    assert Reason.BAD_CREDENTIALS not in NEW_PASSWORD_REASONS
    assert {Reason.TOO_SHORT, Reason.MISMATCH, Reason.IN_HISTORY} <= NEW_PASSWORD_REASONS


def test_a_directory_failure_is_logged_once_and_a_misconfiguration_loudly(caplog: pytest.LogCaptureFixture) -> None:
    assert reasons.directory_failed(DirectoryMisconfigured("service account refused"), "change password") is (
        Reason.UNAVAILABLE
    )
    assert reasons.directory_failed(DirectoryUnavailable("timed out"), "sign in") is Reason.UNAVAILABLE
    levels = [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records if r.name == "sspm.directory"]
    assert levels == [("ERROR", "change password"), ("WARNING", "sign in")]
