"""Isolate a partition leader with iptables (netns backend, root only).

Three `broker serve` processes, one per network namespace. The leader of a
min.insync.replicas=2 partition is cut off from the other two in both directions,
while a producer writes to it directly and another writes through the majority.
The isolated leader must acknowledge nothing the majority did not replicate; the
majority elects a new leader; after healing there is exactly one leader per epoch
(from every node's ``observe`` lines) and the replicas agree below the high
watermark.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rift_broker.cluster.dev import read_observations, read_partition_log, wait_until
from rift_broker.records import iter_batches
from rift_client import PartitionInfo, TopicPartition, sync

pytestmark = [pytest.mark.integration, pytest.mark.root]

TOPIC = "isolated"
KAFKA_PORT = 9092
CLUSTER_PORT = 9093


def describe(bootstrap: str) -> PartitionInfo:
    with sync.Admin(bootstrap, request_timeout_ms=2000) as admin:
        info: PartitionInfo = admin.describe_topics([TOPIC])[TOPIC].partitions[0]
    return info


def brokers_seen(bootstrap: str) -> set[int]:
    with sync.Admin(bootstrap, request_timeout_ms=2000) as admin:
        brokers, _ = admin.describe_cluster()
    return {b.node for b in brokers}


def read_all(bootstrap: str) -> list[tuple[int, bytes]]:
    tp = TopicPartition(topic=TOPIC, partition=0)
    with sync.Admin(bootstrap, request_timeout_ms=5000) as admin:
        end = admin.list_offsets([tp], spec="latest")[tp]
    out: list[tuple[int, bytes]] = []
    with sync.Consumer(bootstrap, request_timeout_ms=5000) as consumer:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 30
        while end > 0 and (not out or out[-1][0] < end - 1):
            assert time.monotonic() < deadline, f"read {len(out)} of {end} records"
            out.extend((r.offset, r.value or b"") for r in consumer.poll(timeout_ms=500))
    return out


def below(data: bytes, high_watermark: int) -> bytes:
    """The stored batches wholly below ``high_watermark``."""
    end = 0
    for position, header in iter_batches(data):
        if header.last_offset >= high_watermark:
            break
        end = position + header.batch_length + 12  # + base offset and length fields
    return data[:end]


def stopped(remote: Any, daemon: Any) -> bool:
    return not remote.alive(daemon)


class Writer(threading.Thread):
    """Sends ``prefix0, prefix1, ...`` one by one until stopped; keeps the acks."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.stopping = threading.Event()
        self.acked: dict[bytes, int] = {}
        self.error: BaseException | None = None
        self.last: Any = None

    def run(self) -> None:
        n = 0
        try:
            with sync.Producer(
                self.bootstrap,
                acks="all",
                idempotent=True,
                request_timeout_ms=2000,
                delivery_timeout_ms=4000,
            ) as producer:
                while not self.stopping.is_set():
                    value = f"{self.prefix}{n}".encode()
                    n += 1
                    report = producer.send(TOPIC, value, partition=0)
                    self.last = report
                    if report.ok:
                        self.acked[value] = report.offset
        except BaseException as e:
            self.error = e


@pytest.fixture
def netns() -> Iterator[Any]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and iptables")
    from rift_chaos.remote.netns import NetnsCluster, netns_available

    reason = netns_available()
    if reason:
        pytest.skip(reason)
    with NetnsCluster(nodes=3) as net:  # teardown kills every daemon and removes it all
        yield net


