"""The broker's safety invariants, checked after every simulated event.

Per step (raising :class:`~rift_chaos.sim.scenario.InvariantViolation` at once, so
the trace ends where things went wrong):

- **one Raft leader per term**: no two nodes are ever leader in the same term;
- **committed metadata is never lost**: every entry any node applies as committed
  has the same term and command as every other node's entry at that index, and a
  node that becomes Raft leader of a term holds every entry committed in an earlier
  term (Raft's leader completeness). A leader of an *older* term may lack entries
  committed since: a candidate paused with its granted votes held up wins its term
  when it resumes, long after a later term's leader committed more, and is deposed
  by the first node it talks to;
- **one partition leader per epoch**: no two nodes lead a partition in one leader
  epoch (from the replica managers' own state and their ``leader`` observations);
- **records below a high watermark never change, on any replica**: whenever a
  leader's or a follower's high watermark moves up, what that replica holds below
  it is what every replica ever held below a high watermark at those offsets (a
  follower that took records from a deposed leader is caught the moment its high
  watermark covers them, before a later truncation can hide it);
- **the high watermark never moves back on a leader within an epoch** (per process:
  a restarted broker is a new leader object);
- **retention deletes only committed records**: no replica's log start offset ever
  passes the partition's committed offset, the highest high watermark any replica
  of it has had (a high watermark only covers records every replica will keep, see
  the invariant above). Retention may delete whole segments below a replica's own
  high watermark and fsynced offset; a follower raises its start to its leader's
  (capped the same way) or restarts its log empty at its leader's start, which the
  leader's own retention kept below the leader's high watermark. So a log start
  above the committed offset means a replica deleted records that were not, or
  not yet, committed, or skipped records it never had.

At the end of a run (:meth:`Invariants.final`): every acknowledged record at or
above the partition's *retention floor* (the highest log start any replica had) is
in the final log at the offset it was acknowledged with, and all replicas agree with
the leader below its high watermark. Acknowledged records below the floor may have
been deleted by retention, legitimately: the per-step check above is what proves
that floor never passed what was committed, so nothing is excused that retention
was not allowed to delete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from rift_broker.chaos_plugin._sim_node import decode
from rift_broker.raft import Entry
from rift_broker.records import iter_batches
from rift_broker.replication.messages import Observed
from rift_chaos.sim.scenario import InvariantViolation

if TYPE_CHECKING:
    from rift_broker.chaos_plugin._sim_node import BrokerSimNode
    from rift_broker.replication._state import Replica

Key = tuple[str, int]


def _zero() -> int:
    return 0


class Invariants:
    def __init__(self) -> None:
        self.now_ms: Callable[[], int] = _zero
        self._raft_leaders: dict[int, str] = {}
        # index -> (entry term, command, the lowest term it was known committed in)
        self._committed: dict[int, tuple[int, bytes, int]] = {}
        self._checked_leaders: set[tuple[str, int]] = set()
        self._partition_leaders: dict[tuple[str, int, int], str] = {}
        self._hw: dict[tuple[str, str, int, int], int] = {}  # (process, topic, p, epoch)
        self._checked_hw: dict[tuple[str, str, int], int] = {}  # (process, topic, p)
        # offset -> (batch CRC, first holder) of what was there below some HW
        self._settled: dict[Key, dict[int, tuple[int, str]]] = {}
        self._committed_offset: dict[Key, int] = {}  # the highest HW any replica had
        self._log_start: dict[Key, int] = {}  # the highest log start any replica had

    def _fail(self, message: str) -> None:
        raise InvariantViolation(f"at {self.now_ms()}ms: {message}")

    # -- per step -----------------------------------------------------------------

    def on_committed(self, name: str, entries: Sequence[Entry], *, term: int) -> None:
        """``name``, in Raft term ``term``, applies ``entries`` as committed.

        A leader applies what it commits at once, in the term it commits it in; a
        follower learns of it later, in that term or a later one: so the lowest term
        reported is the term the entry was committed in.
        """
        committed = self._committed
        for entry in entries:
            known = committed.get(entry.index)
            if known is None:
                committed[entry.index] = (entry.term, entry.command, term)
            elif known[:2] != (entry.term, entry.command):
                self._fail(
                    f"committed metadata lost: {name} committed index {entry.index} at term "
                    f"{entry.term}, but term {known[0]} was committed there"
                )
            elif term < known[2]:
                committed[entry.index] = (entry.term, entry.command, term)

    def after_step(self, sim_node: BrokerSimNode) -> None:
        node = sim_node.node
        assert node is not None
        name = sim_node.name
        raft = node.raft
        if raft.is_leader:
            term = raft.term
            other = self._raft_leaders.setdefault(term, name)
            if other != name:
                self._fail(f"two Raft leaders in term {term}: {other} and {name}")
            if (name, term) not in self._checked_leaders:
                self._checked_leaders.add((name, term))
                floor = raft.log.offset
                for index, (t, _, when) in self._committed.items():
                    if when < term and index > floor and raft.log.term_at(index) != t:
                        self._fail(
                            f"Raft leader {name} of term {term} lacks entry {index} (term {t}) "
                            f"committed in term {when}"
                        )
        process = node.config.incarnation  # one per process start
        for at, replica in node.replicas._replicas.items():
            topic, partition = at
            self._retention(name, at, replica)
            leader = replica.leader
            if leader is None:
                if replica.follower is not None:
                    self._below_hw(name, process, at, replica, replica.follower.high_watermark)
                continue
            self._below_hw(name, process, at, replica, leader.high_watermark)
            self._leader(name, topic, partition, leader.leader_epoch)
            key = (process, topic, partition, leader.leader_epoch)
            hw = leader.high_watermark
            before = self._hw.get(key, hw)
            if hw < before:
                self._fail(
                    f"high watermark of {topic}/{partition} moved back on leader {name} in "
                    f"epoch {leader.leader_epoch}: {before} -> {hw}"
                )
            self._hw[key] = hw

    def _retention(self, name: str, at: Key, replica: Replica) -> None:
        """No replica's log start passes the partition's committed offset."""
        if replica.leader is not None:
            hw = replica.leader.high_watermark
        elif replica.follower is not None:
            hw = replica.follower.high_watermark
        else:
            hw = -1
        committed = max(self._committed_offset.get(at, 0), hw)
        self._committed_offset[at] = committed
        start = replica.log.log_start_offset
        if start > self._log_start.get(at, 0):
            self._log_start[at] = start
            if start > committed:
                topic, partition = at
                self._fail(
                    f"log start of {topic}/{partition} on {name} passed the committed offset: "
                    f"starts at {start}, but no replica's high watermark was above {committed}"
                )

    def _below_hw(self, name: str, process: str, at: Key, replica: Replica, hw: int) -> None:
        """What a replica holds below its high watermark is what every replica holds."""
        topic, partition = at
        key = (process, topic, partition)
        checked = self._checked_hw.get(key, 0)
        if hw == checked:
            return
        self._checked_hw[key] = hw
        if hw < checked:
            return  # cut back (a restarted follower's HW starts over): look again later
        # Batches are stored as the leader stamped them; their CRC covers the records
        # (not the base offset or epoch), so it tells the contents apart cheaply.
        settled = self._settled.setdefault((topic, partition), {})
        for offset, crc in _fingerprints(replica.log, checked, hw).items():
            first = settled.setdefault(offset, (crc, name))
            if first[0] != crc:
                held = _records(replica.log, offset + 1, start=offset).get(offset)
                self._fail(
                    f"replicas disagree below the high watermark: {topic}/{partition}@{offset} "
                    f"is {held} on {name}, not what {first[1]} held there below its high "
                    "watermark"
                )

    def on_observed(self, name: str, effect: Observed) -> None:
        if effect.kind == "leader":
            self._leader(name, effect.topic, effect.partition, effect.value["epoch"])

    def _leader(self, name: str, topic: str, partition: int, epoch: int) -> None:
        other = self._partition_leaders.setdefault((topic, partition, epoch), name)
        if other != name:
            self._fail(f"two leaders of {topic}/{partition} in epoch {epoch}: {other} and {name}")

    # -- at the end ---------------------------------------------------------------

    def final(
        self, nodes: Iterable[BrokerSimNode], acked: Iterable[tuple[str, int, int, int]]
    ) -> list[str]:
        """End-of-run problems: lost acknowledged records, replicas that disagree."""
        problems: list[str] = []
        up = [n for n in nodes if n.node is not None]
        logs: dict[Key, tuple[str, int, dict[int, int]]] = {}
        for sim_node in up:
            assert sim_node.node is not None
            replicas = sim_node.node.replicas
            for topic, partition in replicas.partitions():
                replica = replicas._replicas[topic, partition]
                if replica.leader is None:
                    continue
                epoch = replica.leader.leader_epoch
                best = logs.get((topic, partition))
                if best is None or epoch > best[1]:
                    records = _records(replica.log, replica.leader.high_watermark)
                    logs[topic, partition] = (sim_node.name, epoch, records)
        for topic, partition, offset, value in acked:
            found = logs.get((topic, partition))
            if found is None:
                problems.append(f"{topic}/{partition} has no leader at the end")
                continue
            if offset < self._log_start.get((topic, partition), 0):
                continue  # deleted by retention, below what was committed (checked per step)
            if found[2].get(offset) != value:
                problems.append(
                    f"acknowledged record {value} at {topic}/{partition}@{offset} is not in the "
                    f"final log of leader {found[0]} (holds {found[2].get(offset)!r} there)"
                )
        for sim_node in up:
            assert sim_node.node is not None
            replicas = sim_node.node.replicas
            for topic, partition in replicas.partitions():
                found = logs.get((topic, partition))
                if found is None or found[0] == sim_node.name:
                    continue
                replica = replicas._replicas[topic, partition]
                mine = _records(replica.log, replica.log.log_end_offset)
                for offset, value in found[2].items():
                    if offset in mine and mine[offset] != value:
                        problems.append(
                            f"replicas disagree below the high watermark: {topic}/{partition}"
                            f"@{offset} is {value} on leader {found[0]}, {mine[offset]} on "
                            f"{sim_node.name}"
                        )
                        break
        return sorted(set(problems))


def _fingerprints(log: object, start: int, end: int) -> dict[int, int]:
    """The CRC of the batch holding each offset in ``[start, end)`` of ``log``."""
    from rift_broker.log import PartitionLog

    assert isinstance(log, PartitionLog)
    out: dict[int, int] = {}
    offset = max(start, log.log_start_offset)
    end = min(end, log.log_end_offset)
    while offset < end:
        data = log.read(offset, max_bytes=1 << 20, max_offset=end)
        after = offset
        for _, header in iter_batches(data, validate=False):
            for o in range(max(header.base_offset, start), min(header.last_offset + 1, end)):
                out[o] = header.crc
            after = header.last_offset + 1
        if after <= offset:
            break
        offset = after
    return out


def _records(log: object, until: int, *, start: int = 0) -> dict[int, int]:
    from rift_broker.log import PartitionLog

    assert isinstance(log, PartitionLog)
    out: dict[int, int] = {}
    offset = max(start, log.log_start_offset)
    end = min(until, log.log_end_offset)
    while offset < end:
        data = log.read(offset, max_bytes=1 << 20, max_offset=end)
        records = decode(data) if data else []
        if not records:
            break
        for o, v in records:
            if o < end:
                out[o] = v
        offset = records[-1][0] + 1
    return out
