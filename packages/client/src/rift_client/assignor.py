"""Partition assignors: pure functions from the members' subscriptions to an assignment.

Theory of operation. The group leader runs one assignor over every member's
:class:`MemberSubscription` (its topics, and for the sticky assignor the partitions
it owned in the last generation it took part in) and the partition count of each
topic. Nothing here does IO or reads a clock.

``sticky`` (Kafka's ``StickyAssignor`` protocol name, eager rebalancing):

1. *Keep*: every member keeps the partitions it owned that still exist and that it
   still subscribes to. If two members claim one partition (a member that missed a
   generation), the claim of the higher generation wins, then the lower member id.
2. *Place*: each unowned partition goes to the eligible member holding the fewest
   partitions (ties: member id). Partitions with fewer eligible members go first.
3. *Balance*: while some member ``d`` holds a partition that a member ``r`` with at
   least two fewer partitions subscribes to, move one such partition from the
   fullest such ``d`` to the emptiest such ``r`` (preferring a partition ``r`` owned
   before, then one ``d`` did not). Each move lowers the sum of squared counts, so
   the loop ends.

Invariants (tested with Hypothesis in ``tests/unit/test_assignor.py``): every
subscribed partition is assigned exactly once; among members with identical
subscriptions the counts differ by at most one (a gap of two would leave a move in
step 3); a member present before and after keeps at least ``min(old count,
floor(partitions / members))`` of its partitions when subscriptions are identical
(only members above the fair share give partitions away); the result depends only
on the input.

``range`` (Kafka's ``RangeAssignor``): per topic, the members subscribed to it, in
member id order, get consecutive ranges; the first ``partitions % members`` get one
extra. It is here so that groups mixing our client with others agree on a protocol.

The ownership a sticky member reports travels in the subscription's ``user_data``
in the format of Kafka's ``StickyAssignor`` (``StickyAssignorUserData`` v1: an
array of (topic: string, partitions: [int32]) then generation: int32; v0 lacks the
generation). :func:`encode_sticky_user_data` / :func:`decode_sticky_user_data`.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rift_client.types import TopicPartition

__all__ = [
    "MemberSubscription",
    "Assignor",
    "sticky_assign",
    "range_assign",
    "ASSIGNORS",
    "encode_sticky_user_data",
    "decode_sticky_user_data",
]

Assignment = dict[str, list[TopicPartition]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSubscription:
    """What one member asked for. ``owned`` and ``generation`` feed stickiness."""

    member_id: str
    topics: frozenset[str]
    owned: tuple[TopicPartition, ...] = ()
    generation: int = -1
    user_data: bytes | None = field(default=None, compare=False)


def _universe(
    members: Iterable[MemberSubscription], partitions: Mapping[str, int]
) -> list[TopicPartition]:
    topics = sorted({t for m in members for t in m.topics if partitions.get(t, 0) > 0})
    return [TopicPartition(topic=t, partition=p) for t in topics for p in range(partitions[t])]


def sticky_assign(
    members: Iterable[MemberSubscription], partitions: Mapping[str, int]
) -> Assignment:
    """Kafka-style sticky assignment (see the module docstring). ``partitions`` maps
    each topic to its partition count; topics it lacks are skipped."""
    subs = {m.member_id: m for m in sorted(members, key=lambda m: m.member_id)}
    result: dict[str, set[TopicPartition]] = {mid: set() for mid in subs}
    universe = _universe(subs.values(), partitions)
    valid = set(universe)

    # 1. keep: the highest-generation claim wins, then the lowest member id.
    claims: dict[TopicPartition, tuple[int, str]] = {}
    for mid, sub in subs.items():
        for tp in sub.owned:
            if tp not in valid or tp.topic not in sub.topics:
                continue
            claim = (-sub.generation, mid)
            if tp not in claims or claim < claims[tp]:
                claims[tp] = claim
    for tp, (_, mid) in claims.items():
        result[mid].add(tp)

    # 2. place the rest: the most constrained partitions first.
    eligible = {tp: [mid for mid, s in subs.items() if tp.topic in s.topics] for tp in universe}
    unowned = sorted(
        (tp for tp in universe if tp not in claims), key=lambda tp: (len(eligible[tp]), tp)
    )
    for tp in unowned:
        mid = min(eligible[tp], key=lambda m: (len(result[m]), m))
        result[mid].add(tp)

    # 3. balance: move from the fullest donor to the emptiest eligible receiver.
    previously = {mid: set(sub.owned) for mid, sub in subs.items()}
    while True:
        move = _best_move(subs, result, previously)
        if move is None:
            break
        donor, receiver, tp = move
        result[donor].discard(tp)
        result[receiver].add(tp)
    return {mid: sorted(tps) for mid, tps in result.items()}


def _best_move(
    subs: Mapping[str, MemberSubscription],
    result: Mapping[str, set[TopicPartition]],
    previously: Mapping[str, set[TopicPartition]],
) -> tuple[str, str, TopicPartition] | None:
    donors = sorted(subs, key=lambda m: (-len(result[m]), m))
    receivers = sorted(subs, key=lambda m: (len(result[m]), m))
    for donor in donors:
        for receiver in receivers:
            if len(result[donor]) - len(result[receiver]) < 2:
                break
            topics = subs[receiver].topics
            movable = [tp for tp in result[donor] if tp.topic in topics]
            if movable:
                tp = min(
                    movable,
                    key=lambda tp: (tp not in previously[receiver], tp in previously[donor], tp),
                )
                return donor, receiver, tp
    return None


def range_assign(
    members: Iterable[MemberSubscription], partitions: Mapping[str, int]
) -> Assignment:
    """Kafka's RangeAssignor."""
    subs = sorted(members, key=lambda m: m.member_id)
    result: Assignment = {m.member_id: [] for m in subs}
    by_topic: dict[str, list[str]] = defaultdict(list)
    for m in subs:
        for t in m.topics:
            by_topic[t].append(m.member_id)
    for topic in sorted(by_topic):
        count = partitions.get(topic, 0)
        mids = by_topic[topic]
        share, extra = divmod(count, len(mids))
        start = 0
        for i, mid in enumerate(mids):
            n = share + (1 if i < extra else 0)
            result[mid].extend(
                TopicPartition(topic=topic, partition=p) for p in range(start, start + n)
            )
            start += n
    return result