def test_isolated_leader_acknowledges_nothing_unreplicated(netns: Any) -> None:
    from rift_chaos.nemesis import grudge
    from rift_chaos.nemesis._protocol import NemesisContext
    from rift_chaos.nemesis.partition import PartitionNemesis
    from rift_chaos.nemesis.timeline import Timeline

    nodes = {i: node for i, node in enumerate(netns.nodes, start=1)}
    controllers = ",".join(f"{i}@{n.host}:{CLUSTER_PORT}" for i, n in nodes.items())
    kafka = {i: f"{n.host}:{KAFKA_PORT}" for i, n in nodes.items()}
    everyone = ",".join(kafka.values())
    daemons = {}
    for i, node in nodes.items():
        remote = netns.remote(node.name)
        daemons[i] = remote.start_daemon(
            [
                sys.executable, "-m", "rift_broker.cli", "serve",
                "--node-id", str(i),
                "--controllers", controllers,
                "--listen", kafka[i],
                "--data-dir", str(Path(remote.workdir) / "data"),
                "--session-timeout-ms", "2000",
                "--election-timeout-ms", "500",
                "--replica-lag-time-max-ms", "2000",
            ],
            log="broker.log",
            pidfile="broker.pid",
        )  # fmt: skip
    wait_until(
        "every node registered",
        lambda: all(brokers_seen(kafka[i]) == set(nodes) for i in nodes),
        within_s=60,
    )
    with sync.Admin(everyone, request_timeout_ms=10_000) as admin:
        admin.create_topic(
            TOPIC, partitions=1, replication_factor=3, configs={"min.insync.replicas": "2"}
        )
        admin.wait_for_leaders(TOPIC, timeout_ms=30_000)
    wait_until("a full ISR", lambda: len(describe(everyone).isr) == 3)
    before = describe(everyone)
    isolated = before.leader
    majority = [i for i in nodes if i != isolated]
    majority_bootstrap = ",".join(kafka[i] for i in majority)

    # Some records before the fault, so there is history to diverge from.
    with sync.Producer(everyone, acks="all", idempotent=True) as producer:
        assert all(
            r.ok for r in producer.send_many(TOPIC, [(None, b"pre%d" % i) for i in range(50)])
        )

    start = time.monotonic_ns()
    ctx = NemesisContext(
        cluster=netns, timeline=Timeline(), now=lambda: time.monotonic_ns() - start
    )
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    to_isolated = Writer(kafka[isolated], "iso")
    to_majority = Writer(majority_bootstrap, "maj")
    try:
        names = [n.name for n in nodes.values()]
        nemesis.apply(grudge.isolate(names, nodes[isolated].name), time=ctx.now())
        to_isolated.start()
        after = wait_until(
            "a new leader on the majority side",
            lambda: (p := describe(majority_bootstrap)).leader in majority and p,
            within_s=30,
        )
        # A client that learns the leader from the majority. (One that learned it from
        # the isolated node stays with it: timeouts do not refresh our client's
        # metadata, only NOT_LEADER-like errors do, and the isolated node sends none.)
        to_majority.start()
        assert after.epoch > before.epoch
        try:
            wait_until("writes through the majority", lambda: len(to_majority.acked) >= 20)
        except AssertionError:
            state = {
                "majority": (len(to_majority.acked), repr(to_majority.error), to_majority.last),
                "isolated": (len(to_isolated.acked), repr(to_isolated.error), to_isolated.last),
                "describe": describe(majority_bootstrap),
            }
            raise AssertionError(f"no writes through the majority: {state}") from None
        time.sleep(2)  # more time for the isolated leader to (wrongly) acknowledge
    finally:
        to_isolated.stopping.set()
        to_majority.stopping.set()
        to_isolated.join(timeout=30)
        to_majority.join(timeout=30)
        nemesis.heal()
        nemesis.teardown()
    assert to_majority.error is None, to_majority.error
    assert to_isolated.error is None, to_isolated.error

    wait_until(
        f"node {isolated} back in the ISR", lambda: isolated in describe(everyone).isr, within_s=60
    )
    records = read_all(everyone)
    offsets = [o for o, _ in records]
    assert offsets == list(range(len(records)))
    values = [v for _, v in records]
    assert len(set(values)) == len(values), "a record was written twice"
    final = dict((v, o) for o, v in records)
    for writer in (to_isolated, to_majority):
        wrong = {v: o for v, o in writer.acked.items() if final.get(v) != o}
        assert not wrong, f"{writer.prefix}: acknowledged but not in the final log: {wrong}"
    print(
        f"isolated node {isolated} acknowledged {len(to_isolated.acked)} writes; "
        f"the majority {len(to_majority.acked)}; final log {len(records)} records"
    )

    # Stop cleanly so the data directories can be read, then compare the replicas.
    time.sleep(1)
    for i, daemon in daemons.items():
        netns.remote(nodes[i].name).signal(daemon, signal.SIGTERM)
    for i, daemon in daemons.items():
        remote = netns.remote(nodes[i].name)
        wait_until(f"node {i} stopped", functools.partial(stopped, remote, daemon), within_s=20)

    facts = [
        fact
        for i, node in nodes.items()
        for fact in read_observations(Path(netns.remote(node.name).workdir) / "broker.log", node=i)
        if fact.get("topic") == TOPIC
    ]
    leaders: dict[int, set[int]] = {}
    for fact in facts:
        if fact["kind"] == "leader":
            leaders.setdefault(fact["epoch"], set()).add(fact["node"])
    assert leaders, "no leader observed"
    assert all(len(who) == 1 for who in leaders.values()), f"two leaders in one epoch: {leaders}"
    high_watermark = max(f["offset"] for f in facts if f["kind"] == "high-watermark")
    assert high_watermark >= len(records)
    logs = {
        i: below(
            read_partition_log(Path(netns.remote(n.name).workdir) / "data", TOPIC, 0),
            len(records),
        )
        for i, n in nodes.items()
    }
    assert len(set(logs.values())) == 1, {i: len(b) for i, b in logs.items()}
