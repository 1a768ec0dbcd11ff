"""Fixtures for unit tests: fake clusters, a fake system, a virtual clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from rift_chaos.fake_system import FakeSystem
from rift_chaos.nemesis import NemesisContext, Timeline
from rift_chaos.remote import FakeCluster
from rift_chaos.system import SystemSettings


@pytest.fixture
def fake_cluster() -> Iterator[FakeCluster]:
    cluster = FakeCluster(nodes=5, run_id="t1")
    with cluster:
        yield cluster


@pytest.fixture
def ticks() -> Callable[[], int]:
    counter = itertools.count(1)
    return lambda: next(counter) * 1_000


@pytest.fixture
def fake_system(fake_cluster: FakeCluster) -> FakeSystem:
    system = FakeSystem(settings=SystemSettings(partitions=2))
    for node in fake_cluster.nodes:
        system.start(fake_cluster.remote(node.name))
    return system


@pytest.fixture
def ctx(
    fake_cluster: FakeCluster, fake_system: FakeSystem, ticks: Callable[[], int]
) -> NemesisContext:
    return NemesisContext(cluster=fake_cluster, timeline=Timeline(), now=ticks, system=fake_system)
