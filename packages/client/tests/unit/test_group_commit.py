"""Commit outcomes (definite / unknown) through the group driver, over a scripted
in-memory coordinator: no sockets, no sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from rift_client import connection, errors, protocol
from rift_client._group_driver import GroupDriver
from rift_client.group import Membership, State
from rift_client.protocol import CLIENT_VERSIONS, Api
from rift_client.types import BrokerInfo, TopicPartition

TP = TopicPartition(topic="t", partition=0)

Script = list[Callable[[Any], Any]]
CURRENT: list[FakeConnection] = []  # what the patched Connection.open hands out


class FakeConnection:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.sent: list[Any] = []

    closed = False

    async def close(self) -> None:
        return None

    def version(self, api: Api) -> int:
        return CLIENT_VERSIONS[api][1]

    async def send(self, body: Any, *, time_limit: float) -> Any:
        self.sent.append(body)
        return self.script.pop(0)(body)


class FakeCluster:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.brokers = {1: BrokerInfo(node=1, host="127.0.0.1", port=1)}
        self.request_timeout = 1.0
        self.client_id = "test"

    async def any_connection(self) -> FakeConnection:
        return self.conn

    async def connection(self, node: int) -> FakeConnection:
        return self.conn

    async def refresh(self, topics: Any = None) -> None:
        return None


def coordinator(body: Any) -> Any:
    cls = protocol.response_type(Api.FIND_COORDINATOR, int(body.__version__))
    return cls(
        throttle_time=protocol.duration(0),
        error_code=0,
        error_message=None,
        node_id=1,
        host="127.0.0.1",
        port=1,
    )


def commit_answer(code: int) -> Callable[[Any], Any]:
    def answer(body: Any) -> Any:
        version = int(body.__version__)
        mod = protocol._schema(Api.OFFSET_COMMIT, version, "response")
        return mod.OffsetCommitResponse(
            throttle_time=protocol.duration(0),
            topics=(
                mod.OffsetCommitResponseTopic(
                    name="t",
                    partitions=(
                        mod.OffsetCommitResponsePartition(partition_index=0, error_code=code),
                    ),
                ),
            ),
        )

    return answer


def raises(exc: BaseException) -> Callable[[Any], Any]:
    def answer(body: Any) -> Any:
        raise exc

    return answer


def driver(
    script: Script, *, stable: bool = True, timeout: float = 1.0, backoff: float = 0.0
) -> GroupDriver:
    conn = FakeConnection(script)
    CURRENT[:] = [conn]
    membership = Membership("g", session_timeout=10, heartbeat_interval=1, retry_backoff=0)
    if stable:
        membership.topics = frozenset({"t"})
        membership.state = State.STABLE
        membership.member_id, membership.generation = "m1", 4
    return GroupDriver(
        FakeCluster(conn),  # type: ignore[arg-type]
        "g",
        membership=membership,
        request_timeout=timeout,
        backoff=backoff,
    )


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver opens its own coordinator connection: hand it the fake instead."""

    async def open_fake(host: str, port: int, **kw: Any) -> FakeConnection:
        return CURRENT[0]

    monkeypatch.setattr(connection.Connection, "open", open_fake)


def run(d: GroupDriver, offsets: dict[TopicPartition, tuple[int, int]]) -> None:
    asyncio.run(d.commit(offsets))


def test_commit_ok_carries_generation_and_member() -> None:
    d = driver([coordinator, commit_answer(0)])
    run(d, {TP: (12, 3)})
    conn = d.cluster.conn  # type: ignore[attr-defined]
    body = conn.sent[-1]
    assert int(body.generation_id_or_member_epoch) == 4
    assert body.member_id == "m1"
    assert int(body.topics[0].partitions[0].committed_offset) == 12


@pytest.mark.parametrize("code", [22, 25, 27])  # ILLEGAL_GENERATION, UNKNOWN_MEMBER, REBALANCE
def test_generation_rejections_are_definite_and_rejoin(code: int) -> None:
    d = driver([coordinator, commit_answer(code)])
    with pytest.raises(errors.KafkaError) as caught:
        run(d, {TP: (1, -1)})
    assert caught.value.code == code
    assert caught.value.definite
    assert d.membership is not None
    assert d.membership.state is State.JOINING


