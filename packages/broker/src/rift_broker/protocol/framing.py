"""Kafka framing: every request and response is a big-endian int32 size, then that many bytes.

:class:`FrameDecoder` is sans-IO, in the manner of h11: the driver hands it whatever
bytes the socket produced (:meth:`FrameDecoder.feed`) and takes out complete frames
(:meth:`FrameDecoder.next_frame`). It never buffers more than one frame plus the
bytes of the next size prefix, and it rejects a frame whose announced size exceeds
``max_frame_bytes`` *before* reading its body, so a hostile peer cannot make the
broker allocate what it announces.
"""

from __future__ import annotations

import struct

from rift_broker.errors import FrameTooLarge, ProtocolError, TruncatedFrame

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "FrameDecoder", "encode_frame"]

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024
_SIZE = struct.Struct(">i")


def encode_frame(payload: bytes | bytearray | memoryview) -> bytes:
    """The payload with its size prefix."""
    return _SIZE.pack(len(payload)) + bytes(payload)


class FrameDecoder:
    """Splits a byte stream into frames; raises :class:`ProtocolError` on a bad size."""

    __slots__ = ("_buffer", "_max_frame_bytes", "_need")

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes <= 0:
            raise ValueError(f"max_frame_bytes must be positive, got {max_frame_bytes}")
        self._max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        # Size of the frame whose body we are waiting for, or -1 while reading a prefix.
        self._need = -1

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    @property
    def pending_frame_bytes(self) -> int:
        """Size of the frame being received, or 0 between frames."""
        return max(self._need, 0)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete frame's payload, or ``None`` if more bytes are needed."""
        if self._need < 0:
            if len(self._buffer) < 4:
                return None
            (size,) = _SIZE.unpack_from(self._buffer, 0)
            if size < 0:
                raise ProtocolError(f"negative frame size {size}")
            if size > self._max_frame_bytes:
                raise FrameTooLarge(
                    f"frame of {size} bytes exceeds the limit of {self._max_frame_bytes}"
                )
            del self._buffer[:4]
            self._need = size
        if len(self._buffer) < self._need:
            return None
        frame = bytes(self._buffer[: self._need])
        del self._buffer[: self._need]
        self._need = -1
        return frame

    def close(self) -> None:
        """The stream ended: raise :class:`TruncatedFrame` if a frame was cut short."""
        if self._need >= 0 or self._buffer:
            raise TruncatedFrame(
                f"connection closed inside a frame ({len(self._buffer)} bytes buffered)"
            )
