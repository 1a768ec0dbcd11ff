"""The connection's read loop against a fake broker that answers with garbage."""

from __future__ import annotations

import asyncio
import struct

import pytest

from rift_client.connection import Connection
from rift_client.errors import ProtocolError


async def _garbage_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the first request with its correlation id and a body that ends too soon."""
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    request = await reader.readexactly(size)
    correlation_id = request[4:8]  # after api key (int16) and api version (int16)
    body = correlation_id + b"\x00"
    writer.write(struct.pack(">i", len(body)) + body)
    await writer.drain()
    await reader.read()  # until the client hangs up
    writer.close()


def test_a_response_that_does_not_decode_fails_its_request_at_once() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(_garbage_broker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            # The ProtocolError itself, not a ClientTimeout after the time limit.
            with pytest.raises(ProtocolError):
                await Connection.open("127.0.0.1", port, time_limit=30.0)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
