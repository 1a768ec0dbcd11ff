"""Errors of the partition log: one family under :class:`~rift_broker.errors.BrokerError`.

``LogError`` is the root. The server maps them to Kafka error codes at its boundary
(``CorruptBatchError`` -> CORRUPT_MESSAGE, ``BatchTooLargeError`` -> MESSAGE_TOO_LARGE,
``OffsetOutOfRangeError`` -> OFFSET_OUT_OF_RANGE, ``LogStoppedError`` ->
KAFKA_STORAGE_ERROR).
"""

from __future__ import annotations

from rift_broker.errors import BrokerError

__all__ = [
    "LogError",
    "CorruptBatchError",
    "BatchTooLargeError",
    "InvalidEpochError",
    "UnexpectedOffsetError",
    "OffsetOutOfRangeError",
    "LogStoppedError",
]


class LogError(BrokerError):
    """Root of every error the partition log raises."""


class CorruptBatchError(LogError, ValueError):
    """A record batch failed validation (header, magic, length or CRC-32C).

    ``reason`` says what is wrong. When the batch is on disk (found by recovery in a
    closed segment), ``path`` and ``position`` say where; for a batch handed to
    ``append`` they are ``None`` and the byte position inside the given buffer.
    """

    def __init__(self, reason: str, *, path: str | None = None, position: int | None = None):
        where = ""
        if path is not None:
            where = f" in {path}"
        if position is not None:
            where += f" at byte {position}"
        super().__init__(f"corrupt record batch{where}: {reason}")
        self.reason = reason
        self.path = path
        self.position = position


class BatchTooLargeError(LogError, ValueError):
    """An append is larger than ``LogConfig.max_batch_bytes``."""


class InvalidEpochError(LogError, ValueError):
    """A leader epoch went backwards (a stale leader tried to append)."""


class UnexpectedOffsetError(LogError, ValueError):
    """A replicated batch does not start at the follower's log end offset."""


class OffsetOutOfRangeError(LogError, IndexError):
    """An offset outside ``[log_start_offset, log_end_offset]`` was asked for."""


class LogStoppedError(LogError):
    """The log refuses every call: an fsync failed (never retried) or it was closed."""
