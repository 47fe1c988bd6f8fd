"""The fast tier: pure policy, no server. Replaces the suite's per-test Redis, database and mailbox with nothing."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def backing() -> None:
    """Unit tests start no server: see tests/conftest.py for the one the other tiers get."""
    return None