class Assignor:
    """A named assignment strategy, as it goes into JoinGroup's protocol list."""

    def __init__(self, name: str, *, sticky: bool) -> None:
        self.name = name
        self.sticky = sticky

    def user_data(self, owned: Iterable[TopicPartition], generation: int) -> bytes | None:
        return encode_sticky_user_data(owned, generation) if self.sticky else None

    def assign(
        self, members: Iterable[MemberSubscription], partitions: Mapping[str, int]
    ) -> Assignment:
        if self.sticky:
            return sticky_assign(members, partitions)
        return range_assign(members, partitions)

    def __repr__(self) -> str:
        return f"Assignor({self.name!r})"


ASSIGNORS: Mapping[str, Assignor] = {
    "sticky": Assignor("sticky", sticky=True),
    "range": Assignor("range", sticky=False),
}


# --- StickyAssignorUserData (Kafka's StickyAssignor, no version prefix) -------------

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def encode_sticky_user_data(owned: Iterable[TopicPartition], generation: int) -> bytes:
    """``StickyAssignorUserData`` v1: previous assignment per topic, then generation."""
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in owned:
        by_topic[tp.topic].append(tp.partition)
    out = bytearray(_I32.pack(len(by_topic)))
    for topic in sorted(by_topic):
        name = topic.encode()
        out += _I16.pack(len(name)) + name
        parts = sorted(by_topic[topic])
        out += _I32.pack(len(parts))
        for p in parts:
            out += _I32.pack(p)
    out += _I32.pack(generation)
    return bytes(out)


def decode_sticky_user_data(data: bytes | None) -> tuple[tuple[TopicPartition, ...], int]:
    """``(owned, generation)``; v0 data has generation -1; garbage decodes as nothing
    owned (stickiness is an optimisation, never a reason to fail a rebalance)."""
    if not data:
        return (), -1
    try:
        pos = 0
        (n,) = _I32.unpack_from(data, pos)
        pos += 4
        owned: list[TopicPartition] = []
        for _ in range(n):
            (size,) = _I16.unpack_from(data, pos)
            pos += 2
            topic = data[pos : pos + size].decode()
            if len(topic.encode()) != size:
                raise ValueError("short topic")
            pos += size
            (count,) = _I32.unpack_from(data, pos)
            pos += 4
            for _ in range(count):
                (p,) = _I32.unpack_from(data, pos)
                pos += 4
                owned.append(TopicPartition(topic=topic, partition=p))
        generation = -1
        if len(data) >= pos + 4:
            (generation,) = _I32.unpack_from(data, pos)
        return tuple(owned), generation
    except (struct.error, ValueError, UnicodeDecodeError):
        return (), -1
