"""The assignors: exact coverage, balance, stickiness and determinism (Hypothesis)."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.coordinator.assignors.sticky.user_data import StickyAssignorUserData

from rift_client.assignor import (
    ASSIGNORS,
    MemberSubscription,
    decode_sticky_user_data,
    encode_sticky_user_data,
    range_assign,
    sticky_assign,
)
from rift_client.types import TopicPartition


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic=topic, partition=partition)


topic_counts = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 9), min_size=1, max_size=4
)


@st.composite
def groups(draw: st.DrawFn) -> tuple[list[MemberSubscription], dict[str, int]]:
    counts = draw(topic_counts)
    names = sorted(counts)
    n = draw(st.integers(1, 6))
    universe = [tp(t, p) for t in names for p in range(counts[t])]
    members = []
    for i in range(n):
        topics = draw(st.sets(st.sampled_from(names), min_size=1))
        owned = draw(st.lists(st.sampled_from(universe), unique=True) if universe else st.just([]))
        members.append(
            MemberSubscription(
                member_id=f"m{i}",
                topics=frozenset(topics),
                owned=tuple(owned),
                generation=draw(st.integers(-1, 3)),
            )
        )
    return members, counts


def check_exact_cover(
    members: list[MemberSubscription], counts: dict[str, int], plan: dict[str, list[TopicPartition]]
) -> None:
    assert set(plan) == {m.member_id for m in members}
    subscribed = {t for m in members for t in m.topics}
    want = {tp(t, p) for t in subscribed for p in range(counts.get(t, 0))}
    given_out = Counter(x for tps in plan.values() for x in tps)
    assert set(given_out) == want
    assert set(given_out.values()) <= {1}
    topics = {m.member_id: m.topics for m in members}
    for mid, tps in plan.items():
        assert all(x.topic in topics[mid] for x in tps)


def check_balanced(
    members: list[MemberSubscription], plan: dict[str, list[TopicPartition]]
) -> None:
    by_subscription: dict[frozenset[str], list[int]] = {}
    for m in members:
        by_subscription.setdefault(m.topics, []).append(len(plan[m.member_id]))
    for sizes in by_subscription.values():
        assert max(sizes) - min(sizes) <= 1, sizes


@settings(max_examples=300, deadline=None)
@given(groups())
def test_sticky_assigns_every_partition_once_and_balances(
    group: tuple[list[MemberSubscription], dict[str, int]],
) -> None:
    members, counts = group
    plan = sticky_assign(members, counts)
    check_exact_cover(members, counts, plan)
    check_balanced(members, plan)


@settings(max_examples=200, deadline=None)
@given(groups(), st.randoms(use_true_random=False))
def test_sticky_is_deterministic(
    group: tuple[list[MemberSubscription], dict[str, int]], rnd: random.Random
) -> None:
    members, counts = group
    shuffled = list(members)
    rnd.shuffle(shuffled)
    assert sticky_assign(members, counts) == sticky_assign(shuffled, counts)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 30),  # partitions of the one topic
    st.integers(1, 6),  # members before
    st.integers(0, 3),  # members removed
    st.integers(0, 3),  # members added
)
def test_sticky_keeps_min_of_old_count_and_fair_share(
    partitions: int, before: int, removed: int, added: int
) -> None:
    counts = {"t": partitions}
    old_ids = [f"m{i}" for i in range(before)]
    first = sticky_assign(
        [MemberSubscription(member_id=m, topics=frozenset({"t"})) for m in old_ids], counts
    )
    survivors = old_ids[: max(0, before - removed)]
    newcomers = [f"n{i}" for i in range(added)]
    if not survivors and not newcomers:
        return
    members = [
        MemberSubscription(
            member_id=m, topics=frozenset({"t"}), owned=tuple(first[m]), generation=1
        )
        for m in survivors
    ] + [MemberSubscription(member_id=m, topics=frozenset({"t"})) for m in newcomers]
    second = sticky_assign(members, counts)
    check_exact_cover(members, counts, second)
    check_balanced(members, second)
    fair = partitions // len(members)
    for m in survivors:
        kept = len(set(first[m]) & set(second[m]))
        assert kept >= min(len(first[m]), fair), (m, first[m], second[m])


@settings(max_examples=200, deadline=None)
@given(groups())
def test_a_balanced_current_ownership_does_not_move(
    group: tuple[list[MemberSubscription], dict[str, int]],
) -> None:
    members, counts = group
    plan = sticky_assign(members, counts)
    again = [
        MemberSubscription(
            member_id=m.member_id, topics=m.topics, owned=tuple(plan[m.member_id]), generation=5
        )
        for m in members
    ]
    assert sticky_assign(again, counts) == plan


def test_conflicting_claims_go_to_the_newest_generation() -> None:
    members = [
        MemberSubscription(
            member_id="a", topics=frozenset({"t"}), owned=(tp("t", 0),), generation=1
        ),
        MemberSubscription(
            member_id="b", topics=frozenset({"t"}), owned=(tp("t", 0),), generation=2
        ),
    ]
    plan = sticky_assign(members, {"t": 2})
    assert plan == {"a": [tp("t", 1)], "b": [tp("t", 0)]}


def test_unknown_and_unsubscribed_ownership_is_dropped() -> None:
    members = [
        MemberSubscription(
            member_id="a",
            topics=frozenset({"t"}),
            owned=(tp("t", 7), tp("gone", 0), tp("u", 0)),
        ),
        MemberSubscription(member_id="b", topics=frozenset({"t", "u"})),
    ]
    plan = sticky_assign(members, {"t": 2, "u": 1})
    check_exact_cover(members, {"t": 2, "u": 1}, plan)
    assert tp("u", 0) in plan["b"]


def test_range_matches_kafka() -> None:
    members = [
        MemberSubscription(member_id="c0", topics=frozenset({"t0", "t1"})),
        MemberSubscription(member_id="c1", topics=frozenset({"t0", "t1"})),
    ]
    plan = range_assign(members, {"t0": 3, "t1": 3})
    assert plan == {
        "c0": [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)],
        "c1": [tp("t0", 2), tp("t1", 2)],
    }


@settings(max_examples=200, deadline=None)
@given(groups())
def test_range_assigns_every_partition_once(
    group: tuple[list[MemberSubscription], dict[str, int]],
) -> None:
    members, counts = group
    check_exact_cover(members, counts, range_assign(members, counts))


def test_assignor_table() -> None:
    assert ASSIGNORS["sticky"].user_data([tp("t", 1)], 3) == encode_sticky_user_data(
        [tp("t", 1)], 3
    )
    assert ASSIGNORS["range"].user_data([tp("t", 1)], 3) is None


@given(
    st.lists(st.tuples(st.sampled_from(["a", "bb", "ccc"]), st.integers(0, 50)), unique=True),
    st.integers(-1, 2**31 - 1),
)
def test_sticky_user_data_is_kafkas_format(pairs: list[tuple[str, int]], generation: int) -> None:
    owned = [tp(t, p) for t, p in pairs]
    ours = encode_sticky_user_data(owned, generation)
    by_topic: dict[str, list[int]] = {}
    for t, p in sorted(pairs):
        by_topic.setdefault(t, []).append(p)
    theirs = StickyAssignorUserData(
        previous_assignment=[
            StickyAssignorUserData.TopicPartition(topic=t, partitions=ps)
            for t, ps in sorted(by_topic.items())
        ],
        generation=generation,
    ).encode(version=1, header=False)
    assert ours == theirs
    decoded, gen = decode_sticky_user_data(ours)
    assert sorted(decoded) == sorted(owned)
    assert gen == generation


def test_sticky_user_data_v0_and_garbage() -> None:
    v1 = encode_sticky_user_data([tp("t", 3)], 9)
    assert decode_sticky_user_data(v1[:-4]) == ((tp("t", 3),), -1)  # v0: no generation
    assert decode_sticky_user_data(None) == ((), -1)
    assert decode_sticky_user_data(b"\x00\x00\x00\x05\x00") == ((), -1)
