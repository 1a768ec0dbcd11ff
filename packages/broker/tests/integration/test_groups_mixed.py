"""One consumer group mixing every client: rift_client, kafka-python, confluent-kafka, aiokafka.

The four share a 6-partition topic on an in-process broker, all with the "range"
assignor (the one protocol every client has; each lists only it, so the vote cannot
fail). Each member runs in its own thread and, after every poll, synchronously
commits exactly what it polled. The member started first joins alone, so it is the
leader, whose assignor computes the plan for the three foreign ones. Then:

1. four members: range gives 2, 2, 1 and 1 partitions; every record of a round is
   consumed exactly once and the commits end at the log end;
2. the leader leaves (LeaveGroup): another client leads, the three split the topic
   2/2/2 and go on from the committed offsets, exactly once;
3. a follower (one that did not become the new leader) leaves: the two survivors own
   3 each, again exactly once.

Records are produced only while the group is settled and the members' commits are
awaited before the next membership change, so no record may come twice: with
``auto_offset_reset="earliest"``, a new owner that ignored the committed offset would
read its partition again from 0. Parametrized by the client that starts first, every
client leads once and leaves once as the leader. Waits are
bounded by deadlines; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rift_broker.cluster.dev import wait_until
from rift_broker.server import BrokerConfig
from rift_broker.server.broker import Broker
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

TOPIC, GROUP = "mixed", "mixed-group"
PARTITIONS = 6
PER_PARTITION = 30
CLIENTS = ("rift", "kafka-python", "confluent-kafka", "aiokafka")
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
MAX_POLL_INTERVAL_MS = 30000  # also the rebalance timeout the clients send
POLL_MS = 200
WAIT_S = 90.0  # generous: rebalances on a loaded machine; never a timing assertion

Record = tuple[int, int, str]  # partition, offset, value


wait_for = functools.partial(wait_until, within_s=WAIT_S)


# --- members ---------------------------------------------------------------------


class Member:
    """One consumer on its own thread: poll, note what came, commit exactly that.

    The client-specific loops below call :meth:`polled` after every poll and
    :meth:`commit_failed` when a commit is refused; they stop when :attr:`stopping`
    is set and close their consumer (which leaves the group) on the way out.
    """

    def __init__(self, client: str, bootstrap: str) -> None:
        self.client = client
        self.client_id = f"mixed-{client}"
        self.bootstrap = bootstrap
        self._lock = threading.Lock()
        self._assignment: tuple[int, ...] = ()
        self._records: list[Record] = []
        self._commit_failures: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=self.client_id, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            LOOPS[self.client](self)
        except BaseException as exc:  # reported by close() and in every explanation
            self.error = exc

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def polled(self, assignment: list[int], items: list[tuple[int, int, bytes]]) -> dict[int, int]:
        """Note the assignment and the records of one poll; the offsets to commit."""
        offsets: dict[int, int] = {}
        for partition, offset, _ in items:
            offsets[partition] = max(offsets.get(partition, 0), offset + 1)
        with self._lock:
            self._assignment = tuple(sorted(assignment))
            self._records.extend((p, o, v.decode()) for p, o, v in items)
        return offsets

    def commit_failed(self, error: BaseException) -> None:
        with self._lock:
            self._commit_failures.append(repr(error))

    @property
    def assignment(self) -> tuple[int, ...]:
        with self._lock:
            return self._assignment

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    @property
    def commit_failures(self) -> list[str]:
        with self._lock:
            return list(self._commit_failures)

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop polling and close the consumer (LeaveGroup); fail if that fails."""
        self._stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"{self.client} did not close within {timeout_s}s"
        assert self.error is None, f"{self.client} failed: {self.error!r}"

    def __repr__(self) -> str:
        state = "closed" if not self._thread.is_alive() else "running"
        error = f", error={self.error!r}" if self.error is not None else ""
        return f"<{self.client} {state} assignment={list(self.assignment)}{error}>"


