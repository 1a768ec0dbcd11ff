"""Compression codecs of Kafka record batches (attribute bits 0-2).

gzip is always available (stdlib). lz4 (frame format), zstd and snappy are used
when their modules import; :func:`available` lists what this process can do.
Snappy is written in the xerial framing that the Java client writes, and read in
either that framing or raw snappy (librdkafka writes raw).
"""

from __future__ import annotations

import enum
import gzip
import struct
from typing import Any

from rift_client.errors import InvalidArgument, UnsupportedVersion

__all__ = ["Compression", "available", "compress", "decompress"]


class Compression(enum.IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4

    @classmethod
    def parse(cls, value: str | int | Compression | None) -> Compression:
        if isinstance(value, Compression):
            return value
        if value is None:
            return cls.NONE
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper()]
        except KeyError:
            names = ", ".join(c.name.lower() for c in cls)
            raise InvalidArgument(f"unknown compression {value!r}; use one of {names}") from None


def _module(name: str) -> Any:
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


_lz4 = _module("lz4.frame")
_zstd = _module("zstandard")
_snappy = _module("snappy")

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")


def available() -> frozenset[Compression]:
    """The codecs this process can both write and read."""
    found = {Compression.NONE, Compression.GZIP}
    if _lz4 is not None:
        found.add(Compression.LZ4)
    if _zstd is not None:
        found.add(Compression.ZSTD)
    if _snappy is not None:
        found.add(Compression.SNAPPY)
    return frozenset(found)


def _require(codec: Compression) -> None:
    if codec not in available():
        raise UnsupportedVersion(
            f"{codec.name.lower()} compression needs a module that is not installed"
        )


def compress(codec: Compression, data: bytes) -> bytes:
    if codec is Compression.NONE:
        return data
    _require(codec)
    if codec is Compression.GZIP:
        return gzip.compress(data, compresslevel=6, mtime=0)
    if codec is Compression.LZ4:
        return bytes(_lz4.compress(data))
    if codec is Compression.ZSTD:
        return bytes(_zstd.ZstdCompressor().compress(data))
    # Snappy, xerial framing: magic, version 1, compat 1, then (length, block)*.
    out = bytearray(_XERIAL_HEADER.pack(_XERIAL_MAGIC, 1, 1))
    block = 32 * 1024
    for start in range(0, len(data), block):
        chunk = _snappy.compress(data[start : start + block])
        out += struct.pack(">i", len(chunk))
        out += chunk
    return bytes(out)


def decompress(codec: Compression, data: bytes) -> bytes:
    if codec is Compression.NONE:
        return data
    _require(codec)
    if codec is Compression.GZIP:
        return gzip.decompress(data)
    if codec is Compression.LZ4:
        return bytes(_lz4.decompress(data))
    if codec is Compression.ZSTD:
        return bytes(_zstd.ZstdDecompressor().decompressobj().decompress(data))
    if data[:8] == _XERIAL_MAGIC:
        out = bytearray()
        pos = _XERIAL_HEADER.size
        while pos < len(data):
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            out += _snappy.decompress(data[pos : pos + size])
            pos += size
        return bytes(out)
    return bytes(_snappy.decompress(data))
