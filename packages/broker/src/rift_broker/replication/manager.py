"""The replica manager: every partition replica on one broker, as a sans-IO core.

Theory of operation
-------------------
The controller's committed metadata says, per partition, who the replicas are, who
leads at which leader epoch and who is in sync. :meth:`ReplicaManager.apply`
reconciles this broker with it:

===========================  ===================================================
this broker is ...           it becomes ...
===========================  ===================================================
the leader, at a new epoch   leader: answers produce and fetch, tracks the ISR
                             (:class:`LeaderPartition`); appends are stamped
                             with the epoch; pending produces of an older
                             leadership fail with NOT_LEADER_OR_FOLLOWER
a replica led by another     follower: asks the leader where its own latest
                             epoch ends (:class:`EpochQuery`), truncates there
                             (:func:`truncation_offset`), then pulls
                             (:class:`ReplicaFetchRequest`) from its log end
a replica with no leader     idle: serves nothing, fetches nothing
===========================  ===================================================

Durability comes first: the leader counts toward the high watermark only what it
has fsynced, and a follower fetches the next offset only after fsyncing what it
appended, so its fetch offset is a promise of durable data. A produce with acks=1
is answered once the leader's fsync covers it, acks=all once the high watermark
does (:class:`AckDecision`); fsyncs are requested with :class:`NeedFlush` effects
and reported back through :meth:`on_flushed`.

Producer state (idempotence) is kept on every replica, leader or follower, from the
headers of the batches it appends, so a new leader dedups a retried batch that its
predecessor appended.

An empty replica fetch is parked on the leader until data arrives or
``replica_fetch_wait_ms`` passes, so idle followers do not spin. A follower whose
request got no answer within ``request_timeout_ms`` sends it again.

:meth:`ReplicaManager.maintain`, called periodically, rolls aged segments and
applies retention on every replica, never past its high watermark; followers
follow the leader's log start, and one the leader's retention left behind restarts
its log at the leader's start (see :mod:`rift_broker.replication._retention`).
"""

from __future__ import annotations

from rift_broker.errors import KafkaError
from rift_broker.log import LogError, PartitionLog
from rift_broker.producer_state import Duplicate
from rift_broker.records import InvalidBatchError, parse_header
from rift_broker.replication._follower import FollowerPartition
from rift_broker.replication._following import FollowerSide
from rift_broker.replication._leader import LeaderPartition
from rift_broker.replication._retention import retention_limit
from rift_broker.replication._serving import LeaderSide
from rift_broker.replication._state import (
    OpenLog,
    ReadResult,
    Replica,
    ReplicationConfig,
    Waiter,
)
from rift_broker.replication.messages import (
    KAFKA_STORAGE_ERROR,
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_NOT_AVAILABLE,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_TOPIC_OR_PARTITION,
    Effect,
    EpochQuery,
    Maintained,
    PartitionAssignment,
    PeerMessage,
    ProduceDone,
    ProposeIsr,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    SendToPeer,
)


