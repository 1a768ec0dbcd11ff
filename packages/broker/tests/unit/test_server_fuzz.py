"""Every handler answers any well-formed request of any served version without raising.

Requests are drawn by Hypothesis from the kio schemas themselves (``st.from_type``),
encoded, decoded by the broker's decoder, handled, and the answer encoded again.
A crash here would close a client's connection on input that is merely unusual.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.serial import entity_writer
from kio.static.primitive import Records

from rift_broker.protocol import DEFAULT_TABLE, ApiKey, decode_request, encode_response
from rift_broker.records import build_batch
from rift_broker.server.config import BrokerConfig
from rift_broker.server.context import BrokerContext
from rift_broker.server.handlers import HANDLERS
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.registry import TopicRegistry
from rift_broker.server.topics import TopicSpec
from rift_broker.storage import MemoryStorage


def _batches() -> st.SearchStrategy[bytes]:
    valid = st.builds(
        lambda values, pid, seq: build_batch(
            values, producer_id=pid, producer_epoch=0 if pid >= 0 else -1, base_sequence=seq
        ),
        st.lists(st.binary(max_size=20), min_size=1, max_size=3),
        st.sampled_from([-1, 0, 1]),
        st.integers(-1, 5),
    )
    return st.one_of(valid, st.binary(max_size=100), valid.map(lambda b: b + b))


st.register_type_strategy(Records, _batches().map(Records))

VERSIONS = [
    (spec.key, version)
    for spec in DEFAULT_TABLE.specs()
    for version in range(spec.min_version, spec.max_version + 1)
]


def _context(tmp_path: Path) -> BrokerContext:
    config = BrokerConfig(data_dir=tmp_path, durability="none")
    registry = TopicRegistry(config, storage=MemoryStorage())
    registry.create(TopicSpec(name="t", partitions=2))
    return BrokerContext(
        config=config,
        table=DEFAULT_TABLE,
        registry=registry,
        producer_ids=ProducerIdAllocator(tmp_path),
        log=logging.getLogger("fuzz"),
    )


@pytest.mark.parametrize(("api_key", "version"), VERSIONS, ids=str)
def test_handlers_never_raise(tmp_path: Path, api_key: ApiKey, version: int) -> None:
    ctx = _context(tmp_path)
    request_cls = load_request_schema(api_key, version)

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=st.from_type(request_cls))
    def check(body: Any) -> None:
        if api_key == ApiKey.CREATE_TOPICS:
            body = dataclasses.replace(body, validate_only=True)
        if api_key == ApiKey.FETCH:  # never long-poll in a unit test
            body = dataclasses.replace(body, max_wait=type(body.max_wait)(0))
        buf = io.BytesIO()
        buf.write(struct.pack(">hhih", api_key, version, 7, -1))
        entity_writer(request_cls)(buf, body)
        request = decode_request(buf.getvalue())
        response = asyncio.run(HANDLERS[api_key](ctx, request))
        if response is not None:
            encode_response(7, response)

    check()
