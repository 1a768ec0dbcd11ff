"""One client connection: frames in, requests handled concurrently, responses out in order.

Theory of operation
-------------------
The *reader* moves socket bytes into the sans-IO :class:`FrameDecoder`. Before it
lets a request in, it reserves the request's size in the connection's and the
broker's :class:`ByteBudget`; while either is exhausted it stops reading, so TCP
pushes back on the client. Each decoded request becomes a handler task — started in
arrival order, so their synchronous first steps (the appends) run in that order —
and is queued for the *writer*, which awaits the tasks strictly in queue order,
writes each response (none for acks=0), and only then releases the reservation.

Anything the reader cannot decode (garbage, an oversized or truncated frame, an
unknown API or version) closes the connection with one log line; requests already
handed to handlers finish, nothing more is read. :meth:`Connection.stop_reading` is
the graceful stop: no new requests, but every accepted one is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from rift_broker.errors import ProtocolError
from rift_broker.protocol import FrameDecoder, Request, decode_request, encode_response
from rift_broker.server.budget import ByteBudget
from rift_broker.server.context import CLOSE_CONNECTION, BrokerContext
from rift_broker.server.handlers import Handler

__all__ = ["Connection"]

_READ_CHUNK = 256 * 1024
# Every request is charged at least this much, which bounds the number of queued
# handler tasks a client can cause with tiny requests.
_MIN_CHARGE = 1024

_Item = tuple["asyncio.Task[Any]", Request, int, int]


class Connection:
    def __init__(
        self,
        ctx: BrokerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        handlers: Mapping[int, Handler],
        broker_budget: ByteBudget,
    ) -> None:
        self._ctx = ctx
        self._reader = reader
        self._writer = writer
        self._handlers = handlers
        self._budget = ByteBudget(ctx.config.max_inflight_bytes_per_connection)
        self._broker_budget = broker_budget
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._read_task: asyncio.Task[None] | None = None
        self._stop_requested = False
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def stop_reading(self) -> None:
        self._stop_requested = True
        if self._read_task is not None:
            self._read_task.cancel()

    async def run(self) -> None:
        writer_task = asyncio.create_task(self._write_loop(), name=f"rift-write {self.peer}")
        self._read_task = asyncio.create_task(self._read_loop(), name=f"rift-read {self.peer}")
        try:
            try:
                await self._read_task
            except asyncio.CancelledError:
                if not self._stop_requested:
                    raise  # run() itself was cancelled: give up on in-flight requests
            except ProtocolError as e:
                self._ctx.log.warning("closing connection from %s: %s", self.peer, e)
            except (ConnectionError, OSError) as e:
                self._ctx.log.debug("connection from %s failed: %s", self.peer, e)
            await self._queue.put(None)
            await writer_task
        finally:
            writer_task.cancel()
            self._cancel_queued()
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await self._writer.wait_closed()

    async def _reserve(self, size: int) -> tuple[int, int]:
        own = await self._budget.acquire(max(size, _MIN_CHARGE))
        try:
            shared = await self._broker_budget.acquire(max(size, _MIN_CHARGE))
        except BaseException:
            self._budget.release(own)
            raise
        return own, shared

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(max_frame_bytes=self._ctx.config.max_request_bytes)
        reserved: tuple[int, int] | None = None
        try:
            while True:
                frame = decoder.next_frame()
                if frame is None:
                    if reserved is None and decoder.pending_frame_bytes:
                        # Reserve before reading the body: a large request waits here.
                        reserved = await self._reserve(decoder.pending_frame_bytes)
                    data = await self._reader.read(_READ_CHUNK)
                    if not data:
                        decoder.close()
                        return
                    decoder.feed(data)
                    continue
                if reserved is None:
                    reserved = await self._reserve(len(frame))
                request = decode_request(frame, table=self._ctx.table)
                handler = self._handlers[request.header.api_key]
                task = asyncio.create_task(handler(self._ctx, request))
                self._queue.put_nowait((task, request, *reserved))
                reserved = None
        finally:
            if reserved is not None:
                self._release(*reserved)

    def _release(self, own: int, shared: int) -> None:
        self._budget.release(own)
        self._broker_budget.release(shared)

    async def _write_loop(self) -> None:
        while (item := await self._queue.get()) is not None:
            task, request, own, shared = item
            try:
                try:
                    response = await task
                except Exception:
                    self._ctx.log.exception(
                        "handler of API %d failed; closing connection from %s",
                        request.header.api_key,
                        self.peer,
                    )
                    self.stop_reading()
                    return
                if response is CLOSE_CONNECTION:
                    self._ctx.log.info(
                        "closing connection from %s after a failed acks=0 produce", self.peer
                    )
                    self.stop_reading()
                    return
                if response is not None:
                    self._writer.write(encode_response(request.header.correlation_id, response))
                    await self._writer.drain()
            except (ConnectionError, OSError) as e:
                self._ctx.log.debug("writing to %s failed: %s", self.peer, e)
                self.stop_reading()
                return
            finally:
                self._release(own, shared)

    def _cancel_queued(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                task, _, own, shared = item
                task.cancel()
                self._release(own, shared)
