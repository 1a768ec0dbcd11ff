"""One TCP connection to one broker: pipelined requests, answered strictly in order.

Requests are written in the order :meth:`Connection.send` is called and may be
pipelined; the broker answers them in the same order, so each response must carry
the correlation id of the oldest outstanding request. Anything else is a protocol
error and closes the connection. A request that expects no response (Produce with
acks=0) is written and forgotten.

Failure outcomes (see :mod:`rift_client.outcome`): a request that could not be
written raises ``ConnectionLost(definite=True)``; once written, a lost connection
or a timeout raises an error with ``definite=False``.

On connect the connection asks ApiVersions (v0 answer format is a prefix of every
version, so an UNSUPPORTED_VERSION reply is still readable) and keeps the versions
:func:`rift_client.protocol.negotiate` chose in :attr:`versions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsV0

from rift_client import protocol
from rift_client.errors import ClientTimeout, ConnectionLost, ProtocolError, for_code
from rift_client.protocol import Api

__all__ = ["Connection"]


@dataclass(slots=True)
class _Pending:
    correlation_id: int
    response_cls: type
    future: asyncio.Future[Any]


class Connection:
    """Use :meth:`open`; then :meth:`send` from any number of tasks."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        port: int,
        client_id: str = "rift",
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.versions: dict[Api, int] = {}
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: deque[_Pending] = deque()
        self._closed: BaseException | None = None
        self._read_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def open(
        cls, host: str, port: int, *, client_id: str = "rift", time_limit: float = 10.0
    ) -> Connection:
        try:
            async with asyncio.timeout(time_limit):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {host}:{port}: {exc}", definite=True) from exc
        conn = cls(reader, writer, host=host, port=port, client_id=client_id)
        try:
            await conn._negotiate(time_limit)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _negotiate(self, time_limit: float) -> None:
        top = protocol.CLIENT_VERSIONS[Api.API_VERSIONS][1]
        body = protocol.request(Api.API_VERSIONS, top)
        response = await self._send_raw(body, ApiVersionsV0, time_limit=time_limit)
        if response.error_code not in (0, 35):
            raise for_code(response.error_code, "ApiVersions failed")
        broker = {
            int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys
        }
        self.versions = protocol.negotiate(broker)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def version(self, api: Api) -> int:
        return protocol.require(self.versions, api)

    async def send(self, body: Any, *, time_limit: float, expect_response: bool = True) -> Any:
        """Send ``body`` (a kio request) and return the decoded response."""
        api = Api(body.__api_key__)
        response_cls = protocol.response_type(api, int(body.__version__))
        return await self._send_raw(
            body, response_cls, time_limit=time_limit, expect_response=expect_response
        )

    async def _send_raw(
        self, body: Any, response_cls: type, *, time_limit: float, expect_response: bool = True
    ) -> Any:
        if self._closed is not None:
            raise ConnectionLost(f"connection to {self} is closed", definite=True)
        cid = next(self._ids) & 0x7FFFFFFF
        frame = protocol.encode_request(body, correlation_id=cid, client_id=self.client_id)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if expect_response:
            self._pending.append(_Pending(cid, response_cls, future))
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            # Part of the frame may have reached the broker: unknown from here on.
            self._fail(ConnectionLost(f"write to {self} failed: {exc}"))
            raise ConnectionLost(f"write to {self} failed: {exc}") from exc
        if not expect_response:
            return None
        try:
            async with asyncio.timeout(time_limit):
                return await asyncio.shield(future)
        except TimeoutError:
            # Like the Java client: a request that timed out poisons the connection
            # (the broker may be paused or partitioned away). Close it so the next
            # attempt reconnects, possibly to a new leader.
            message = f"no response from {self} within {time_limit:.1f}s"
            self._fail(ConnectionLost(message))
            raise ClientTimeout(message) from None

    async def _read_loop(self) -> None:
        try:
            while True:
                prefix = await self._reader.readexactly(4)
                frame = await self._reader.readexactly(protocol.read_size(prefix))
                if not self._pending:
                    raise ProtocolError(f"unsolicited response from {self}")
                # Left queued until decoded: a response that does not decode fails
                # its request with the ProtocolError (in _fail), not a later timeout.
                pending = self._pending[0]
                cid, body = protocol.decode_response(frame, pending.response_cls)
                if cid != pending.correlation_id:
                    raise ProtocolError(
                        f"{self} answered correlation id {cid}, expected {pending.correlation_id}"
                    )
                self._pending.popleft()
                if not pending.future.done():
                    pending.future.set_result(body)
        except (asyncio.IncompleteReadError, OSError) as exc:
            self._fail(ConnectionLost(f"connection to {self} lost: {exc!r}"))
        except ProtocolError as exc:
            self._fail(exc)
        except asyncio.CancelledError:
            self._fail(ConnectionLost(f"connection to {self} closed"))
            raise

    def _fail(self, exc: BaseException) -> None:
        if self._closed is None:
            self._closed = exc
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(exc)
                # Callers that timed out already will never retrieve it.
                pending.future.exception()
        self._writer.close()

    async def close(self) -> None:
        self._fail(ConnectionLost(f"connection to {self} closed"))
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._read_task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"
