"""The leader half of the replica manager: serving followers, answering produces."""

from __future__ import annotations

from rift_broker.replication._leader import AckDecision
from rift_broker.replication._state import (
    Replica,
    ReplicaBase,
    Waiter,
)
from rift_broker.replication.messages import (
    FENCED_LEADER_EPOCH,
    NONE,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_TOPIC_OR_PARTITION,
    Effect,
    EpochAnswer,
    EpochQuery,
    ProduceDone,
    ProposeIsr,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    SendToPeer,
)


class LeaderSide(ReplicaBase):
    def _on_fetch_request(self, request: ReplicaFetchRequest, now_ms: int) -> list[Effect]:
        replica = self._replicas.get((request.topic, request.partition))
        error = self._check_epoch(replica, request.leader_epoch)
        if error == NONE and replica is not None and request.src not in replica.assignment.replicas:
            error = NOT_LEADER_OR_FOLLOWER
        if error != NONE or replica is None or replica.leader is None:
            return [SendToPeer(message=self._fetch_error(request, error))]
        leader, log = replica.leader, replica.log
        if not log.log_start_offset <= request.fetch_offset <= log.log_end_offset:
            return [SendToPeer(message=self._fetch_response(replica, request))]
        out: list[Effect] = []
        moved, change = leader.on_follower_fetch(
            follower=request.src, fetch_offset=request.fetch_offset, now_ms=now_ms
        )
        if change is not None:
            out.append(ProposeIsr(change=change))
        if moved:
            out += self._hw_moved(replica, now_ms)
            out += self._complete_waiters(replica)
        if request.fetch_offset >= log.log_end_offset and self.config.replica_fetch_wait_ms > 0:
            replica.parked.append((request, now_ms + self.config.replica_fetch_wait_ms))
            return out
        return [*out, SendToPeer(message=self._fetch_response(replica, request))]

    def _fetch_response(
        self, replica: Replica, request: ReplicaFetchRequest
    ) -> ReplicaFetchResponse:
        """The leader's answer: records from the fetch offset, or OFFSET_OUT_OF_RANGE
        when it lies outside the log (below the start, retention may have passed it
        while the fetch was parked), with this leader's log start and high watermark:
        a follower below the start restarts its log there (see ``_retention``)."""
        leader, log = replica.leader, replica.log
        if leader is None:
            return self._fetch_error(request, NOT_LEADER_OR_FOLLOWER)
        error, records = NONE, b""
        if not log.log_start_offset <= request.fetch_offset <= log.log_end_offset:
            error = OFFSET_OUT_OF_RANGE
        elif request.fetch_offset < log.log_end_offset:
            records = log.read(request.fetch_offset, max_bytes=request.max_bytes)
        return ReplicaFetchResponse(
            src=self.node_id,
            dst=request.src,
            topic=request.topic,
            partition=request.partition,
            leader_epoch=leader.leader_epoch,
            error=error,
            high_watermark=leader.high_watermark,
            log_start_offset=log.log_start_offset,
            records=records,
        )

    def _fetch_error(self, request: ReplicaFetchRequest, error: int) -> ReplicaFetchResponse:
        return ReplicaFetchResponse(
            src=self.node_id,
            dst=request.src,
            topic=request.topic,
            partition=request.partition,
            leader_epoch=request.leader_epoch,
            error=error,
            high_watermark=-1,
            log_start_offset=-1,
            records=b"",
        )

    def _answer_epoch(self, query: EpochQuery) -> EpochAnswer:
        replica = self._replicas.get((query.topic, query.partition))
        error = self._check_epoch(replica, query.leader_epoch)
        epoch, end = -1, -1
        if error == NONE and replica is not None:
            epoch, end = replica.log.end_offset_for_epoch(query.epoch)
        return EpochAnswer(
            src=self.node_id,
            dst=query.src,
            topic=query.topic,
            partition=query.partition,
            leader_epoch=query.leader_epoch,
            error=error,
            epoch=epoch,
            end_offset=end,
        )

    def _check_epoch(self, replica: Replica | None, epoch: int) -> int:
        if replica is None:
            return UNKNOWN_TOPIC_OR_PARTITION
        if replica.leader is None:
            return NOT_LEADER_OR_FOLLOWER
        if epoch < replica.leader.leader_epoch:
            return FENCED_LEADER_EPOCH
        if epoch > replica.leader.leader_epoch:
            return UNKNOWN_LEADER_EPOCH
        return NONE

    def _unpark(self, replica: Replica, now_ms: int) -> list[Effect]:
        parked, replica.parked = replica.parked, []
        return [SendToPeer(message=self._fetch_response(replica, r)) for r, _ in parked]

    def _complete_waiters(self, replica: Replica) -> list[Effect]:
        leader = replica.leader
        if leader is None or not replica.waiters:
            return []
        out: list[Effect] = []
        waiting: list[Waiter] = []
        for w in replica.waiters:
            if w.acks == 1:
                ready = replica.log.flushed_offset > w.last_offset
                error = NONE
            else:
                decision = leader.ack_decision(last_offset=w.last_offset)
                ready = decision is not AckDecision.WAIT
                error = NONE if decision is AckDecision.ACK else NOT_ENOUGH_REPLICAS_AFTER_APPEND
            if not ready:
                waiting.append(w)
                continue
            out.append(
                ProduceDone(
                    request_id=w.request_id,
                    topic=replica.assignment.topic,
                    partition=replica.assignment.partition,
                    error=error,
                    base_offset=w.base_offset if error == NONE else -1,
                    log_start_offset=replica.log.log_start_offset,
                )
            )
        replica.waiters = waiting
        return out

    def _fail_waiters(self, replica: Replica, error: int) -> list[Effect]:
        waiters, replica.waiters = replica.waiters, []
        return [
            ProduceDone(
                request_id=w.request_id,
                topic=replica.assignment.topic,
                partition=replica.assignment.partition,
                error=error,
            )
            for w in waiters
        ]
