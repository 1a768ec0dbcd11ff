"""The client's errors: one root, shallow families, behaviour as class attributes.

Every error carries two facts the caller needs to act on:

* ``retriable`` (class attribute): retrying the same request may succeed.
* ``definite`` (class default, may be overridden per instance): for a *write*
  (produce, create topic), ``True`` means the write certainly did not happen;
  ``False`` means it may have happened (timeouts, dropped connections, errors
  that Kafka raises after the append such as NOT_ENOUGH_REPLICAS_AFTER_APPEND).
  Reads have no side effects, so the consumer raises its errors with
  ``definite=True``.

``invalid_metadata`` says the client's view of leadership is stale: refresh
metadata before retrying (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, ...).

Kafka error codes map to classes in :data:`ERRORS_BY_CODE`; :func:`for_code`
builds the right instance for a response's code (an unknown code becomes a plain
:class:`KafkaError` whose retriability comes from kio's table).
"""

from __future__ import annotations

from typing import ClassVar

from kio.schema.errors import ErrorCode

__all__ = [
    "ClientError",
    "InvalidArgument",
    "ClientClosed",
    "ClientTimeout",
    "ConnectionLost",
    "BrokerUnreachable",
    "ProtocolError",
    "UnsupportedVersion",
    "KafkaError",
    "ERRORS_BY_CODE",
    "for_code",
]


