"""The broker's integration tests' cluster: three real ``broker serve`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_broker.cluster.dev import LocalCluster, running_cluster

#: Quick failure detection and elections, so failover tests take seconds.
QUICK = {"session_timeout_ms": 1500, "election_timeout_ms": 300, "replica_lag_time_max_ms": 2000}


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalCluster]:
    """A running 3-node LocalCluster with the QUICK timings; a module's
    ``pytest.mark.cluster(**settings)`` overrides them or adds LocalCluster settings.
    Every node is SIGKILLed on the way out."""
    marker = request.node.get_closest_marker("cluster")
    settings = {**QUICK, **(marker.kwargs if marker is not None else {})}
    with running_cluster(nodes=3, directory=tmp_path, **settings) as c:
        yield c
