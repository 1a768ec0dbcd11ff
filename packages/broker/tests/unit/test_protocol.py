"""Framing, header parsing, the version table and request decoding (no sockets)."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v0.response import ApiVersionsResponse
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName
from kio.serial import entity_reader, entity_writer

from rift_broker.errors import (
    FrameTooLarge,
    MalformedRequest,
    ProtocolError,
    TruncatedFrame,
    UnsupportedApi,
    UnsupportedVersion,
)
from rift_broker.protocol import (
    BROKER_APIS,
    DEFAULT_TABLE,
    GROUP_APIS,
    ApiKey,
    ApiSpec,
    FrameDecoder,
    VersionTable,
    decode_request,
    encode_frame,
    encode_response,
    parse_header,
    table_for,
)


def _header(
    api_key: int, version: int, correlation_id: int = 7, client_id: str | None = "c"
) -> bytes:
    if client_id is None:
        return struct.pack(">hhih", api_key, version, correlation_id, -1)
    raw = client_id.encode()
    return struct.pack(">hhih", api_key, version, correlation_id, len(raw)) + raw


def _metadata_v1(*topics: str) -> bytes:
    buf = io.BytesIO()
    body = MetadataRequest(topics=tuple(MetadataRequestTopic(name=TopicName(t)) for t in topics))
    entity_writer(MetadataRequest)(buf, body)
    return _header(3, 1) + buf.getvalue()


# -- framing ---------------------------------------------------------------------


def test_frames_split_across_and_within_chunks() -> None:
    stream = encode_frame(b"abc") + encode_frame(b"") + encode_frame(b"defgh")
    decoder = FrameDecoder()
    frames = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    assert frames == [b"abc", b"", b"defgh"]
    decoder.close()


def test_oversized_frame_is_rejected_before_its_body() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    decoder.feed(struct.pack(">i", 11))
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()


def test_negative_size_is_a_protocol_error() -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">i", -5))
    with pytest.raises(ProtocolError):
        decoder.next_frame()


def test_truncated_frame_is_reported_on_close() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"abcdef")[:-2])
    assert decoder.next_frame() is None
    assert decoder.pending_frame_bytes == 6
    with pytest.raises(TruncatedFrame):
        decoder.close()


def test_bad_max_frame_bytes() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameDecoder(max_frame_bytes=0)


# -- header ----------------------------------------------------------------------


def test_header_v1_parses() -> None:
    header, offset = parse_header(_header(3, 5, 99, "client-1") + b"rest")
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 5, 99)
    assert header.client_id == "client-1"
    assert offset == 10 + len("client-1")


def test_header_null_client_id() -> None:
    header, _ = parse_header(_header(18, 0, 1, None))
    assert header.client_id is None


@pytest.mark.parametrize("frame", [b"", b"\0\3\0\1", _header(3, 1, 1, "abc")[:-1]])
def test_short_header_is_malformed(frame: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_header(frame)


# -- version table ---------------------------------------------------------------


def test_table_matches_design() -> None:
    ranges = {spec.key: (spec.min_version, spec.max_version) for spec in DEFAULT_TABLE.specs()}
    assert ranges == {
        ApiKey.API_VERSIONS: (0, 2),
        ApiKey.METADATA: (0, 8),
        ApiKey.PRODUCE: (3, 8),
        ApiKey.FETCH: (4, 11),
        ApiKey.LIST_OFFSETS: (1, 5),
        ApiKey.INIT_PRODUCER_ID: (0, 1),
        ApiKey.CREATE_TOPICS: (2, 4),
        ApiKey.OFFSET_FOR_LEADER_EPOCH: (2, 3),
    }
    assert all(spec.advertised[0] == 0 for spec in DEFAULT_TABLE.specs())
    assert DEFAULT_TABLE.get(ApiKey.PRODUCE).advertised == (0, 8)  # type: ignore[union-attr]


def test_group_apis_match_design_and_come_with_their_handlers() -> None:
    from rift_broker.server.handlers import HANDLERS, SINGLE_NODE_HANDLERS

    table = table_for(SINGLE_NODE_HANDLERS)
    groups = {spec.key: (spec.min_version, spec.max_version) for spec in GROUP_APIS}
    assert groups == {
        ApiKey.FIND_COORDINATOR: (0, 2),
        ApiKey.JOIN_GROUP: (0, 5),
        ApiKey.SYNC_GROUP: (0, 3),
        ApiKey.HEARTBEAT: (0, 3),
        ApiKey.LEAVE_GROUP: (0, 3),
        ApiKey.OFFSET_COMMIT: (2, 7),
        ApiKey.OFFSET_FETCH: (1, 5),
        ApiKey.DESCRIBE_GROUPS: (0, 4),
        ApiKey.LIST_GROUPS: (0, 2),
    }
    assert all(table.get(key) is not None for key in groups)
    assert all(spec.advertised[0] == 0 for spec in table.specs())
    assert table_for(HANDLERS).specs() == DEFAULT_TABLE.specs()  # no handlers, not advertised


def test_table_is_ready_for_group_apis() -> None:
    table = DEFAULT_TABLE.with_apis(GROUP_APIS)
    assert table.supports(ApiKey.JOIN_GROUP, 5)
    assert not DEFAULT_TABLE.supports(ApiKey.JOIN_GROUP, 0)
    with pytest.raises(ValueError, match="twice"):
        VersionTable((*BROKER_APIS, BROKER_APIS[0]))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="range"):
        ApiSpec(key=ApiKey.FETCH, min_version=5, max_version=4)
    with pytest.raises(ValueError, match="advertise"):
        ApiSpec(key=ApiKey.FETCH, min_version=4, max_version=5, advertised_min=5)


def test_every_supported_version_has_non_flexible_kio_schemas() -> None:
    from kio.index import load_request_schema, load_response_schema

    for spec in DEFAULT_TABLE.with_apis(GROUP_APIS).specs():
        for version in range(spec.min_version, spec.max_version + 1):
            assert not load_request_schema(spec.key, version).__flexible__
            assert not load_response_schema(spec.key, version).__flexible__


# -- decoding --------------------------------------------------------------------


def test_decode_metadata_request() -> None:
    request = decode_request(_metadata_v1("a", "b"))
    assert request.header.correlation_id == 7
    assert [t.name for t in request.body.topics] == ["a", "b"]
    assert request.response_version == 1


def test_unknown_api_versions_version_gets_v0_fallback() -> None:
    # A flexible ApiVersions v3 with header v2 (tagged fields) and a body we don't parse.
    frame = _header(18, 3, 42, "rdkafka") + b"\0" + b"\x08librdkafka\x062.6.0\0"
    request = decode_request(frame)
    assert request.body is None
    assert request.response_version == 0
    assert request.header.correlation_id == 42


def test_unsupported_version_of_other_api_is_rejected() -> None:
    with pytest.raises(UnsupportedVersion):
        decode_request(_header(0, 2))
    with pytest.raises(UnsupportedVersion):
        decode_request(_header(3, 9))


def test_unknown_api_key_is_rejected() -> None:
    with pytest.raises(UnsupportedApi):
        decode_request(_header(57, 0))


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedRequest, match="trailing"):
        decode_request(_metadata_v1("a") + b"x")


def test_truncated_body_is_malformed() -> None:
    with pytest.raises(MalformedRequest):
        decode_request(_metadata_v1("abc")[:-1])


def test_encode_response_round_trips() -> None:
    from kio.schema.api_versions.v0.response import ApiVersion
    from kio.schema.errors import ErrorCode
    from kio.static.primitive import i16

    response = ApiVersionsResponse(
        error_code=ErrorCode.unsupported_version,
        api_keys=(ApiVersion(api_key=i16(18), min_version=i16(0), max_version=i16(2)),),
    )
    frame = encode_response(1234, response)
    (size, correlation) = struct.unpack_from(">ii", frame)
    assert size == len(frame) - 4
    assert correlation == 1234
    decoded, _ = entity_reader(ApiVersionsResponse)(frame, 8)
    assert decoded == response


# -- fuzzing ---------------------------------------------------------------------


@st.composite
def _mutated_frames(draw: st.DrawFn) -> bytes:
    """Frames near valid ones: a real header of a served API, then arbitrary bytes."""
    spec = draw(st.sampled_from(DEFAULT_TABLE.specs()))
    version = draw(st.integers(spec.min_version - 1, spec.max_version + 1))
    client_id = draw(st.one_of(st.none(), st.text(max_size=8)))
    return _header(spec.key, version, draw(st.integers(-(2**31), 2**31 - 1)), client_id) + draw(
        st.binary(max_size=200)
    )


@settings(max_examples=2000, deadline=None)
@given(frame=st.one_of(st.binary(max_size=300), _mutated_frames()))
def test_decoder_raises_only_protocol_errors(frame: bytes) -> None:
    try:
        decode_request(frame)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64), limit=st.integers(1, 32))
def test_frame_decoder_never_buffers_past_limit(data: bytes, limit: int) -> None:
    decoder = FrameDecoder(max_frame_bytes=limit)
    decoder.feed(data)
    try:
        while (frame := decoder.next_frame()) is not None:
            assert len(frame) <= limit
    except ProtocolError:
        pass
