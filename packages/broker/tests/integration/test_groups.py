"""Consumer groups with unmodified clients: kafka-python, aiokafka, confluent-kafka, rift_client.

For each client, three member processes (``group_member.py``) share a 6-partition
topic on an in-process broker, each committing exactly what it consumed after every
poll. Then, checked from the records the members report and from OffsetFetch:

1. steady state: every record produced is consumed exactly once, and the committed
   offsets end at the log end;
2. a member that closes (LeaveGroup) hands its partitions over at once, and the
   others go on from the committed offsets: again exactly once;
3. a member killed with SIGKILL (no LeaveGroup: its session has to expire) loses its
   partitions within the session timeout, and the survivor consumes what was
   produced meanwhile from the committed offsets, exactly once;
4. a broker restart on the same data directory keeps every committed offset.

A separate test kills the broker itself with SIGKILL after a commit was answered
and finds the offset after the restart: commits are durable before they are
acknowledged. Waits are bounded by deadlines; nothing asserts on timing.
"""

from __future__ import annotations

import functools
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rift_broker.cluster.dev import wait_until
from rift_broker.server import BrokerConfig
from rift_broker.server.testing import (
    BrokerThread,
    committed_offsets,
    produce_to_every_partition,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PARTITIONS = 6
PER_PARTITION = 50
CLIENTS = ["kafka-python", "aiokafka", "confluent-kafka", "rift"]
MEMBER = Path(__file__).with_name("group_member.py")
WAIT_S = 90.0  # generous: rebalances on a loaded machine; never a timing assertion


def _config(data_dir: Path, port: int = 0) -> BrokerConfig:
    return BrokerConfig(
        data_dir=data_dir,
        port=port,
        offsets_partitions=10,
        group_initial_rebalance_delay_ms=1000,
    )


wait_for = functools.partial(wait_until, within_s=WAIT_S)


class Member:
    """One member process and what it reported."""

    def __init__(self, client: str, bootstrap: str, topic: str, group: str, log: Path) -> None:
        self.name = log.stem
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(MEMBER), client, bootstrap, topic, group],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.assignment: list[int] = []
        self.records: list[tuple[int, int, str]] = []
        self.commit_failures: list[str] = []
        self.closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._events.put(json.loads(line))

    def update(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            kind = event["event"]
            if kind == "assigned":
                self.assignment = event["partitions"]
            elif kind == "records":
                self.records.extend((p, o, v) for p, o, v in event["items"])
            elif kind == "commit_failed":
                self.commit_failures.append(event["error"])
            elif kind == "closed":
                self.closed = True

    def close(self) -> None:
        """Graceful: the consumer closes (LeaveGroup) and the process exits 0."""
        assert self.process.stdin is not None
        self.process.stdin.write("close\n")
        self.process.stdin.flush()
        assert self.process.wait(60) == 0, self.stderr()
        self._reader.join(10)
        self.update()
        assert self.closed

    def kill(self) -> None:
        """A crash: no LeaveGroup, no last commit."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._reader.join(10)
        self.update()

    def stderr(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text()[-4000:]

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


def produce(bootstrap: str, topic: str, tag: str) -> set[tuple[int, int, str]]:
    return produce_to_every_partition(
        bootstrap, topic, partitions=PARTITIONS, per_partition=PER_PARTITION, tag=tag
    )


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    return committed_offsets(bootstrap, topic, group, partitions=PARTITIONS)


def create_topic(bootstrap: str, topic: str) -> None:
    from rift_client import sync

    with sync.Admin(bootstrap) as admin:
        admin.create_topic(topic, partitions=PARTITIONS)


def balanced(members: list[Member]) -> bool:
    """Every partition owned by exactly one member, and each member owns its share."""
    for m in members:
        m.update()
    owned = [p for m in members for p in m.assignment]
    share = PARTITIONS // len(members)
    return sorted(owned) == list(range(PARTITIONS)) and all(
        len(m.assignment) == share for m in members
    )


def seen(members: list[Member]) -> Counter[tuple[int, int, str]]:
    for m in members:
        m.update()
    return Counter(record for m in members for record in m.records)


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[Member]]:
    started: list[Member] = []
    yield started
    for m in started:
        m.cleanup()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_group_shares_the_work_exactly_once_through_leave_crash_and_restart(
    tmp_path: Path, members: list[Member], client: str
) -> None:
    topic, group = "work", f"group-{client}"
    broker = BrokerThread(_config(tmp_path / "data")).start()
    try:
        bootstrap = broker.bootstrap
        create_topic(bootstrap, topic)
        for name in ("a", "b", "c"):
            members.append(Member(client, bootstrap, topic, group, tmp_path / f"{name}.log"))
        a, b, c = members

        def diagnose() -> str:
            return "\n".join(f"--- {m.name}\n{m.stderr()}" for m in members)

        def commits_at(end: int) -> None:
            wait_for(
                f"commits at offset {end} everywhere",
                lambda: committed(bootstrap, topic, group) == dict.fromkeys(range(PARTITIONS), end),
                every_s=0.5,
            )

        # 1. Steady state: three members, two partitions each.
        wait_for("three balanced members", lambda: balanced([a, b, c]), explain=diagnose)
        produced = produce(bootstrap, topic, "one")
        wait_for(
            "every record of round one", lambda: set(seen(members)) >= produced, explain=diagnose
        )
        commits_at(1 * PER_PARTITION)
        counts = seen(members)
        assert set(counts) == produced
        assert max(counts.values()) == 1, "a record was consumed twice in steady state"

        # 2. A member leaves: the other two take its partitions from the committed offsets.
        a.close()
        wait_for("two balanced members", lambda: balanced([b, c]), explain=diagnose)
        produced |= produce(bootstrap, topic, "two")
        wait_for(
            "every record of round two", lambda: set(seen(members)) >= produced, explain=diagnose
        )
        commits_at(2 * PER_PARTITION)

        # 3. A member crashes: its session expires and the survivor takes over.
        c.kill()
        produced |= produce(bootstrap, topic, "three")
        wait_for("the survivor owning everything", lambda: balanced([b]), explain=diagnose)
        wait_for(
            "every record of round three", lambda: set(seen(members)) >= produced, explain=diagnose
        )
        commits_at(3 * PER_PARTITION)
        counts = seen(members)
        assert set(counts) == produced
        assert max(counts.values()) == 1, "a record was consumed twice"
        assert not any(m.commit_failures for m in members), diagnose()
        b.close()
    finally:
        broker.stop()

    # 4. A restart on the same data directory keeps every committed offset.
    with BrokerThread(_config(tmp_path / "data")) as again:
        assert committed(again.bootstrap, topic, group) == dict.fromkeys(
            range(PARTITIONS), 3 * PER_PARTITION
        )


def test_commits_survive_kill_9_of_the_broker(tmp_path: Path) -> None:
    """OffsetCommit is answered after its record is fsynced: SIGKILL loses none."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    data = tmp_path / "data"
    logs: list[Any] = []

    def serve() -> tuple[subprocess.Popen[bytes], str]:
        log = (tmp_path / f"broker-{len(logs)}.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rift_broker.cli",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data),
                "--offsets-partitions",
                "7",
            ],
            stderr=log,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if match := re.search(r"serving on [^ ]+:(\d+)", Path(log.name).read_text()):
                return process, f"127.0.0.1:{match.group(1)}"
            time.sleep(0.1)
        process.kill()
        process.wait(30)
        raise AssertionError(f"the broker did not start: {Path(log.name).read_text()}")

    process: subprocess.Popen[bytes] | None = None
    try:
        process, bootstrap = serve()
        create_topic(bootstrap, "t")
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id="g", enable_auto_commit=False
        )
        wanted = {p: 1000 + p for p in range(PARTITIONS)}
        consumer.commit(
            {TopicPartition("t", p): OffsetAndMetadata(o, "meta", -1) for p, o in wanted.items()}
        )
        consumer.close()
        process.kill()  # no graceful anything
        process.wait(30)

        process, bootstrap = serve()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            offsets = admin.list_group_offsets("g")["g"]
        finally:
            admin.close()
        assert {tp.partition: (om.offset, om.metadata) for tp, om in offsets.items()} == {
            p: (o, "meta") for p, o in wanted.items()
        }
        assert (data / "__consumer_offsets.topic.json").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(30)
        for log in logs:
            log.close()
