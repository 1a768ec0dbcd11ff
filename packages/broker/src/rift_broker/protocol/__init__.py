"""The Kafka wire protocol, sans-IO: framing, request decoding, response encoding, versions."""

from __future__ import annotations

from rift_broker.protocol.codec import (
    Request,
    RequestHeader,
    decode_request,
    encode_response,
    parse_header,
    response_type,
)
from rift_broker.protocol.framing import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encode_frame
from rift_broker.protocol.versions import (
    BROKER_APIS,
    DEFAULT_TABLE,
    GROUP_APIS,
    ApiKey,
    ApiSpec,
    VersionTable,
    table_for,
)

__all__ = [
    "FrameDecoder",
    "encode_frame",
    "DEFAULT_MAX_FRAME_BYTES",
    "Request",
    "RequestHeader",
    "parse_header",
    "decode_request",
    "encode_response",
    "response_type",
    "ApiKey",
    "ApiSpec",
    "VersionTable",
    "BROKER_APIS",
    "GROUP_APIS",
    "DEFAULT_TABLE",
    "table_for",
]