class ReplicaManager(LeaderSide, FollowerSide):
    """Every replica this broker holds. All methods return effects for the driver."""

    def __init__(
        self, *, node_id: int, open_log: OpenLog, config: ReplicationConfig | None = None
    ) -> None:
        self.node_id = node_id
        self._open_log = open_log
        self.config = config or ReplicationConfig()
        self._replicas: dict[tuple[str, int], Replica] = {}

    # -- metadata ----------------------------------------------------------------

    def apply(self, assignment: PartitionAssignment, *, now_ms: int) -> list[Effect]:
        """Reconcile one partition with the controller's committed view of it."""
        key = (assignment.topic, assignment.partition)
        replica = self._replicas.get(key)
        if self.node_id not in assignment.replicas:
            return self._fail_waiters(replica, NOT_LEADER_OR_FOLLOWER) if replica else []
        if replica is None:
            log, producers = self._open_log(
                assignment.topic, assignment.partition, assignment.configs
            )
            replica = Replica(assignment=assignment, log=log, producers=producers)
            self._replicas[key] = replica
        old = replica.assignment
        replica.assignment = assignment
        out: list[Effect] = []
        if assignment.leader == self.node_id:
            if (
                replica.leader is not None
                and replica.leader.leader_epoch == assignment.leader_epoch
            ):
                if assignment.partition_epoch > replica.leader.partition_epoch:
                    replica.leader.min_insync_replicas = assignment.min_insync_replicas
                    if replica.leader.apply_isr(
                        isr=assignment.isr, partition_epoch=assignment.partition_epoch
                    ):
                        out += self._hw_moved(replica, now_ms)
                    out += self._complete_waiters(replica)
                return out
            out += self._fail_waiters(replica, NOT_LEADER_OR_FOLLOWER)
            known_hw = self._high_watermark(replica)
            replica.follower = None
            replica.inflight_deadline = None
            replica.leader = LeaderPartition(
                topic=assignment.topic,
                partition=assignment.partition,
                node=self.node_id,
                leader_epoch=assignment.leader_epoch,
                partition_epoch=assignment.partition_epoch,
                replicas=assignment.replicas,
                isr=assignment.isr,
                log_end_offset=replica.log.flushed_offset,
                high_watermark=known_hw,
                min_insync_replicas=assignment.min_insync_replicas,
                replica_lag_time_max_ms=self.config.replica_lag_time_max_ms,
                now_ms=now_ms,
            )
            out.append(self._observe_leader(replica))
            out += self._hw_moved(replica, now_ms)  # a single-replica ISR commits at once
            if replica.log.log_end_offset > replica.log.flushed_offset:
                out += self._request_flush(replica)
            return out
        same_leader = (
            replica.follower is not None
            and old.leader == assignment.leader
            and replica.follower.leader_epoch == assignment.leader_epoch
        )
        if same_leader:
            return out
        out += self._fail_waiters(replica, NOT_LEADER_OR_FOLLOWER)
        replica.leader = None
        replica.parked.clear()
        replica.follower = None
        replica.inflight_deadline = None
        if assignment.leader is None:
            return out
        replica.follower = FollowerPartition(
            topic=assignment.topic,
            partition=assignment.partition,
            leader=assignment.leader,
            leader_epoch=assignment.leader_epoch,
            log_end_offset=replica.log.log_end_offset,
        )
        replica.follower.high_watermark = min(replica.last_hw, replica.log.log_end_offset)
        return out + self._start_following(replica, now_ms)

    # -- produce -----------------------------------------------------------------

    def produce(
        self, *, request_id: int, topic: str, partition: int, batch: bytes, acks: int, now_ms: int
    ) -> list[Effect]:
        """Append one batch as leader. The answer comes as a :class:`ProduceDone`."""
        replica = self._replicas.get((topic, partition))

        def done(error: int, base: int = -1) -> list[Effect]:
            if acks == 0:
                return []
            start = replica.log.log_start_offset if replica is not None else -1
            return [
                ProduceDone(
                    request_id=request_id,
                    topic=topic,
                    partition=partition,
                    error=error,
                    base_offset=base,
                    log_start_offset=start,
                )
            ]

        if replica is None:
            return done(UNKNOWN_TOPIC_OR_PARTITION)
        leader = replica.leader
        if leader is None:
            return done(NOT_LEADER_OR_FOLLOWER)
        if acks == -1 and not leader.can_accept_acks_all():
            return done(NOT_ENOUGH_REPLICAS)
        try:
            header = parse_header(batch)
            verdict = replica.producers.check(
                producer_id=header.producer_id,
                epoch=header.producer_epoch,
                base_sequence=header.base_sequence,
                last_offset_delta=header.last_offset_delta,
            )
            if isinstance(verdict, Duplicate):
                base, last = verdict.base_offset, verdict.last_offset
            else:
                info = replica.log.append(batch, leader_epoch=leader.leader_epoch, now_ms=now_ms)
                base, last = info.base_offset, info.last_offset
                replica.producers.record(
                    producer_id=header.producer_id,
                    epoch=header.producer_epoch,
                    base_sequence=header.base_sequence,
                    last_offset_delta=header.last_offset_delta,
                    base_offset=base,
                    last_offset=last,
                )
        except KafkaError as error:
            return done(error.code)
        except InvalidBatchError:
            return done(2)  # CORRUPT_MESSAGE
        except LogError as error:
            return done(getattr(error, "code", KAFKA_STORAGE_ERROR))
        out: list[Effect] = []
        if acks != 0:
            replica.waiters.append(
                Waiter(request_id=request_id, last_offset=last, base_offset=base, acks=acks)
            )
        out += self._request_flush(replica)
        out += self._unpark(replica, now_ms)
        out += self._complete_waiters(replica)
        return out

    def on_flushed(self, *, topic: str, partition: int, now_ms: int) -> list[Effect]:
        """The fsync asked for by a :class:`NeedFlush` has completed."""
        replica = self._replicas.get((topic, partition))
        if replica is None:
            return []
        replica.flushing = False
        out: list[Effect] = []
        if replica.flush_again:
            replica.flush_again = False
            out += self._request_flush(replica)
        if replica.leader is not None:
            if replica.leader.on_local_append(log_end_offset=replica.log.flushed_offset):
                out += self._hw_moved(replica, now_ms)
            out += self._complete_waiters(replica)
        elif replica.follower is not None and replica.inflight_deadline is None:
            out += self._fetch(replica, now_ms)
        return out

    def on_flush_failed(self, *, topic: str, partition: int) -> list[Effect]:
        """The log is stopped: nothing it holds can be promised any more."""
        replica = self._replicas.get((topic, partition))
        return self._fail_waiters(replica, KAFKA_STORAGE_ERROR) if replica else []

    # -- peers ---------------------------------------------------------------------

    def receive(self, message: PeerMessage, *, now_ms: int) -> list[Effect]:
        if isinstance(message, ReplicaFetchRequest):
            return self._on_fetch_request(message, now_ms)
        if isinstance(message, ReplicaFetchResponse):
            return self._on_fetch_response(message, now_ms)
        if isinstance(message, EpochQuery):
            return [SendToPeer(message=self._answer_epoch(message))]
        return self._on_epoch_answer(message, now_ms)

    def tick(self, *, now_ms: int) -> list[Effect]:
        out: list[Effect] = []
        for replica in self._replicas.values():
            leader = replica.leader
            if leader is not None:
                change = leader.tick(now_ms=now_ms)
                if change is not None:
                    out.append(ProposeIsr(change=change))
                due = [(r, d) for r, d in replica.parked if d <= now_ms]
                if due:
                    replica.parked = [(r, d) for r, d in replica.parked if d > now_ms]
                    out += [SendToPeer(message=self._fetch_response(replica, r)) for r, _ in due]
            elif replica.follower is not None:
                deadline = replica.inflight_deadline
                if deadline is not None and deadline <= now_ms:
                    replica.inflight_deadline = None
                    out += self._start_following(replica, now_ms)
        return out

    def next_deadline(self, *, now_ms: int) -> int:
        """The latest time by which :meth:`tick` must run again."""
        deadlines = [now_ms + max(self.config.replica_lag_time_max_ms // 4, 1)]
        for replica in self._replicas.values():
            deadlines.extend(d for _, d in replica.parked)
            if replica.follower is not None and replica.inflight_deadline is not None:
                deadlines.append(replica.inflight_deadline)
        return min(deadlines)

    def maintain(self, *, now_ms: int, wall_ms: int) -> list[Maintained]:
        """Roll aged segments and apply retention on every replica; the replicas whose
        segments it deleted, or on which it failed.

        ``now_ms`` is the clock appends are given (segment age is measured with
        it); ``wall_ms`` the wall clock that record timestamps are compared with
        (time retention). Retention never deletes at or past the replica's
        :func:`retention_limit`. A replica with an fsync in flight keeps its
        segments this round: they must not be deleted under a running flush.
        """
        out: list[Maintained] = []
        for (topic, partition), replica in self._replicas.items():
            log = replica.log
            if log.stopped:
                continue
            try:
                log.maybe_roll(now_ms)
                deleted = 0
                if not replica.flushing:
                    limit = retention_limit(
                        high_watermark=self._high_watermark(replica),
                        flushed_offset=log.flushed_offset,
                    )
                    deleted = log.apply_retention(wall_ms, max_offset=limit)
            except (LogError, OSError) as error:
                out.append(Maintained(topic=topic, partition=partition, error=str(error)))
                continue
            if deleted:
                out.append(
                    Maintained(
                        topic=topic,
                        partition=partition,
                        deleted=deleted,
                        log_start_offset=log.log_start_offset,
                    )
                )
        return out

    def reject_isr_change(self, *, topic: str, partition: int) -> None:
        replica = self._replicas.get((topic, partition))
        if replica is not None and replica.leader is not None:
            replica.leader.reject_pending()

    # -- reads -------------------------------------------------------------------

    def read(self, *, topic: str, partition: int, offset: int, max_bytes: int) -> ReadResult:
        """A consumer fetch: leader only, never past the high watermark."""
        replica = self._replicas.get((topic, partition))
        if replica is None:
            return ReadResult(error=UNKNOWN_TOPIC_OR_PARTITION)
        if replica.leader is None:
            return ReadResult(error=NOT_LEADER_OR_FOLLOWER)
        log, hw = replica.log, replica.leader.high_watermark
        if offset < log.log_start_offset or offset > log.log_end_offset:
            return ReadResult(
                error=OFFSET_OUT_OF_RANGE,
                high_watermark=hw,
                log_start_offset=log.log_start_offset,
                log_end_offset=log.log_end_offset,
            )
        records = log.read(offset, max_bytes=max_bytes, max_offset=hw) if offset < hw else b""
        return ReadResult(
            error=NONE,
            records=records,
            high_watermark=hw,
            log_start_offset=log.log_start_offset,
            log_end_offset=log.log_end_offset,
        )

    def latest_offset(self, topic: str, partition: int) -> tuple[int, int]:
        """ListOffsets "latest" on the leader: ``(error, offset)``.

        The high watermark, except while a new leader's still trails the start of
        its epoch: what its predecessor acknowledged may lie above it until the
        followers' next fetches. Then OFFSET_NOT_AVAILABLE, as Kafka answers
        (KIP-207), so a reader asks again rather than take an end that is too early.
        """
        replica = self._replicas.get((topic, partition))
        if replica is None:
            return UNKNOWN_TOPIC_OR_PARTITION, -1
        leader = replica.leader
        if leader is None:
            return NOT_LEADER_OR_FOLLOWER, -1
        if leader.high_watermark < leader.epoch_start_offset:
            return OFFSET_NOT_AVAILABLE, -1
        return NONE, leader.high_watermark

    def high_watermark(self, topic: str, partition: int) -> int | None:
        replica = self._replicas.get((topic, partition))
        return None if replica is None else self._high_watermark(replica)

    def is_leader(self, topic: str, partition: int) -> bool:
        replica = self._replicas.get((topic, partition))
        return replica is not None and replica.leader is not None

    def log(self, topic: str, partition: int) -> PartitionLog | None:
        replica = self._replicas.get((topic, partition))
        return None if replica is None else replica.log

    def assignment(self, topic: str, partition: int) -> PartitionAssignment | None:
        replica = self._replicas.get((topic, partition))
        return None if replica is None else replica.assignment

    def describe(self) -> list[dict[str, object]]:
        """Each replica's state, for operators (``kill -USR1`` a cluster node)."""
        out: list[dict[str, object]] = []
        for (topic, partition), r in sorted(self._replicas.items()):
            item: dict[str, object] = {
                "partition": f"{topic}-{partition}",
                "log_end_offset": r.log.log_end_offset,
                "flushed_offset": r.log.flushed_offset,
                "high_watermark": self._high_watermark(r),
                "flushing": r.flushing,
                "waiting_produces": len(r.waiters),
                "parked_fetches": len(r.parked),
            }
            if r.leader is not None:
                item["role"] = f"leader@{r.leader.leader_epoch}"
                item["isr"] = list(r.leader.isr)
                item["followers"] = {
                    f: r.leader.progress(f).log_end_offset
                    for f in r.leader.replicas
                    if f != self.node_id
                }
            elif r.follower is not None:
                item["role"] = f"follower of {r.follower.leader}@{r.follower.leader_epoch}"
                item["truncated"] = r.follower.truncated
                item["inflight_deadline"] = r.inflight_deadline
            else:
                item["role"] = "idle"
            out.append(item)
        return out

    def partitions(self) -> list[tuple[str, int]]:
        return list(self._replicas)