def _rift_loop(m: Member) -> None:
    from rift_client import ClientError, TopicPartition, sync

    consumer = sync.Consumer(
        m.bootstrap,
        client_id=m.client_id,
        group_id=GROUP,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
        rebalance_timeout_ms=MAX_POLL_INTERVAL_MS,
        partition_assignment_strategy=("range",),
    )
    try:
        consumer.subscribe([TOPIC])
        while not m.stopping:
            records = consumer.poll(timeout_ms=POLL_MS)
            offsets = m.polled(
                [tp.partition for tp in consumer.assignment()],
                [(r.partition, r.offset, r.value or b"") for r in records],
            )
            if offsets:
                try:
                    consumer.commit(
                        {TopicPartition(topic=TOPIC, partition=p): o for p, o in offsets.items()}
                    )
                except ClientError as exc:
                    m.commit_failed(exc)
    finally:
        consumer.close()


def _kafka_python_loop(m: Member) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=m.bootstrap,
        client_id=m.client_id,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        partition_assignment_strategy=[RangePartitionAssignor],
    )
    try:
        consumer.subscribe([TOPIC])
        while not m.stopping:
            polled = consumer.poll(timeout_ms=POLL_MS)
            offsets = m.polled(
                [tp.partition for tp in consumer.assignment()],
                [(tp.partition, r.offset, r.value) for tp, rs in polled.items() for r in rs],
            )
            if offsets:
                try:
                    consumer.commit(
                        {
                            TopicPartition(TOPIC, p): OffsetAndMetadata(o, "", -1)
                            for p, o in offsets.items()
                        }
                    )
                except KafkaError as exc:
                    m.commit_failed(exc)
    finally:
        consumer.close()


def _confluent_loop(m: Member) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": m.bootstrap,
            "client.id": m.client_id,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            "partition.assignment.strategy": "range",
        }
    )
    try:
        consumer.subscribe([TOPIC])
        while not m.stopping:
            messages = consumer.consume(num_messages=500, timeout=POLL_MS / 1000)
            errors = [msg.error() for msg in messages if msg.error() is not None]
            if errors:
                raise AssertionError(f"confluent-kafka poll errors: {errors}")
            offsets = m.polled(
                [tp.partition for tp in consumer.assignment()],
                [(msg.partition(), msg.offset(), msg.value()) for msg in messages],
            )
            if offsets:
                try:
                    consumer.commit(
                        offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                        asynchronous=False,
                    )
                except KafkaException as exc:
                    m.commit_failed(exc)
    finally:
        consumer.close()


def _aiokafka_loop(m: Member) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.errors import KafkaError

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=m.bootstrap,
            client_id=m.client_id,
            group_id=GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        await consumer.start()
        try:
            while not m.stopping:
                polled = await consumer.getmany(timeout_ms=POLL_MS)
                offsets = m.polled(
                    [tp.partition for tp in consumer.assignment()],
                    [(tp.partition, r.offset, r.value) for tp, rs in polled.items() for r in rs],
                )
                if offsets:
                    try:
                        await consumer.commit(
                            {TopicPartition(TOPIC, p): o for p, o in offsets.items()}
                        )
                    except KafkaError as exc:
                        m.commit_failed(exc)
        finally:
            await consumer.stop()

    asyncio.run(run())


LOOPS: dict[str, Callable[[Member], None]] = {
    "rift": _rift_loop,
    "kafka-python": _kafka_python_loop,
    "confluent-kafka": _confluent_loop,
    "aiokafka": _aiokafka_loop,
}


# --- the broker's side ---------------------------------------------------------------


def _config(data_dir: Path) -> BrokerConfig:
    return BrokerConfig(
        data_dir=data_dir, port=0, offsets_partitions=10, group_initial_rebalance_delay_ms=1000
    )


def group_view(broker: BrokerThread) -> tuple[str, str | None, str | None, dict[str, str]]:
    """The coordinator's view: (state, protocol, leader's client id, member id -> client id)."""

    def describe(b: Broker) -> tuple[str, str | None, str | None, dict[str, str]]:
        groups = b.context.groups
        assert groups is not None
        error, view = groups.describe(GROUP)
        assert error == 0, error
        if view is None:
            return "Dead", None, None, {}
        members = {m.member_id: m.client_id for m in view.members}
        leader = members.get(view.leader) if view.leader is not None else None
        return view.state, view.protocol, leader, members

    return broker.call(describe)


def produce(bootstrap: str, tag: str) -> set[Record]:
    return produce_to_every_partition(
        bootstrap, TOPIC, partitions=PARTITIONS, per_partition=PER_PARTITION, tag=tag
    )


