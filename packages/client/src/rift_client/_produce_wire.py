"""Produce and InitProducerId on the wire: build requests, read answers (no IO).

Batches are encoded afresh for every attempt: the base sequence is fixed when the
batch is first drained, but the producer id may have changed (after a reset) for a
batch that had not been sent yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rift_client import protocol
from rift_client.accumulator import ProducerBatch
from rift_client.compression import Compression
from rift_client.protocol import Api
from rift_client.records import encode_batch
from rift_client.types import TopicPartition

__all__ = ["PartitionAnswer", "produce_request", "produce_answers", "init_producer_id_request"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionAnswer:
    error_code: int
    base_offset: int
    message: str | None = None


def produce_request(
    version: int,
    batches: Sequence[ProducerBatch],
    *,
    acks: int,
    timeout: float,
    producer_id: int,
    producer_epoch: int,
    compression: Compression,
) -> Any:
    by_topic: dict[str, list[Any]] = defaultdict(list)
    for batch in batches:
        data = encode_batch(
            batch.records,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=batch.base_sequence,
            compression=compression,
        )
        by_topic[batch.tp.topic].append(
            protocol.make(
                Api.PRODUCE, version, "PartitionProduceData", index=batch.tp.partition, records=data
            )
        )
    return protocol.request(
        Api.PRODUCE,
        version,
        transactional_id=None,
        acks=acks,
        timeout=protocol.duration(timeout),
        topic_data=tuple(
            protocol.make(Api.PRODUCE, version, "TopicProduceData", name=t, partition_data=tuple(p))
            for t, p in by_topic.items()
        ),
    )


def produce_answers(response: Any) -> dict[TopicPartition, PartitionAnswer]:
    return {
        TopicPartition(topic=t.name, partition=int(p.index)): PartitionAnswer(
            error_code=int(p.error_code),
            base_offset=int(p.base_offset),
            message=getattr(p, "error_message", None),  # Produce v8+
        )
        for t in response.responses
        for p in t.partition_responses
    }


def init_producer_id_request(version: int) -> Any:
    return protocol.request(
        Api.INIT_PRODUCER_ID,
        version,
        transactional_id=None,
        transaction_timeout=protocol.duration(60.0),
    )
