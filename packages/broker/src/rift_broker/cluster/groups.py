"""Consumer groups on a cluster node: ``__consumer_offsets`` replicated like user data.

Theory of operation
-------------------
The group coordinator and its asyncio driver are the single-node broker's
(:mod:`rift_broker.server.groups`); what differs is where ``__consumer_offsets``
lives and who coordinates which group.

- **Storage.** :class:`ReplicatedOffsetsLog` appends a coordinator's records as one
  batch through the replica manager with acks=all, exactly like a producer's batch:
  ``done(0)`` only once the high watermark covers it (every in-sync replica has it,
  and the ISR is at least min.insync.replicas), else the replica manager's error
  (NOT_LEADER_OR_FOLLOWER after a lost leadership, NOT_ENOUGH_REPLICAS, ...), or
  REQUEST_TIMED_OUT when no answer comes within the append timeout. Loading reads
  the partition's local log from its start to its *end*: the node was just elected
  leader from the ISR, so its log holds every committed record, and what lies above
  its high watermark is either committed already (the new leader learns the high
  watermark from its followers' next fetches) or becomes committed under it.
- **Leadership.** :class:`GroupLeadership` follows the replica manager: whenever
  the node's state moves (``ClusterDriver.changed``, and at least every
  ``poll_s``), it compares the ``__consumer_offsets`` partitions this node leads,
  with their leader epochs, against what the group driver has loaded; it unloads a
  partition it lost (waiting requests of its groups get NOT_COORDINATOR) and loads
  one it gained. A partition led again in a newer epoch is unloaded and loaded
  again: another leader may have written to it in between.
- **Finding the coordinator.** A group's coordinator is the leader of
  ``partition_for(group)`` in the committed metadata. Before that partition has a
  leader, or before ``__consumer_offsets`` exists, FindCoordinator answers
  COORDINATOR_NOT_AVAILABLE (clients retry); the first such request asks the
  controller to create the topic, as Kafka creates it on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from rift_broker.cluster.driver import ClusterDriver
from rift_broker.controller import NO_LEADER, CreateTopicRequest, MetadataImage
from rift_broker.group import OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS, OffsetsRecord, partition_for
from rift_broker.group._batches import encode_batch
from rift_broker.replication.messages import ProduceDone
from rift_broker.server.groups import GroupDriver
from rift_broker.server.offsets_log import read_offsets_partition

__all__ = [
    "CoordinatorLocator",
    "GroupLeadership",
    "ReplicatedOffsetsLog",
    "coordinator_for",
    "leadership_changes",
]

_log = logging.getLogger("rift_broker.cluster.groups")

_REQUEST_TIMED_OUT = 7
_COORDINATOR_NOT_AVAILABLE = 15
_NONE = 0

Located = tuple[int, int, str, int]  # error code, node id, host, port
_NOT_AVAILABLE: Located = (_COORDINATOR_NOT_AVAILABLE, -1, "", -1)


class ReplicatedOffsetsLog:
    """``__consumer_offsets`` through the replica manager (see the module docstring)."""

    def __init__(self, cluster: ClusterDriver, *, append_timeout_s: float = 30.0) -> None:
        self._cluster = cluster
        self._timeout_s = append_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    def append(
        self, partition: int, records: Sequence[OffsetsRecord], done: Callable[[int], None]
    ) -> None:
        batch = encode_batch(records, timestamp_ms=time.time_ns() // 1_000_000)
        future = self._cluster.produce(
            topic=OFFSETS_TOPIC, partition=partition, batch=batch, acks=-1
        )
        task = asyncio.ensure_future(self._complete(future, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(
        self, future: asyncio.Future[ProduceDone], done: Callable[[int], None]
    ) -> None:
        try:
            result = await asyncio.wait_for(future, timeout=self._timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            done(_REQUEST_TIMED_OUT)
            return
        done(int(result.error))

    def read(self, partition: int) -> list[OffsetsRecord]:
        log = self._cluster.node.replicas.log(OFFSETS_TOPIC, partition)
        if log is None:
            return []
        return read_offsets_partition(
            partition, log.read, start=log.log_start_offset, end=log.log_end_offset
        )

    async def close(self) -> None:
        """Wait for the appends still running (their answers are timeouts at worst)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def leadership_changes(
    loaded: Mapping[int, int], led: Mapping[int, int]
) -> tuple[list[int], list[int]]:
    """(partitions to unload, partitions to load), from the loaded partitions and the
    ones led now, each with its leader epoch. A partition led again in another epoch
    is unloaded and loaded again: another leader may have written to it meanwhile."""
    unload = sorted(p for p, epoch in loaded.items() if led.get(p) != epoch)
    load = sorted(p for p in led if p not in loaded or p in unload)
    return unload, load


