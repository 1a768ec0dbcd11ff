"""murmur2 against the Java client's vectors, and the partitioners built on it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from rift_client.partitioner import Partitioner, murmur2, partition_for_key

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS)
def test_murmur2_matches_java(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@given(st.binary(max_size=64))
def test_murmur2_matches_kafka_python(key: bytes) -> None:
    # kafka-python returns the same hash as an unsigned 32-bit value.
    assert murmur2(key) & 0xFFFFFFFF == kafka_python_murmur2(key)


@given(st.binary(max_size=32), st.integers(min_value=1, max_value=1000))
def test_partition_for_key_in_range_and_like_java(key: bytes, partitions: int) -> None:
    p = partition_for_key(key, partitions)
    assert 0 <= p < partitions
    assert p == (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions


def test_keyed_records_ignore_stickiness() -> None:
    part = Partitioner(rng=random.Random(1))
    assert part.partition("t", b"21", partitions=12) == partition_for_key(b"21", 12)


def test_keyless_records_stick_until_a_new_batch() -> None:
    part = Partitioner(rng=random.Random(7))
    first = part.partition("t", None, partitions=6)
    assert all(part.partition("t", None, partitions=6) == first for _ in range(10))
    part.on_new_batch("t", previous=first, partitions=6)
    second = part.partition("t", None, partitions=6)
    assert second != first
    # a stale notification (about a partition we already left) changes nothing
    part.on_new_batch("t", previous=first, partitions=6)
    assert part.partition("t", None, partitions=6) == second


def test_keyless_prefers_partitions_with_a_leader() -> None:
    part = Partitioner(rng=random.Random(3))
    for topic in "abcdefgh":
        assert part.partition(topic, None, partitions=6, available=[4]) == 4


def test_sticky_choice_is_reproducible_with_a_seed() -> None:
    picks = []
    for _ in range(2):
        part = Partitioner(rng=random.Random(42))
        seq = []
        for _ in range(5):
            p = part.partition("t", None, partitions=10)
            seq.append(p)
            part.on_new_batch("t", previous=p, partitions=10)
        picks.append(seq)
    assert picks[0] == picks[1]


def test_zero_partitions_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Partitioner(rng=random.Random(0)).partition("t", b"k", partitions=0)
