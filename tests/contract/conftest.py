"""The directory contract's fixtures: the servers come from tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.support import Backing


@pytest.fixture(autouse=True)
def fresh_backing(backing: Backing) -> Backing:
    """Every contract test's apps get this test's own Redis, database and mailbox, asked for or not."""
    return backing
