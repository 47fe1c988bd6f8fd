"""The reminder days, read once for the settings and the job alike."""

from __future__ import annotations

import pytest

from sspm.policy.expiry import BadThresholds, thresholds


def test_thresholds_are_read_largest_first_and_nonsense_is_refused() -> None:
    assert thresholds("1, 7,14,7") == (14, 7, 1)
    for bad in ("", "0,7", "seven", "-1"):
        with pytest.raises(BadThresholds):
            thresholds(bad)
