"""Frames, headers and version negotiation."""

from __future__ import annotations

import io

import pytest
from kio.schema.metadata.v8.response import MetadataResponse, MetadataResponseBroker
from kio.schema.request_header.v1.header import RequestHeader
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32

from rift_client import protocol
from rift_client.errors import ProtocolError, UnsupportedVersion
from rift_client.protocol import Api


def test_negotiate_picks_highest_common_version() -> None:
    broker = {0: (0, 9), 1: (0, 16), 3: (0, 12), 19: (5, 7), 18: (0, 3)}
    chosen = protocol.negotiate(broker)
    assert chosen[Api.PRODUCE] == 8
    assert chosen[Api.FETCH] == 11
    assert chosen[Api.METADATA] == 8
    assert chosen[Api.API_VERSIONS] == 2
    assert Api.CREATE_TOPICS not in chosen  # 5-7 vs our 2-4
    assert Api.LIST_OFFSETS not in chosen  # broker did not list it
    with pytest.raises(UnsupportedVersion, match="CREATE_TOPICS"):
        protocol.require(chosen, Api.CREATE_TOPICS)


def test_negotiate_takes_an_older_broker_max() -> None:
    assert protocol.negotiate({0: (0, 5)})[Api.PRODUCE] == 5


def test_make_drops_fields_an_old_version_lacks() -> None:
    old = protocol.make(
        Api.FETCH,
        4,
        "FetchPartition",
        partition=1,
        current_leader_epoch=7,
        fetch_offset=0,
        log_start_offset=-1,
        partition_max_bytes=10,
    )
    new = protocol.make(
        Api.FETCH,
        11,
        "FetchPartition",
        partition=1,
        current_leader_epoch=7,
        fetch_offset=0,
        log_start_offset=-1,
        partition_max_bytes=10,
    )
    assert not hasattr(old, "current_leader_epoch")
    assert new.current_leader_epoch == 7


def test_encode_request_frame_has_size_and_v1_header() -> None:
    body = protocol.request(
        Api.METADATA,
        8,
        topics=None,
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )
    frame = protocol.encode_request(body, correlation_id=42, client_id="me")
    assert protocol.read_size(frame[:4]) == len(frame) - 4
    header, used = entity_reader(RequestHeader)(frame[4:], 0)
    assert (header.request_api_key, header.request_api_version) == (3, 8)
    assert (header.correlation_id, header.client_id) == (42, "me")
    decoded, _ = entity_reader(type(body))(frame[4:], used)
    assert decoded == body


def test_decode_response() -> None:
    out = io.BytesIO()
    out.write(i32(9).to_bytes(4, "big"))
    body = MetadataResponse(
        throttle_time=protocol.duration(0),
        brokers=(MetadataResponseBroker(node_id=i32(1), host="h", port=i32(1), rack=None),),
        cluster_id=None,
        controller_id=i32(1),
        topics=(),
    )
    entity_writer(MetadataResponse)(out, body)
    cid, decoded = protocol.decode_response(out.getvalue(), protocol.response_type(Api.METADATA, 8))
    assert cid == 9
    assert decoded.brokers[0].host == "h"
    with pytest.raises(ProtocolError):
        protocol.decode_response(out.getvalue()[:10], MetadataResponse)


def test_negative_frame_size_rejected() -> None:
    with pytest.raises(ProtocolError):
        protocol.read_size(b"\xff\xff\xff\xff")


def test_every_client_version_has_a_kio_schema() -> None:
    for api, (low, high) in protocol.CLIENT_VERSIONS.items():
        for version in range(low, high + 1):
            assert protocol.response_type(api, version).__name__.endswith("Response")
            request_cls = protocol.request_type(api, version)
            assert request_cls.__api_key__ == api
            assert request_cls.__version__ == version
