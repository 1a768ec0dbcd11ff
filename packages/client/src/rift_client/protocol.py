"""The wire layer: frames, headers, version negotiation, kio schemas by version.

A request frame is ``int32 size | RequestHeader v1 | body``; a response frame is
``int32 size | ResponseHeader v0 (correlation id) | body``. Bodies are kio
dataclasses, encoded with ``kio.serial.entity_writer`` and decoded with
``entity_reader``. We speak only the non-flexible versions (pre KIP-482) listed in
:data:`CLIENT_VERSIONS`; :func:`negotiate` picks, per API, the highest version both
sides support. The schema classes of one API keep their names across versions, so
:func:`make` builds any of them from keyword arguments, dropping the ones a given
version does not have (e.g. ``current_leader_epoch`` before Fetch v9).
"""

from __future__ import annotations

import datetime
import enum
import importlib
import io
import struct
from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader
from kio.schema.response_header.v0.header import ResponseHeader
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32, i32Timedelta

from rift_client.errors import ProtocolError, UnsupportedVersion

__all__ = [
    "Api",
    "CLIENT_VERSIONS",
    "negotiate",
    "make",
    "encode_request",
    "decode_response",
    "read_size",
]


class Api(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23


# The non-flexible versions this client can speak (DESIGN.md's table).
CLIENT_VERSIONS: Mapping[Api, tuple[int, int]] = {
    Api.PRODUCE: (3, 8),
    Api.FETCH: (4, 11),
    Api.LIST_OFFSETS: (1, 5),
    Api.METADATA: (1, 8),
    Api.OFFSET_COMMIT: (2, 7),
    Api.OFFSET_FETCH: (1, 5),
    Api.FIND_COORDINATOR: (0, 2),
    Api.JOIN_GROUP: (0, 5),
    Api.HEARTBEAT: (0, 3),
    Api.LEAVE_GROUP: (0, 3),
    Api.SYNC_GROUP: (0, 3),
    Api.API_VERSIONS: (0, 2),
    Api.CREATE_TOPICS: (2, 4),
    Api.INIT_PRODUCER_ID: (0, 1),
    Api.OFFSET_FOR_LEADER_EPOCH: (2, 3),
}

_MODULE = {
    Api.PRODUCE: "produce",
    Api.FETCH: "fetch",
    Api.LIST_OFFSETS: "list_offsets",
    Api.METADATA: "metadata",
    Api.OFFSET_COMMIT: "offset_commit",
    Api.OFFSET_FETCH: "offset_fetch",
    Api.FIND_COORDINATOR: "find_coordinator",
    Api.JOIN_GROUP: "join_group",
    Api.HEARTBEAT: "heartbeat",
    Api.LEAVE_GROUP: "leave_group",
    Api.SYNC_GROUP: "sync_group",
    Api.API_VERSIONS: "api_versions",
    Api.CREATE_TOPICS: "create_topics",
    Api.INIT_PRODUCER_ID: "init_producer_id",
    Api.OFFSET_FOR_LEADER_EPOCH: "offset_for_leader_epoch",
}

_SIZE = struct.Struct(">i")


def negotiate(broker: Mapping[int, tuple[int, int]]) -> dict[Api, int]:
    """Per API, the highest version in both ranges; APIs without overlap are absent."""
    chosen: dict[Api, int] = {}
    for api, (low, high) in CLIENT_VERSIONS.items():
        if api not in broker:
            continue
        blow, bhigh = broker[api]
        top = min(high, bhigh)
        if top >= max(low, blow):
            chosen[api] = top
    return chosen


def require(versions: Mapping[Api, int], api: Api) -> int:
    try:
        return versions[api]
    except KeyError:
        raise UnsupportedVersion(
            f"the broker supports no version of {api.name} in {CLIENT_VERSIONS[api]}"
        ) from None


@cache
def _schema(api: Api, version: int, kind: str) -> Any:
    return importlib.import_module(f"kio.schema.{_MODULE[api]}.v{version}.{kind}")


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def make(api: Api, version: int, name: str, /, **values: Any) -> Any:
    """Build kio class ``name`` of ``api`` at ``version``; unknown fields are dropped."""
    module = _schema(api, version, "request")
    cls = getattr(module, name)
    names = _field_names(cls)
    return cls(**{k: v for k, v in values.items() if k in names})


def response_type(api: Api, version: int) -> type:
    module = _schema(api, version, "response")
    return getattr(module, _response_class_name(api))  # type: ignore[no-any-return]


def _response_class_name(api: Api) -> str:
    request_name = _request_class_name(api)
    return request_name.removesuffix("Request") + "Response"


@cache
def _request_class_name(api: Api) -> str:
    module = _schema(api, CLIENT_VERSIONS[api][0], "request")
    for value in vars(module).values():
        name = getattr(value, "__name__", "")
        if (
            name.endswith("Request")
            and name != "RequestHeader"
            and getattr(value, "__api_key__", None) == api
        ):
            return str(name)
    raise LookupError(api)


def request_type(api: Api, version: int) -> type:
    return getattr(_schema(api, version, "request"), _request_class_name(api))  # type: ignore[no-any-return]


def request(api: Api, version: int, /, **values: Any) -> Any:
    """Build the top-level request of ``api`` at ``version``."""
    return make(api, version, _request_class_name(api), **values)


def duration(seconds: float) -> i32Timedelta:
    """A timeout field (kio's millisecond timedelta)."""
    return i32Timedelta.parse(datetime.timedelta(milliseconds=int(seconds * 1000)))


def encode_request(body: Any, *, correlation_id: int, client_id: str) -> bytes:
    """A whole frame, size prefix included."""
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    header = RequestHeader(
        request_api_key=i16(body.__api_key__),
        request_api_version=i16(body.__version__),
        correlation_id=i32(correlation_id),
        client_id=client_id,
    )
    entity_writer(RequestHeader)(out, header)
    entity_writer(type(body))(out, body)
    frame = out.getbuffer()
    _SIZE.pack_into(frame, 0, len(frame) - 4)
    return bytes(frame)


def read_size(prefix: bytes) -> int:
    (size,) = _SIZE.unpack(prefix)
    if size < 0:
        raise ProtocolError(f"negative frame size {size}")
    return int(size)


def decode_response(frame: bytes, response_cls: type) -> tuple[int, Any]:
    """``(correlation_id, body)`` from a frame without its size prefix."""
    try:
        header, used = entity_reader(ResponseHeader)(frame, 0)
        body: Any = entity_reader(response_cls)(frame, used)[0]
    except Exception as exc:  # kio raises several types for malformed input
        raise ProtocolError(f"cannot decode {response_cls.__name__}: {exc}") from exc
    return int(header.correlation_id), body


def peek_correlation_id(frame: bytes) -> int:
    (cid,) = _SIZE.unpack_from(frame, 0)
    return int(cid)