def test_a_lost_answer_is_unknown() -> None:
    # the first backoff already passes the deadline: one attempt, then the verdict
    d = driver([coordinator, raises(errors.ClientTimeout("no answer"))], backoff=1.0)
    with pytest.raises(errors.ClientTimeout) as caught:
        run(d, {TP: (1, -1)})
    assert not caught.value.definite


def test_unknown_then_rejected_stays_unknown() -> None:
    d = driver(
        [coordinator, raises(errors.ConnectionLost("dropped")), coordinator, commit_answer(22)]
    )
    with pytest.raises(errors.KafkaError) as caught:
        run(d, {TP: (1, -1)})
    assert caught.value.code == 22
    assert not caught.value.definite  # the first attempt may have been applied


def test_not_coordinator_is_retried_after_finding_it_again() -> None:
    d = driver([coordinator, commit_answer(16), coordinator, commit_answer(0)])
    run(d, {TP: (1, -1)})
    conn = d.cluster.conn  # type: ignore[attr-defined]
    assert [type(b).__name__ for b in conn.sent] == [
        "FindCoordinatorRequest",
        "OffsetCommitRequest",
        "FindCoordinatorRequest",
        "OffsetCommitRequest",
    ]


def test_commit_while_rebalancing_is_refused_before_sending() -> None:
    d = driver([], stable=False)
    assert d.membership is not None
    d.membership.topics = frozenset({"t"})
    d.membership.state = State.JOINING
    with pytest.raises(errors.KafkaError) as caught:
        run(d, {TP: (1, -1)})
    assert caught.value.code == 27
    assert caught.value.definite


def test_manual_assignment_commits_outside_generations() -> None:
    d = driver([coordinator, commit_answer(0)], stable=False)
    run(d, {TP: (3, -1)})
    body = d.cluster.conn.sent[-1]  # type: ignore[attr-defined]
    assert int(body.generation_id_or_member_epoch) == -1
    assert body.member_id == ""


def test_negative_offsets_are_rejected() -> None:
    with pytest.raises(errors.InvalidArgument):
        run(driver([]), {TP: (-1, -1)})


def test_committed_maps_minus_one_to_none() -> None:
    def answer(body: Any) -> Any:
        version = int(body.__version__)
        mod = protocol._schema(Api.OFFSET_FETCH, version, "response")
        return mod.OffsetFetchResponse(
            throttle_time=protocol.duration(0),
            error_code=0,
            topics=(
                mod.OffsetFetchResponseTopic(
                    name="t",
                    partitions=(
                        mod.OffsetFetchResponsePartition(
                            partition_index=0, committed_offset=7, metadata="", error_code=0
                        ),
                        mod.OffsetFetchResponsePartition(
                            partition_index=1, committed_offset=-1, metadata="", error_code=0
                        ),
                    ),
                ),
            ),
        )

    d = driver([coordinator, answer])
    other = TopicPartition(topic="t", partition=1)
    assert asyncio.run(d.committed([TP, other])) == {TP: 7, other: None}


def test_the_commit_of_a_revocation_uses_the_ending_generation() -> None:
    d = driver([coordinator, commit_answer(0)])
    assert d.membership is not None
    d.membership.state = State.JOINING  # the heartbeat just said REBALANCE_IN_PROGRESS
    asyncio.run(d.commit({TP: (5, -1)}, revoking=True))
    body = d.cluster.conn.sent[-1]  # type: ignore[attr-defined]
    assert int(body.generation_id_or_member_epoch) == 4


def test_consumer_rejects_auto_commit_without_a_group() -> None:
    from rift_client import Consumer

    with pytest.raises(errors.InvalidArgument):
        Consumer("127.0.0.1:1", enable_auto_commit=True)
    with pytest.raises(errors.InvalidArgument):
        Consumer("127.0.0.1:1", group_id="g", heartbeat_interval_ms=5000, session_timeout_ms=1000)
