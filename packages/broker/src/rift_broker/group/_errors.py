"""Kafka error codes the group coordinator answers with, and how append errors map to them.

``rift_broker.errors`` has no group-coordinator codes (yet), so they live here as an
``IntEnum``: its members *are* the wire codes (checked against ``kio``'s ErrorCode), and
a reply's ``error`` field is a plain ``int`` the driver writes as is.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["GroupErrorCode", "commit_error_for_append", "store_error_for_append"]


class GroupErrorCode(IntEnum):
    """The Kafka error codes of the classic group protocol (values are the wire codes)."""

    UNKNOWN_SERVER_ERROR = -1
    NONE = 0
    UNKNOWN_TOPIC_OR_PARTITION = 3
    INVALID_FETCH_SIZE = 4
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    MESSAGE_TOO_LARGE = 10
    OFFSET_METADATA_TOO_LARGE = 12
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    KAFKA_STORAGE_ERROR = 56
    MEMBER_ID_REQUIRED = 79


_E = GroupErrorCode

# Kafka's GroupMetadataManager translates the error of the __consumer_offsets append
# into one a group client knows how to handle: "try another coordinator" rather than
# "the partition is gone".
_UNAVAILABLE = {
    _E.UNKNOWN_TOPIC_OR_PARTITION,
    _E.NOT_ENOUGH_REPLICAS,
    _E.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    _E.REQUEST_TIMED_OUT,
}
_NOT_COORDINATOR = {_E.NOT_LEADER_OR_FOLLOWER, _E.KAFKA_STORAGE_ERROR}
_TOO_LARGE = {_E.MESSAGE_TOO_LARGE, _E.RECORD_LIST_TOO_LARGE, _E.INVALID_FETCH_SIZE}


def _translate(error: int, *, too_large: GroupErrorCode) -> int:
    if error == _E.NONE:
        return _E.NONE
    if error in _UNAVAILABLE:
        return _E.COORDINATOR_NOT_AVAILABLE
    if error in _NOT_COORDINATOR:
        return _E.NOT_COORDINATOR
    if error in _TOO_LARGE:
        return too_large
    return error


def commit_error_for_append(error: int) -> int:
    """The OffsetCommit partition error for an append that failed with ``error``."""
    return _translate(error, too_large=_E.INVALID_COMMIT_OFFSET_SIZE)


def store_error_for_append(error: int) -> int:
    """The SyncGroup error for a group-metadata append that failed with ``error``."""
    return _translate(error, too_large=_E.UNKNOWN_SERVER_ERROR)