class ClientError(Exception):
    """Root of every error this package raises."""

    retriable: ClassVar[bool] = False
    definite: bool = True
    invalid_metadata: ClassVar[bool] = False

    def __init__(self, message: str = "", *, definite: bool | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if definite is not None:
            self.definite = definite


class InvalidArgument(ClientError, ValueError):
    """A bad argument, rejected before anything was sent."""


class ClientClosed(ClientError):
    """The client was closed; nothing further was sent."""


class ClientTimeout(ClientError, TimeoutError):
    """No answer in time: the request may or may not have taken effect."""

    retriable = True
    definite = False


class ConnectionLost(ClientError, ConnectionError):
    """The connection dropped. ``definite`` is True only if the request was never written."""

    retriable = True
    definite = False
    invalid_metadata = True


class BrokerUnreachable(ClientError, ConnectionError):
    """Could not connect to any broker; nothing was sent."""

    retriable = True
    invalid_metadata = True


class ProtocolError(ClientError):
    """The broker sent something we could not decode; the connection is closed."""

    definite = False


class UnsupportedVersion(ClientError):
    """The broker supports no version of an API that this client speaks."""


class KafkaError(ClientError):
    """A Kafka error code in a response. ``code`` is the wire value."""

    code: ClassVar[int] = -1

    def __str__(self) -> str:
        return f"[{self.code}] {super().__str__()}"


def _kafka(
    name: str, code: int, *, retriable: bool, definite: bool = True, invalid_metadata: bool = False
) -> type[KafkaError]:
    attrs = {
        "code": code,
        "retriable": retriable,
        "definite": definite,
        "invalid_metadata": invalid_metadata,
        "__doc__": f"Kafka error {code}.",
        "__module__": __name__,
    }
    return type(name, (KafkaError,), attrs)


# The one table. `definite=False` marks codes where Kafka may already have appended
# the batch (or the outcome is otherwise not known): a timeout on the broker side,
# an error raised after the local append, a generic server error.
UnknownServerError = _kafka("UnknownServerError", -1, retriable=False, definite=False)
OffsetOutOfRange = _kafka("OffsetOutOfRange", 1, retriable=False)
CorruptMessage = _kafka("CorruptMessage", 2, retriable=True)
UnknownTopicOrPartition = _kafka(
    "UnknownTopicOrPartition", 3, retriable=True, invalid_metadata=True
)
LeaderNotAvailable = _kafka("LeaderNotAvailable", 5, retriable=True, invalid_metadata=True)
NotLeaderOrFollower = _kafka("NotLeaderOrFollower", 6, retriable=True, invalid_metadata=True)
RequestTimedOut = _kafka("RequestTimedOut", 7, retriable=True, definite=False)
BrokerNotAvailable = _kafka("BrokerNotAvailable", 8, retriable=True, invalid_metadata=True)
ReplicaNotAvailable = _kafka("ReplicaNotAvailable", 9, retriable=True, invalid_metadata=True)
MessageTooLarge = _kafka("MessageTooLarge", 10, retriable=False)
OffsetMetadataTooLarge = _kafka("OffsetMetadataTooLarge", 12, retriable=False)
NetworkException = _kafka(
    "NetworkException", 13, retriable=True, definite=False, invalid_metadata=True
)
CoordinatorLoadInProgress = _kafka("CoordinatorLoadInProgress", 14, retriable=True)
CoordinatorNotAvailable = _kafka("CoordinatorNotAvailable", 15, retriable=True)
NotCoordinator = _kafka("NotCoordinator", 16, retriable=True)
InvalidTopic = _kafka("InvalidTopic", 17, retriable=False)
RecordListTooLarge = _kafka("RecordListTooLarge", 18, retriable=False)
NotEnoughReplicas = _kafka("NotEnoughReplicas", 19, retriable=True)
NotEnoughReplicasAfterAppend = _kafka(
    "NotEnoughReplicasAfterAppend", 20, retriable=True, definite=False
)
InvalidRequiredAcks = _kafka("InvalidRequiredAcks", 21, retriable=False)
IllegalGeneration = _kafka("IllegalGeneration", 22, retriable=False)
InconsistentGroupProtocol = _kafka("InconsistentGroupProtocol", 23, retriable=False)
InvalidGroupId = _kafka("InvalidGroupId", 24, retriable=False)
UnknownMemberId = _kafka("UnknownMemberId", 25, retriable=False)
InvalidSessionTimeout = _kafka("InvalidSessionTimeout", 26, retriable=False)
RebalanceInProgress = _kafka("RebalanceInProgress", 27, retriable=False)
InvalidCommitOffsetSize = _kafka("InvalidCommitOffsetSize", 28, retriable=False)
TopicAuthorizationFailed = _kafka("TopicAuthorizationFailed", 29, retriable=False)
GroupAuthorizationFailed = _kafka("GroupAuthorizationFailed", 30, retriable=False)
InvalidTimestamp = _kafka("InvalidTimestamp", 32, retriable=False)
UnsupportedVersionCode = _kafka("UnsupportedVersionCode", 35, retriable=False)
TopicAlreadyExists = _kafka("TopicAlreadyExists", 36, retriable=False)
InvalidPartitions = _kafka("InvalidPartitions", 37, retriable=False)
InvalidReplicationFactor = _kafka("InvalidReplicationFactor", 38, retriable=False)
InvalidReplicaAssignment = _kafka("InvalidReplicaAssignment", 39, retriable=False)
InvalidConfig = _kafka("InvalidConfig", 40, retriable=False)
NotController = _kafka("NotController", 41, retriable=True, invalid_metadata=True)
InvalidRequest = _kafka("InvalidRequest", 42, retriable=False)
PolicyViolation = _kafka("PolicyViolation", 44, retriable=False)
OutOfOrderSequenceNumber = _kafka("OutOfOrderSequenceNumber", 45, retriable=False)
DuplicateSequenceNumber = _kafka("DuplicateSequenceNumber", 46, retriable=False)
InvalidProducerEpoch = _kafka("InvalidProducerEpoch", 47, retriable=False)
KafkaStorageError = _kafka(
    "KafkaStorageError", 56, retriable=True, definite=False, invalid_metadata=True
)
UnknownProducerId = _kafka("UnknownProducerId", 59, retriable=False)
FencedLeaderEpoch = _kafka("FencedLeaderEpoch", 74, retriable=True, invalid_metadata=True)
UnknownLeaderEpoch = _kafka("UnknownLeaderEpoch", 75, retriable=True, invalid_metadata=True)
UnsupportedCompressionType = _kafka("UnsupportedCompressionType", 76, retriable=False)
OffsetNotAvailable = _kafka("OffsetNotAvailable", 78, retriable=True, invalid_metadata=True)
MemberIdRequired = _kafka("MemberIdRequired", 79, retriable=False)
GroupMaxSizeReached = _kafka("GroupMaxSizeReached", 81, retriable=False)
InvalidRecord = _kafka("InvalidRecord", 87, retriable=False)
UnstableOffsetCommit = _kafka("UnstableOffsetCommit", 88, retriable=True)
ThrottlingQuotaExceeded = _kafka("ThrottlingQuotaExceeded", 89, retriable=True)
ProducerFenced = _kafka("ProducerFenced", 90, retriable=False)

ERRORS_BY_CODE: dict[int, type[KafkaError]] = {
    cls.code: cls
    for cls in (
        UnknownServerError,
        OffsetOutOfRange,
        CorruptMessage,
        UnknownTopicOrPartition,
        LeaderNotAvailable,
        NotLeaderOrFollower,
        RequestTimedOut,
        BrokerNotAvailable,
        ReplicaNotAvailable,
        MessageTooLarge,
        OffsetMetadataTooLarge,
        NetworkException,
        CoordinatorLoadInProgress,
        CoordinatorNotAvailable,
        NotCoordinator,
        InvalidTopic,
        RecordListTooLarge,
        NotEnoughReplicas,
        NotEnoughReplicasAfterAppend,
        InvalidRequiredAcks,
        IllegalGeneration,
        InconsistentGroupProtocol,
        InvalidGroupId,
        UnknownMemberId,
        InvalidSessionTimeout,
        RebalanceInProgress,
        InvalidCommitOffsetSize,
        TopicAuthorizationFailed,
        GroupAuthorizationFailed,
        InvalidTimestamp,
        UnsupportedVersionCode,
        TopicAlreadyExists,
        InvalidPartitions,
        InvalidReplicationFactor,
        InvalidReplicaAssignment,
        InvalidConfig,
        NotController,
        InvalidRequest,
        PolicyViolation,
        OutOfOrderSequenceNumber,
        DuplicateSequenceNumber,
        InvalidProducerEpoch,
        KafkaStorageError,
        UnknownProducerId,
        FencedLeaderEpoch,
        UnknownLeaderEpoch,
        UnsupportedCompressionType,
        OffsetNotAvailable,
        MemberIdRequired,
        GroupMaxSizeReached,
        InvalidRecord,
        UnstableOffsetCommit,
        ThrottlingQuotaExceeded,
        ProducerFenced,
    )
}


_UNLISTED: dict[int, type[KafkaError]] = {}


def for_code(code: int, message: str | None = None, *, definite: bool | None = None) -> KafkaError:
    """The exception for a non-zero Kafka error code."""
    cls = ERRORS_BY_CODE.get(code) or _UNLISTED.get(code)
    if cls is None:
        # Codes outside our table: trust kio's retriability, assume the worst for writes.
        try:
            known = ErrorCode(code)
            name, retriable = known.name.title().replace("_", ""), bool(known.retriable)
        except ValueError:
            name, retriable = f"KafkaError{code}", False
        cls = _UNLISTED[code] = _kafka(name, code, retriable=retriable, definite=False)
    return cls(message or _default_message(code), definite=definite)


def _default_message(code: int) -> str:
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"error code {code}"
