"""librdkafka's in-process mock cluster, for running our client against.

confluent-kafka starts it when a client is configured with ``test.mock.num.brokers``;
its brokers listen on 127.0.0.1. The mock has no CreateTopics (API 19): topics are
created by producing to them (the mock auto-creates with 4 partitions, replication
factor = number of brokers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class MockCluster:
    bootstrap: str
    handle: Any  # the confluent producer that owns the mock cluster

    def create_topic(self, topic: str) -> None:
        """Auto-create ``topic`` by producing one marker record into partition 0."""
        self.handle.produce(topic, b"marker", partition=0)
        assert self.handle.flush(10) == 0


@pytest.fixture
def mock_cluster() -> Iterator[MockCluster]:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    handle = confluent_kafka.Producer({"test.mock.num.brokers": 3, "log_level": 3})
    metadata = handle.list_topics(timeout=10)
    hosts = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    assert all(h.startswith("127.0.0.1:") for h in hosts)
    yield MockCluster(bootstrap=",".join(hosts), handle=handle)
    handle.flush(5)
