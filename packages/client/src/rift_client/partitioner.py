"""Choosing a partition: Java's murmur2 for keyed records, sticky for keyless ones.

Keyed records go to ``(murmur2(key) & 0x7fffffff) % partitions``, byte for byte the
Java client's ``BuiltInPartitioner``, so the same key lands on the same partition
whichever client wrote it. Keyless records stick to one randomly chosen partition
until the producer closes the batch for it (:meth:`Partitioner.on_new_batch`),
then move to another (KIP-480), which keeps batches full under low key-less load.

Randomness is injected (``rng``), so the choice is reproducible in tests.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["murmur2", "partition_for_key", "Partitioner"]

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as a signed int32."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length % 4
    if extra >= 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the Java client picks for ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Rng(Protocol):
    def randrange(self, stop: int, /) -> int: ...


class Partitioner:
    """Murmur2 for keys; a sticky partition per topic for keyless records."""

    def __init__(self, *, rng: Rng) -> None:
        self._rng = rng
        self._sticky: dict[str, int] = {}

    def partition(
        self, topic: str, key: bytes | None, *, partitions: int, available: list[int] | None = None
    ) -> int:
        """``partitions`` is the topic's count; ``available`` those with a leader."""
        if partitions <= 0:
            raise ValueError("a topic has at least one partition")
        if key is not None:
            return partition_for_key(key, partitions)
        current = self._sticky.get(topic)
        if current is None or current >= partitions:
            current = self._choose(partitions, available, exclude=None)
            self._sticky[topic] = current
        return current

    def on_new_batch(self, topic: str, *, previous: int, partitions: int) -> None:
        """The batch for ``previous`` was closed: keyless records move elsewhere."""
        if self._sticky.get(topic) == previous:
            self._sticky[topic] = self._choose(partitions, None, exclude=previous)

    def _choose(self, partitions: int, available: list[int] | None, *, exclude: int | None) -> int:
        pool = available if available else list(range(partitions))
        if exclude is not None and len(pool) > 1:
            pool = [p for p in pool if p != exclude]
        return pool[self._rng.randrange(len(pool))]
