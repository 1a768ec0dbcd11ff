"""Three Raft drivers on loopback with real files: elect, replicate, fail over, catch up."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

import pytest

from rift_broker.cluster import FileRaftStorage
from rift_broker.cluster.raft_driver import RaftDriver
from rift_broker.cluster.transport import PeerTransport
from rift_broker.cluster.wire import MessageCodec
from rift_broker.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    NotLeader,
    PreVoteRequest,
    PreVoteResponse,
    RaftConfig,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from rift_broker.storage import OsStorage

pytestmark = pytest.mark.integration

CODEC = MessageCodec(
    [
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
    ]
)
CONFIG = RaftConfig(election_timeout_ms=300, heartbeat_interval_ms=50, snapshot_threshold=20)


class ListMachine:
    def __init__(self) -> None:
        self.commands: list[bytes] = []

    def apply(self, entry: Entry) -> None:
        self.commands.append(entry.command)

    def snapshot(self) -> bytes:
        return b"\n".join(self.commands)

    def restore(self, data: bytes) -> None:
        self.commands = data.split(b"\n") if data else []


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Node:
    def __init__(self, node_id: int, peers: dict[int, tuple[str, int]], directory: str) -> None:
        self.node_id = node_id
        self.peers = peers
        self.directory = directory
        self.machine = ListMachine()
        self.driver: RaftDriver | None = None
        self.transport: PeerTransport | None = None

    async def start(self) -> None:
        self.machine = ListMachine()
        storage = FileRaftStorage(storage=OsStorage(), directory=self.directory)
        self.transport = PeerTransport(
            node_id=self.node_id,
            peers=self.peers,
            codec=CODEC,
            on_message=self._deliver,
        )
        self.driver = RaftDriver(
            node_id=self.node_id,
            voters=tuple(self.peers),
            storage=storage,
            sender=self.transport,
            state_machine=self.machine,
            config=CONFIG,
            rng=random.Random(self.node_id),
        )
        await self.transport.start(host="127.0.0.1", port=self.peers[self.node_id][1])
        self.driver.start()

    def _deliver(self, message: object) -> None:
        if self.driver is not None:
            self.driver.deliver(message)  # type: ignore[arg-type]

    async def stop(self) -> None:
        assert self.driver is not None
        assert self.transport is not None
        await self.driver.stop()
        await self.transport.close()
        self.driver = None


async def wait_for(cond: Callable[[], bool], *, within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def leader(nodes: list[Node]) -> Node | None:
    found = [n for n in nodes if n.driver is not None and n.driver.is_leader]
    return found[0] if len(found) == 1 else None


async def propose_until_ok(nodes: list[Node], command: bytes) -> None:
    for _ in range(100):
        node = leader(nodes)
        if node is not None and node.driver is not None:
            result = await asyncio.wait_for(node.driver.propose(command), timeout=5)
            if isinstance(result, int):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"could not commit {command!r}")


def test_elects_replicates_fails_over_and_catches_up(tmp_path) -> None:
    async def scenario() -> None:
        ports = free_ports(3)
        peers = {i + 1: ("127.0.0.1", ports[i]) for i in range(3)}
        nodes = [Node(i, peers, str(tmp_path / f"n{i}")) for i in peers]
        for n in nodes:
            await n.start()
        try:
            await wait_for(lambda: leader(nodes) is not None)
            for i in range(30):
                await propose_until_ok(nodes, f"a{i}".encode())
            expected = [f"a{i}".encode() for i in range(30)]
            await wait_for(lambda: all(n.machine.commands == expected for n in nodes))

            old = leader(nodes)
            assert old is not None
            await old.stop()
            await wait_for(lambda: leader(nodes) not in (None, old))
            for i in range(10):
                await propose_until_ok(nodes, f"b{i}".encode())
            expected += [f"b{i}".encode() for i in range(10)]

            await old.start()  # restarts from its files: snapshot + log
            await wait_for(lambda: all(n.machine.commands == expected for n in nodes))
            terms = {n.driver.node.term for n in nodes if n.driver is not None}
            assert len(terms) == 1
        finally:
            for n in nodes:
                if n.driver is not None:
                    await n.stop()

    asyncio.run(scenario())


def test_propose_on_a_follower_is_refused(tmp_path) -> None:
    async def scenario() -> None:
        ports = free_ports(3)
        peers = {i + 1: ("127.0.0.1", ports[i]) for i in range(3)}
        nodes = [Node(i, peers, str(tmp_path / f"n{i}")) for i in peers]
        for n in nodes:
            await n.start()
        try:
            await wait_for(lambda: leader(nodes) is not None)
            follower = next(n for n in nodes if n is not leader(nodes))
            assert follower.driver is not None
            result = await follower.driver.propose(b"x")
            assert isinstance(result, NotLeader)
        finally:
            for n in nodes:
                if n.driver is not None:
                    await n.stop()

    asyncio.run(scenario())
