"""Outcomes, and the retry policy that decides them (sans-IO: time is an argument).

Theory of operation. Every call reports one of three outcomes, as the testing
toolkit records them:

* **ok** - it happened: the broker acknowledged the write (acks=1 or all).
* **fail** (``definite=True``) - it certainly did not happen: every attempt was
  either never written to a socket, or answered by the broker with an error that
  Kafka raises *before* appending (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
  UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_ENOUGH_REPLICAS,
  MESSAGE_TOO_LARGE, CORRUPT_MESSAGE, INVALID_RECORD, OUT_OF_ORDER_SEQUENCE_NUMBER,
  INVALID_PRODUCER_EPOCH, TOPIC_ALREADY_EXISTS, ...).
* **info** (``definite=False``) - unknown: some attempt may have taken effect. A
  client-side timeout, a connection lost after the request was written, and the
  codes Kafka may return after the local append (REQUEST_TIMED_OUT,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND, NETWORK_EXCEPTION, KAFKA_STORAGE_ERROR,
  UNKNOWN_SERVER_ERROR, and any code outside our table). acks=0 is always unknown.

The rule for retries: once one attempt's outcome is unknown, the final failure is
unknown too, even if a later attempt is rejected definitely - the earlier one may
still be in the log. (An idempotent producer's retry of an appended batch is
deduplicated by the broker and answered with its original offset, so it ends ok.)

Which error is definite is a class attribute of the error (:mod:`rift_client.errors`);
:class:`RetryPolicy` combines it with the attempt history and the deadline.
Reads have no side effects; the consumer raises read errors with ``definite=True``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from rift_client.errors import ClientError

__all__ = ["DeliveryReport", "Action", "Decision", "RetryPolicy", "Status", "status_of"]

Status = Literal["ok", "fail", "info"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReport:
    """The outcome of one produced record.

    ``ok`` and ``definite`` (and ``status``) are the verdict over *all* attempts;
    ``error`` is the last attempt's error, whose own ``definite`` describes only
    that attempt. With acks=0 every report is ``info`` (nobody answers)."""

    topic: str
    partition: int
    ok: bool
    definite: bool
    offset: int = -1
    timestamp_ms: int = -1
    error: ClientError | None = None

    @property
    def status(self) -> Status:
        """``ok`` / ``fail`` / ``info``, the toolkit's vocabulary."""
        if self.ok:
            return "ok"
        return "fail" if self.definite else "info"


def status_of(error: BaseException) -> Status:
    """The toolkit's verdict for a call that raised ``error``: ``fail`` only for a
    :class:`ClientError` that is definite; anything else (a timeout, a bug) is ``info``."""
    if isinstance(error, ClientError) and error.definite:
        return "fail"
    return "info"


class Action(enum.Enum):
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    action: Action
    definite: bool
    refresh_metadata: bool
    retry_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff from ``backoff`` to ``backoff_max`` (seconds), bounded by
    ``deadline`` seconds after the operation started (Kafka's delivery.timeout.ms)."""

    backoff: float = 0.1
    backoff_max: float = 1.0
    deadline: float = 120.0

    def __post_init__(self) -> None:
        if self.backoff < 0 or self.backoff_max < self.backoff or self.deadline <= 0:
            raise ValueError("need 0 <= backoff <= backoff_max and a positive deadline")

    def delay(self, attempts: int) -> float:
        """Backoff before attempt ``attempts + 1``."""
        return float(min(self.backoff_max, self.backoff * (2 ** max(0, attempts - 1))))

    def expired(self, *, started_at: float, now: float) -> bool:
        return now >= started_at + self.deadline

    def decide(
        self,
        error: ClientError,
        *,
        attempts: int,
        started_at: float,
        maybe_applied: bool,
        now: float,
    ) -> Decision:
        """What to do after attempt number ``attempts`` failed with ``error``.

        ``maybe_applied`` says an earlier attempt's outcome was unknown."""
        unknown = maybe_applied or not error.definite
        retry_at = now + self.delay(attempts)
        if error.retriable and retry_at < started_at + self.deadline:
            return Decision(
                action=Action.RETRY,
                definite=not unknown,
                refresh_metadata=error.invalid_metadata,
                retry_at=retry_at,
            )
        return Decision(
            action=Action.FAIL, definite=not unknown, refresh_metadata=error.invalid_metadata
        )
