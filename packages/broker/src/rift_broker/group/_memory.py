"""An in-memory driver for the coordinator: a fake that ships with the core.

It plays the asyncio server's part without sockets or a clock: it numbers requests,
keeps every reply by request id (and fails loudly on a second reply), holds a
virtual clock, and keeps a durable ``__consumer_offsets`` log per partition. Appends
become durable at once (``auto_durable=True``) or when a test says so
(:meth:`MemoryDriver.complete`). :meth:`MemoryDriver.failover` starts a fresh
coordinator from the durable log, as a new partition leader would. Tests, the
simulator and examples use it; the real driver follows the same steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rift_broker.group._config import GroupConfig
from rift_broker.group._coordinator import GroupCoordinator
from rift_broker.group._messages import Append, JoinProtocol, OffsetCommitEntry, Output, Reply
from rift_broker.group._records import OffsetsRecord

__all__ = ["MemoryDriver"]


class MemoryDriver:
    """Drives one :class:`GroupCoordinator` that owns every partition of a fake log."""

    def __init__(
        self,
        *,
        num_partitions: int = 1,
        config: GroupConfig | None = None,
        auto_durable: bool = True,
        now_ms: int = 0,
        log: Mapping[int, Sequence[OffsetsRecord]] | None = None,
    ) -> None:
        self.config = config or GroupConfig()
        self.coordinator = GroupCoordinator(num_partitions=num_partitions, config=self.config)
        self.auto_durable = auto_durable
        self.now_ms = now_ms
        self.log: dict[int, list[OffsetsRecord]] = {
            p: list((log or {}).get(p, ())) for p in range(num_partitions)
        }
        self.in_flight: dict[int, Append] = {}
        self.replies: dict[int, Reply] = {}
        self._next_request = 1
        for p in range(num_partitions):
            self.take(self.coordinator.load(partition=p, records=self.log[p], now_ms=now_ms))

    # -- plumbing ---------------------------------------------------------------

    def take(self, outputs: Iterable[Output]) -> None:
        """Route the coordinator's outputs: keep replies, start (or finish) appends."""
        for output in outputs:
            if isinstance(output, Append):
                self.in_flight[output.append_id] = output
                if self.auto_durable:
                    self.complete(output.append_id)
            else:
                if output.request_id in self.replies:
                    raise AssertionError(f"request {output.request_id} answered twice")
                self.replies[output.request_id] = output

    def _request_id(self) -> int:
        rid = self._next_request
        self._next_request += 1
        return rid

    def reply(self, request_id: int) -> Reply:
        """The reply to ``request_id``; ``KeyError`` if it has not come yet."""
        return self.replies[request_id]

    def complete(self, append_id: int, *, error: int = 0) -> None:
        """Report an append durable (``error`` 0: its records join the log) or failed."""
        append = self.in_flight.pop(append_id)
        if error == 0:
            self.log[append.partition].extend(append.records)
        self.take(
            self.coordinator.on_appended(append_id=append_id, error=error, now_ms=self.now_ms)
        )

    def advance(self, ms: int) -> None:
        """Move the virtual clock ``ms`` forward and tick."""
        self.now_ms += ms
        self.take(self.coordinator.tick(self.now_ms))

    def advance_to_next_deadline(self) -> bool:
        """Jump to the coordinator's next deadline and tick; False if there is none."""
        deadline = self.coordinator.next_deadline()
        if deadline is None:
            return False
        self.advance(max(0, deadline - self.now_ms))
        return True

    def unload(self, partition: int = 0) -> None:
        """This node stops leading ``partition``: waiting requests get NOT_COORDINATOR."""
        self.take(self.coordinator.unload(partition=partition, now_ms=self.now_ms))

    def failover(self) -> MemoryDriver:
        """A new driver and coordinator loading this one's durable log (at this time)."""
        return MemoryDriver(
            num_partitions=self.coordinator.num_partitions,
            config=self.config,
            auto_durable=self.auto_durable,
            now_ms=self.now_ms,
            log=self.log,
        )

    # -- requests (each returns its request id) ----------------------------------

    def join(
        self,
        group_id: str,
        member_id: str = "",
        *,
        client_id: str = "client",
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int | None = None,
        protocol_type: str = "consumer",
        protocols: Sequence[tuple[str, bytes]] = (("range", b""),),
        require_known_member_id: bool = True,
    ) -> int:
        rid = self._request_id()
        outputs = self.coordinator.join(
            request_id=rid,
            group_id=group_id,
            member_id=member_id,
            client_id=client_id,
            client_host="/127.0.0.1",
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms or session_timeout_ms,
            protocol_type=protocol_type,
            protocols=[JoinProtocol(name=n, metadata=m) for n, m in protocols],
            require_known_member_id=require_known_member_id,
            now_ms=self.now_ms,
        )
        self.take(outputs)
        return rid

    def sync(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        assignments: Mapping[str, bytes] | None = None,
    ) -> int:
        rid = self._request_id()
        outputs = self.coordinator.sync(
            request_id=rid,
            group_id=group_id,
            member_id=member_id,
            generation_id=generation_id,
            assignments=assignments or {},
            now_ms=self.now_ms,
        )
        self.take(outputs)
        return rid

    def heartbeat(self, group_id: str, member_id: str, generation_id: int) -> int:
        rid = self._request_id()
        outputs = self.coordinator.heartbeat(
            request_id=rid,
            group_id=group_id,
            member_id=member_id,
            generation_id=generation_id,
            now_ms=self.now_ms,
        )
        self.take(outputs)
        return rid

    def leave(self, group_id: str, *member_ids: str) -> int:
        rid = self._request_id()
        outputs = self.coordinator.leave(
            request_id=rid, group_id=group_id, member_ids=member_ids, now_ms=self.now_ms
        )
        self.take(outputs)
        return rid

    def commit(
        self,
        group_id: str,
        offsets: Mapping[tuple[str, int], int],
        *,
        member_id: str = "",
        generation_id: int = -1,
        metadata: str | None = "",
    ) -> int:
        rid = self._request_id()
        entries = [
            OffsetCommitEntry(topic=t, partition=p, offset=o, metadata=metadata)
            for (t, p), o in offsets.items()
        ]
        outputs = self.coordinator.commit_offsets(
            request_id=rid,
            group_id=group_id,
            member_id=member_id,
            generation_id=generation_id,
            offsets=entries,
            now_ms=self.now_ms,
        )
        self.take(outputs)
        return rid

    def fetch(self, group_id: str, partitions: Sequence[tuple[str, int]] | None = None) -> int:
        rid = self._request_id()
        outputs = self.coordinator.fetch_offsets(
            request_id=rid, group_id=group_id, partitions=partitions, now_ms=self.now_ms
        )
        self.take(outputs)
        return rid
