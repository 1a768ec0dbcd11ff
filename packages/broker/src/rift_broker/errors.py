"""Errors of the broker: one root, shallow families, Kafka error codes in one table.

Every exception the broker raises on purpose derives from :class:`BrokerError`.
Errors that a client sees on the wire carry their Kafka error code as a class
attribute (``code``) and whether a client may retry (``retriable``); the
:func:`kafka_error` table maps a code back to its class, so a handler can turn any
``KafkaError`` into the partition- or topic-level error code of a response.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BrokerError",
    "ProtocolError",
    "FrameTooLarge",
    "TruncatedFrame",
    "MalformedRequest",
    "UnsupportedApi",
    "UnsupportedVersion",
    "ConfigError",
    "KafkaError",
    "UnknownTopicOrPartition",
    "InvalidTopic",
    "TopicAlreadyExists",
    "InvalidPartitions",
    "InvalidReplicationFactor",
    "InvalidReplicaAssignment",
    "InvalidConfig",
    "InvalidRequest",
    "CorruptMessage",
    "InvalidRecord",
    "OffsetOutOfRange",
    "OutOfOrderSequence",
    "DuplicateSequence",
    "InvalidProducerEpoch",
    "UnknownProducerId",
    "InvalidRequiredAcks",
    "MessageTooLarge",
    "KafkaStorageError",
    "NotEnoughReplicas",
    "kafka_error",
]


class BrokerError(Exception):
    """Root of every error the broker raises on purpose."""


class ConfigError(BrokerError, ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


# -- Wire errors: the connection that sent them is closed (one log line). --------


class ProtocolError(BrokerError):
    """The peer broke the framing or request encoding; its connection is closed."""


class FrameTooLarge(ProtocolError):
    """A frame announced more bytes than the broker accepts for one request."""


class TruncatedFrame(ProtocolError):
    """The connection ended in the middle of a frame."""


class MalformedRequest(ProtocolError):
    """The frame is complete but its header or body does not decode."""


class UnsupportedApi(ProtocolError):
    """The request's API key is not one this broker serves."""


class UnsupportedVersion(ProtocolError):
    """The API is known but this version of it cannot be decoded."""


# -- Kafka errors: reported to the client inside a response. ---------------------


class KafkaError(BrokerError):
    """An error that travels to the client as a Kafka error code."""

    code: ClassVar[int] = -1
    retriable: ClassVar[bool] = False


class UnknownTopicOrPartition(KafkaError):
    code = 3
    retriable = True


class OffsetOutOfRange(KafkaError):
    code = 1


class CorruptMessage(KafkaError):
    code = 2
    retriable = True


class MessageTooLarge(KafkaError):
    code = 10


class InvalidTopic(KafkaError):
    code = 17


class NotEnoughReplicas(KafkaError):
    code = 19
    retriable = True


class InvalidRequiredAcks(KafkaError):
    code = 21


class TopicAlreadyExists(KafkaError):
    code = 36


class InvalidPartitions(KafkaError):
    code = 37


class InvalidReplicationFactor(KafkaError):
    code = 38


class InvalidReplicaAssignment(KafkaError):
    code = 39


class InvalidConfig(KafkaError):
    code = 40


class InvalidRequest(KafkaError):
    code = 42


class OutOfOrderSequence(KafkaError):
    code = 45


class DuplicateSequence(KafkaError):
    code = 46


class InvalidProducerEpoch(KafkaError):
    code = 47


class KafkaStorageError(KafkaError):
    code = 56
    retriable = True


class UnknownProducerId(KafkaError):
    code = 59


class InvalidRecord(KafkaError):
    code = 87


_BY_CODE: dict[int, type[KafkaError]] = {
    cls.code: cls
    for cls in (
        OffsetOutOfRange,
        CorruptMessage,
        UnknownTopicOrPartition,
        MessageTooLarge,
        InvalidTopic,
        NotEnoughReplicas,
        InvalidRequiredAcks,
        TopicAlreadyExists,
        InvalidPartitions,
        InvalidReplicationFactor,
        InvalidReplicaAssignment,
        InvalidConfig,
        InvalidRequest,
        OutOfOrderSequence,
        DuplicateSequence,
        InvalidProducerEpoch,
        KafkaStorageError,
        UnknownProducerId,
        InvalidRecord,
    )
}


def kafka_error(code: int) -> type[KafkaError]:
    """The error class for a Kafka error code; ``KeyError`` if the broker never sends it."""
    return _BY_CODE[code]
