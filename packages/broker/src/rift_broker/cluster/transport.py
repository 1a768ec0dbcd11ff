"""Moves cluster-internal messages between nodes over TCP (asyncio driver piece).

Each node listens for its peers and keeps one outgoing connection per peer. A
message is a frame of :mod:`rift_broker.cluster.wire`; it is sent on the outgoing
connection to its destination and received on that peer's listener, so each
connection carries traffic one way only and needs no handshake (every message
names its sender).

Delivery is best effort, like the network it models: a message to a peer that is
down, or that does not fit the bounded per-peer queue, is dropped. The protocols
above (Raft, heartbeats) retry on their own timers; a transport that retried would
only deliver stale messages late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from rift_broker.cluster.wire import FRAME, MAX_FRAME, MessageCodec, WireError

log = logging.getLogger(__name__)

QUEUE_LIMIT = 4096
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 1.0


class _Peer:
    def __init__(self, node: int, host: str, port: int) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.queue: deque[bytes] = deque(maxlen=QUEUE_LIMIT)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0


class PeerTransport:
    """Best-effort delivery of registered messages to peers by node id."""

    def __init__(
        self,
        *,
        node_id: int,
        peers: dict[int, tuple[str, int]],
        codec: MessageCodec,
        on_message: Callable[[Any], None],
    ) -> None:
        self.node_id = node_id
        self._codec = codec
        self._on_message = on_message
        self._peers = {n: _Peer(n, h, p) for n, (h, p) in peers.items() if n != node_id}
        self._server: asyncio.Server | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self, *, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port)
        for peer in self._peers.values():
            peer.task = asyncio.create_task(self._sender(peer), name=f"peer-{peer.node}")

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def send(self, dst: int, message: Any) -> None:
        if dst == self.node_id:
            self._on_message(message)
            return
        peer = self._peers.get(dst)
        if peer is None:
            raise KeyError(f"no peer with node id {dst}")
        if len(peer.queue) == QUEUE_LIMIT:
            peer.dropped += 1  # the deque drops the oldest; count it
        peer.queue.append(self._codec.encode(message))
        peer.wake.set()

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = [p.task for p in self._peers.values() if p.task is not None]
        tasks.extend(self._readers)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _sender(self, peer: _Peer) -> None:
        delay = RECONNECT_MIN_S
        while not self._closing:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(peer.host, peer.port), timeout=2.0
                )
            except (OSError, TimeoutError):
                peer.queue.clear()  # nobody is listening: these are lost
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = RECONNECT_MIN_S
            try:
                while not self._closing:
                    if not peer.queue:
                        peer.wake.clear()
                        await peer.wake.wait()
                    while peer.queue:
                        writer.write(peer.queue.popleft())
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            while True:
                header = await reader.readexactly(FRAME.size)
                (length,) = FRAME.unpack(header)
                if length > MAX_FRAME:
                    raise WireError(f"frame of {length} bytes exceeds {MAX_FRAME}")
                body = await reader.readexactly(length)
                self._on_message(self._codec.decode(body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except WireError as exc:
            peer = writer.get_extra_info("peername")
            log.warning("closing cluster connection from %s: %s", peer, exc)
        finally:
            writer.close()
            if task is not None:
                self._readers.discard(task)
