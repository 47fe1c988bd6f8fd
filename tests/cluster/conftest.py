"""The failover test's deployment: every server and process of a two-node SSPM, started once
for the module (tests/support/cluster.py says what runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import Pki
from tests.support.cluster import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), pki) as running:
        yield running
