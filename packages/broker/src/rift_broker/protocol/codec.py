"""Request decoding and response encoding, with kio doing the schema work.

A request frame is a request header (v1 for the non-flexible versions we serve, v2
for flexible ones, which only matters for ApiVersions probes) followed by the body.
:func:`decode_request` turns a frame into a :class:`Request` value or raises a
:class:`~rift_broker.errors.ProtocolError`; it never raises anything else, whatever
the bytes (this is what the fuzz test checks). An ApiVersions request of a version
the broker does not know is *not* an error: Kafka's rule is to answer it with error
35 and the supported list in v0 format, so the client can retry with a version both
know. Such a request decodes with ``body=None`` and ``response_version=0``.

Responses use header v0 (just the correlation id): the broker only answers in
non-flexible versions, and ApiVersions always uses header v0 anyway.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from rift_broker.errors import MalformedRequest, UnsupportedApi, UnsupportedVersion
from rift_broker.protocol.versions import DEFAULT_TABLE, ApiKey, VersionTable

__all__ = [
    "RequestHeader",
    "Request",
    "parse_header",
    "decode_request",
    "encode_response",
    "response_type",
]

_HEAD = struct.Struct(">hhih")  # api key, api version, correlation id, client id length
_CORRELATION = struct.Struct(">i")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A decoded request: its header, its kio body, and the version to answer in."""

    header: RequestHeader
    body: Any  # a kio request entity; None for an ApiVersions of an unknown version
    response_version: int
    size: int  # bytes of the frame, for in-flight accounting


def parse_header(frame: bytes) -> tuple[RequestHeader, int]:
    """The request header (v1 fields) and the offset where the rest starts."""
    if len(frame) < _HEAD.size:
        raise MalformedRequest(f"frame of {len(frame)} bytes is shorter than a request header")
    api_key, api_version, correlation_id, client_id_len = _HEAD.unpack_from(frame, 0)
    offset = _HEAD.size
    client_id: str | None = None
    if client_id_len >= 0:
        end = offset + client_id_len
        if end > len(frame):
            raise MalformedRequest("client id runs past the end of the frame")
        try:
            client_id = frame[offset:end].decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedRequest("client id is not UTF-8") from e
        offset = end
    elif client_id_len != -1:
        raise MalformedRequest(f"bad client id length {client_id_len}")
    header = RequestHeader(
        api_key=api_key,
        api_version=api_version,
        correlation_id=correlation_id,
        client_id=client_id,
    )
    return header, offset


def decode_request(frame: bytes, *, table: VersionTable = DEFAULT_TABLE) -> Request:
    """Decode one frame; raise a ``ProtocolError`` subclass if it cannot be served."""
    header, offset = parse_header(frame)
    spec = table.get(header.api_key)
    if spec is None:
        raise UnsupportedApi(f"unsupported API key {header.api_key}")
    if not spec.supports(header.api_version):
        if header.api_key == ApiKey.API_VERSIONS:
            return Request(header=header, body=None, response_version=0, size=len(frame))
        raise UnsupportedVersion(
            f"unsupported version {header.api_version} of {spec.key.name}"
            f" (supported {spec.min_version}-{spec.max_version})"
        )
    schema = _request_schema(header.api_key, header.api_version)
    if schema.__flexible__:  # pragma: no cover - the table lists non-flexible versions only
        raise UnsupportedVersion(f"flexible version {header.api_version} of {spec.key.name}")
    try:
        body, size = entity_reader(schema)(frame, offset)
    except Exception as e:  # kio raises assorted errors on bad bytes; all mean one thing
        raise MalformedRequest(
            f"cannot decode {spec.key.name} v{header.api_version}: {type(e).__name__}: {e}"
        ) from None
    if offset + size != len(frame):
        raise MalformedRequest(
            f"{spec.key.name} v{header.api_version} has {len(frame) - offset - size} trailing bytes"
        )
    return Request(header=header, body=body, response_version=header.api_version, size=len(frame))


@cache
def _request_schema(api_key: int, version: int) -> Any:
    return load_request_schema(api_key, version)


@cache
def response_type(api_key: int, version: int) -> Any:
    """The kio response class of an API version (for building responses)."""
    return load_response_schema(api_key, version)


def encode_response(correlation_id: int, response: Any) -> bytes:
    """A response frame: size, header v0 (correlation id), kio-encoded body."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    buffer.write(_CORRELATION.pack(correlation_id))
    entity_writer(type(response))(buffer, response)
    data = buffer.getbuffer()
    struct.pack_into(">i", data, 0, len(data) - 4)
    out = bytes(data)
    del data
    return out
