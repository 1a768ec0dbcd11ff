"""The cluster wire codec round-trips every Raft message and rejects strangers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rift_broker.cluster.messages import cluster_codec
from rift_broker.cluster.wire import FRAME, WireError
from rift_broker.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    PreVoteRequest,
    PreVoteResponse,
    Snapshot,
    VoteRequest,
    VoteResponse,
)

codec = cluster_codec()  # every type cluster nodes send each other


def roundtrip(message: object) -> object:
    frame = codec.encode(message)
    (length,) = FRAME.unpack_from(frame)
    assert length == len(frame) - FRAME.size
    return codec.decode(frame[FRAME.size :])


entry = st.builds(
    Entry, term=st.integers(0, 2**40), index=st.integers(1, 2**40), command=st.binary(max_size=64)
)


@given(
    st.builds(
        AppendEntries,
        src=st.integers(0, 9),
        dst=st.integers(0, 9),
        term=st.integers(0, 2**31),
        prev_log_index=st.integers(0, 2**31),
        prev_log_term=st.integers(0, 2**31),
        entries=st.lists(entry, max_size=5).map(tuple),
        commit=st.integers(0, 2**31),
    )
)
def test_append_entries_round_trips(message: AppendEntries) -> None:
    assert roundtrip(message) == message


@given(st.binary(max_size=256), st.integers(0, 2**40), st.integers(0, 2**40))
def test_snapshot_round_trips(data: bytes, index: int, term: int) -> None:
    m = InstallSnapshot(src=1, dst=2, term=3, snapshot=Snapshot(index=index, term=term, data=data))
    assert roundtrip(m) == m


def test_votes_round_trip() -> None:
    for m in (
        PreVoteRequest(src=1, dst=2, term=4, last_log_index=9, last_log_term=3),
        PreVoteResponse(src=2, dst=1, term=4, granted=True),
        VoteRequest(src=1, dst=3, term=4, last_log_index=9, last_log_term=3),
        VoteResponse(src=3, dst=1, term=4, granted=False),
        AppendEntriesResponse(src=2, dst=1, term=4, success=True, match_index=9, hint=0),
        InstallSnapshotResponse(src=2, dst=1, term=4, match_index=9),
    ):
        assert roundtrip(m) == m


@dataclass(frozen=True)
class Stranger:
    x: int


def test_unregistered_types_are_refused_both_ways() -> None:
    with pytest.raises(TypeError, match="not a registered"):
        codec.encode(Stranger(x=1))
    with pytest.raises(WireError, match="unknown message type"):
        codec.decode(b'{"$t":"Stranger","x":1}')
    with pytest.raises(WireError, match="not JSON"):
        codec.decode(b"\xff\x00garbage")
    with pytest.raises(WireError, match="bad VoteResponse"):
        codec.decode(b'{"$t":"VoteResponse","src":1}')