def committed(bootstrap: str) -> dict[int, int | None]:
    return committed_offsets(bootstrap, TOPIC, GROUP, partitions=PARTITIONS)


# --- the test --------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    with BrokerThread(_config(tmp_path / "data")) as running:
        yield running


@pytest.fixture
def members(broker: BrokerThread) -> Iterator[dict[str, Member]]:
    """Members by client; whatever still runs is closed before the broker stops."""
    started: dict[str, Member] = {}
    yield started
    leftovers = []
    for m in started.values():
        try:
            m.close()
        except AssertionError as exc:
            leftovers.append(str(exc))
    assert not leftovers, leftovers


@pytest.mark.parametrize("first", CLIENTS)
def test_a_group_of_four_clients_shares_the_work_exactly_once_as_members_leave(
    broker: BrokerThread, members: dict[str, Member], first: str
) -> None:
    from rift_client import sync

    i = CLIENTS.index(first)
    order = [*CLIENTS[i:], *CLIENTS[:i]]  # who joins first leads, and leaves first
    bootstrap = broker.bootstrap
    with sync.Admin(bootstrap) as admin:
        admin.create_topic(TOPIC, partitions=PARTITIONS)

    def explain() -> str:
        return f"members: {list(members.values())}\ngroup: {group_view(broker)}"

    def settled(live: list[Member], sizes: list[int]) -> bool:
        """The coordinator has exactly ``live`` in a Stable group on "range", and
        their own assignments cover the topic once, in ``sizes``."""
        state, protocol, _, ids = group_view(broker)
        owned = [p for m in live for p in m.assignment]
        return (
            state == "Stable"
            and protocol == "range"
            and sorted(ids.values()) == sorted(m.client_id for m in live)
            and sorted(owned) == list(range(PARTITIONS))
            and sorted(len(m.assignment) for m in live) == sizes
            and not any(m.error for m in members.values())
        )

    def seen() -> Counter[Record]:
        return Counter(r for m in members.values() for r in m.records)

    def round_exactly_once(tag: str, produced: set[Record], rounds: int) -> set[Record]:
        produced = produced | produce(bootstrap, tag)
        wait_for(f"every record of round {tag}", lambda: set(seen()) >= produced, explain=explain)
        end = dict.fromkeys(range(PARTITIONS), rounds * PER_PARTITION)
        wait_for(f"commits at {end[0]}", lambda: committed(bootstrap) == end, every_s=0.5)
        counts = seen()
        assert set(counts) == produced
        twice = [r for r, n in counts.items() if n > 1]
        assert not twice, f"consumed more than once: {twice[:10]}\n{explain()}"
        return produced

    # 1. Four members; the first to join leads and assigns for the others.
    members[first] = Member(first, bootstrap)
    wait_for(
        f"{first} to join",
        lambda: f"mixed-{first}" in group_view(broker)[3].values(),
        explain=explain,
    )
    for client in order[1:]:
        members[client] = Member(client, bootstrap)
    live = [members[c] for c in order]
    wait_for("four members on range", lambda: settled(live, [1, 1, 2, 2]), explain=explain)
    assert group_view(broker)[2] == f"mixed-{first}"
    produced = round_exactly_once("one", set(), 1)

    # 2. The leader leaves: another client leads, three members take 2 each.
    members[first].close()
    live = [members[c] for c in order[1:]]
    wait_for("three members on range", lambda: settled(live, [2, 2, 2]), explain=explain)
    leader = group_view(broker)[2]
    assert leader != f"mixed-{first}"  # the group has a new leader among the three
    produced = round_exactly_once("two", produced, 2)

    # 3. A follower leaves: the two survivors take 3 each.
    follower = next(c for c in order[1:] if f"mixed-{c}" != leader)
    members[follower].close()
    live = [members[c] for c in order[1:] if c != follower]
    wait_for("two members on range", lambda: settled(live, [3, 3]), explain=explain)
    produced = round_exactly_once("three", produced, 3)

    failures = {m.client: m.commit_failures for m in members.values() if m.commit_failures}
    assert not failures, failures
    for m in live:
        m.close()
    wait_for("the group to empty", lambda: group_view(broker)[0] == "Empty", explain=explain)
