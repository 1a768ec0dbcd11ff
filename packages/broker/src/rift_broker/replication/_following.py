"""The follower half of the replica manager: truncating by epoch, pulling from the leader."""

from __future__ import annotations

from rift_broker.log import LogError, PartitionLog
from rift_broker.producer_state import ProducerStateTable
from rift_broker.records import InvalidBatchError, iter_batches
from rift_broker.replication._follower import EpochEndOffset, truncation_offset
from rift_broker.replication._retention import follower_log_start, out_of_range_restart
from rift_broker.replication._state import (
    Replica,
    ReplicaBase,
)
from rift_broker.replication.messages import (
    NONE,
    OFFSET_OUT_OF_RANGE,
    Effect,
    EpochAnswer,
    EpochQuery,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    SendToPeer,
)


class FollowerSide(ReplicaBase):
    def _start_following(self, replica: Replica, now_ms: int) -> list[Effect]:
        follower = replica.follower
        assert follower is not None
        follower.truncated = False
        latest = replica.log.latest_epoch
        if latest is None:
            if replica.log.log_end_offset == replica.log.log_start_offset:
                follower.on_truncated(log_end_offset=replica.log.log_end_offset)
                return self._fetch(replica, now_ms)
            latest = -1
        replica.inflight_deadline = now_ms + self.config.request_timeout_ms
        query = EpochQuery(
            src=self.node_id,
            dst=follower.leader,
            topic=follower.topic,
            partition=follower.partition,
            leader_epoch=follower.leader_epoch,
            epoch=latest,
        )
        return [SendToPeer(message=query)]

    def _on_epoch_answer(self, answer: EpochAnswer, now_ms: int) -> list[Effect]:
        replica = self._replicas.get((answer.topic, answer.partition))
        if replica is None or replica.follower is None:
            return []
        follower = replica.follower
        if answer.src != follower.leader or answer.leader_epoch != follower.leader_epoch:
            return []  # an answer to a question of an earlier leadership
        if follower.truncated:
            return []
        if answer.error != NONE:
            replica.inflight_deadline = now_ms + self.config.replica_fetch_backoff_ms
            return []  # asked again when this deadline passes
        log = replica.log
        target = truncation_offset(
            local_log_end_offset=log.log_end_offset,
            answer=EpochEndOffset(epoch=answer.epoch, end_offset=answer.end_offset),
            local_end_for_epoch=lambda e: _epoch_end(log, e),
        )
        target = max(target, log.log_start_offset)
        if target < log.log_end_offset:
            log.truncate_to(target)
            replica.producers.truncate_to(log.log_end_offset)
        follower.on_truncated(log_end_offset=log.log_end_offset)
        replica.inflight_deadline = None
        return self._fetch(replica, now_ms)

    def _fetch(self, replica: Replica, now_ms: int) -> list[Effect]:
        follower = replica.follower
        assert follower is not None
        # Only what is durable here is offered to the leader as replicated.
        offset = replica.log.flushed_offset
        if replica.log.log_end_offset > offset:
            return self._request_flush(replica)
        replica.inflight_deadline = (
            now_ms + self.config.request_timeout_ms + self.config.replica_fetch_wait_ms
        )
        request = ReplicaFetchRequest(
            src=self.node_id,
            dst=follower.leader,
            topic=follower.topic,
            partition=follower.partition,
            leader_epoch=follower.leader_epoch,
            fetch_offset=offset,
            max_bytes=self.config.replica_fetch_max_bytes,
        )
        return [SendToPeer(message=request)]

    def _on_fetch_response(self, response: ReplicaFetchResponse, now_ms: int) -> list[Effect]:
        replica = self._replicas.get((response.topic, response.partition))
        if replica is None or replica.follower is None:
            return []
        follower = replica.follower
        if response.src != follower.leader or response.leader_epoch != follower.leader_epoch:
            return []
        if not follower.truncated or replica.inflight_deadline is None:
            return []  # a duplicate or late answer
        replica.inflight_deadline = None
        log = replica.log
        if response.error == OFFSET_OUT_OF_RANGE and not replica.flushing:
            restart = out_of_range_restart(
                log_end_offset=log.log_end_offset,
                leader_log_start_offset=response.log_start_offset,
            )
            if restart is not None:
                return self._restart_at(replica, restart, now_ms)
        if response.error != NONE:
            # Back off (newer metadata may arrive meanwhile), then start over.
            replica.inflight_deadline = now_ms + self.config.replica_fetch_backoff_ms
            return []
        out: list[Effect] = []
        if response.records:
            try:
                batches = list(iter_batches(response.records))
                first = batches[0][1].base_offset if batches else log.log_end_offset
                if first != log.log_end_offset:
                    # An answer to an older request: ask again from where we are.
                    return self._fetch(replica, now_ms)
                log.append_replicated(response.records, now_ms=now_ms)
            except (LogError, InvalidBatchError):
                replica.inflight_deadline = now_ms + self.config.request_timeout_ms
                return []
            for _, header in batches:
                replica.producers.record_batch(header)
        follower.on_fetched(
            log_end_offset=log.log_end_offset, leader_high_watermark=response.high_watermark
        )
        replica.last_hw = follower.high_watermark
        start = follower_log_start(
            log_start_offset=log.log_start_offset,
            leader_log_start_offset=response.log_start_offset,
            high_watermark=follower.high_watermark,
            flushed_offset=log.flushed_offset,
        )
        if start > log.log_start_offset:
            try:
                log.advance_log_start(start)
            except LogError:
                replica.inflight_deadline = now_ms + self.config.request_timeout_ms
                return []
        out += self._fetch(replica, now_ms)
        return out

    def _restart_at(self, replica: Replica, offset: int, now_ms: int) -> list[Effect]:
        """The leader's log starts past ours: empty the log, restart it at ``offset``."""
        follower = replica.follower
        assert follower is not None
        try:
            replica.log.truncate_fully_and_start_at(offset, now_ms=now_ms)
        except LogError:
            replica.inflight_deadline = now_ms + self.config.request_timeout_ms
            return []
        # Every batch it knew of is gone; producer state comes back with the batches
        # it fetches from here on (like a restart without a producer snapshot).
        replica.producers = ProducerStateTable()
        follower.on_restarted(log_end_offset=offset)
        replica.last_hw = follower.high_watermark
        return self._fetch(replica, now_ms)


def _epoch_end(log: PartitionLog, epoch: int) -> EpochEndOffset:
    found, end = log.end_offset_for_epoch(epoch)
    return EpochEndOffset(epoch=found, end_offset=end)