class GroupLeadership:
    """Loads and unloads ``__consumer_offsets`` partitions as this node's leadership
    of them changes (see the module docstring)."""

    def __init__(self, cluster: ClusterDriver, groups: GroupDriver, *, poll_s: float = 0.5):
        self._cluster = cluster
        self._groups = groups
        self._poll_s = poll_s
        self._epochs: dict[int, int] = {}
        self._mismatch_logged = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rift-group-leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reconcile(self) -> None:
        """Bring the loaded partitions in line with the ones this node leads now."""
        info = self._cluster.node.image.topics.get(OFFSETS_TOPIC)
        if info is not None and info.partitions != self._groups.num_partitions:
            if not self._mismatch_logged:
                _log.error(
                    "%s has %d partitions but this node is configured for %d: "
                    "it coordinates no group (give every node the same --offsets-partitions)",
                    OFFSETS_TOPIC,
                    info.partitions,
                    self._groups.num_partitions,
                )
                self._mismatch_logged = True
            return
        replicas = self._cluster.node.replicas
        led: dict[int, int] = {}
        for p in range(self._groups.num_partitions):
            if replicas.is_leader(OFFSETS_TOPIC, p):
                assignment = replicas.assignment(OFFSETS_TOPIC, p)
                led[p] = assignment.leader_epoch if assignment is not None else -1
        unload, load = leadership_changes(self._epochs, led)
        for p in unload:
            epoch = self._epochs.pop(p)
            self._groups.unload(p)
            _log.info("no longer coordinator of %s-%d (epoch %d)", OFFSETS_TOPIC, p, epoch)
        for p in load:
            self._groups.load(p)
            self._epochs[p] = led[p]
            _log.info("coordinator of %s-%d in epoch %d", OFFSETS_TOPIC, p, led[p])

    async def _run(self) -> None:
        while True:
            changed = self._cluster.changed()
            try:
                self.reconcile()
            except Exception:  # a bad partition must not stop the others from loading
                _log.exception("loading consumer groups failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=self._poll_s)


def coordinator_for(image: MetadataImage, group_id: str) -> Located:
    """FindCoordinator's answer by the committed metadata ``image``: the live leader of
    the group's ``__consumer_offsets`` partition, else COORDINATOR_NOT_AVAILABLE (the
    topic does not exist yet, the partition has no leader, or its leader is fenced)."""
    info = image.topics.get(OFFSETS_TOPIC)
    if info is None:
        return _NOT_AVAILABLE
    partition = image.partitions.get((OFFSETS_TOPIC, partition_for(group_id, info.partitions)))
    if partition is None or partition.leader == NO_LEADER:
        return _NOT_AVAILABLE
    broker = image.brokers.get(partition.leader)
    if broker is None or broker.fenced:
        return _NOT_AVAILABLE
    return _NONE, broker.broker, broker.host, broker.port


class CoordinatorLocator:
    """Answers FindCoordinator from the committed metadata (:func:`coordinator_for`);
    creates ``__consumer_offsets`` on first use."""

    def __init__(
        self,
        cluster: ClusterDriver,
        *,
        partitions: int,
        replication_factor: int,
        min_insync_replicas: int,
    ) -> None:
        self._cluster = cluster
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._min_insync = min_insync_replicas
        self._creating: asyncio.Future[object] | None = None

    def locate(self, group_id: str) -> Located:
        image = self._cluster.node.image
        if OFFSETS_TOPIC not in image.topics:
            self._create()
        return coordinator_for(image, group_id)

    def _create(self) -> None:
        if self._creating is not None and not self._creating.done():
            return
        live = len(self._cluster.node.image.live_brokers())
        replication = max(1, min(self._replication_factor, live))
        request = CreateTopicRequest(
            topic=OFFSETS_TOPIC,
            partitions=self._partitions,
            replication_factor=replication,
            configs=(
                ("min.insync.replicas", str(min(self._min_insync, replication))),
                *OFFSETS_TOPIC_CONFIGS,
            ),
        )
        _log.info(
            "creating %s: %d partitions, replication factor %d",
            OFFSETS_TOPIC,
            self._partitions,
            replication,
        )
        creating: asyncio.Future[object] = asyncio.ensure_future(
            self._cluster.create_topic(request)
        )
        creating.add_done_callback(_log_creation)
        self._creating = creating


def _log_creation(future: asyncio.Future[object]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        _log.warning("creating %s failed: %s", OFFSETS_TOPIC, error)
        return
    reply = future.result()
    code = int(getattr(reply, "error", 0))
    if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS, another node was first
        _log.warning("creating %s failed: error %d %s", OFFSETS_TOPIC, code, reply)
