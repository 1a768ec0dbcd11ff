"""Every handler answers any well-formed request of any served version without raising.

Requests are drawn by Hypothesis from the kio schemas themselves (``st.from_type``),
encoded, decoded by the broker's decoder, handled, and the answer encoded again.
A crash here would close a client's connection on input that is merely unusual.
The group APIs get a fresh group driver per example (no initial rebalance delay, a
manual clock), so no request can wait for another member: each must be answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
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
from kio.static.primitive import Records, i64Timedelta

from rift_broker.protocol import ApiKey, decode_request, encode_response, table_for
from rift_broker.records import build_batch
from rift_broker.server.clock import ManualClock
from rift_broker.server.config import BrokerConfig
from rift_broker.server.context import BrokerContext
from rift_broker.server.groups import GroupDriver
from rift_broker.server.handlers import GROUP_HANDLERS, SINGLE_NODE_HANDLERS
from rift_broker.server.offsets_log import LocalOffsetsLog, ensure_offsets_topic
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

TABLE = table_for(SINGLE_NODE_HANDLERS)
VERSIONS = [
    (spec.key, version)
    for spec in TABLE.specs()
    for version in range(spec.min_version, spec.max_version + 1)
]


def _context(tmp_path: Path) -> BrokerContext:
    config = BrokerConfig(
        data_dir=tmp_path,
        durability="none",
        offsets_partitions=2,
        group_initial_rebalance_delay_ms=0,
        group_min_session_timeout_ms=0,
    )
    registry = TopicRegistry(config, storage=MemoryStorage())
    registry.create(TopicSpec(name="t", partitions=2))
    ensure_offsets_topic(registry, partitions=2, now_ms=0)
    return BrokerContext(
        config=config,
        table=TABLE,
        registry=registry,
        producer_ids=ProducerIdAllocator(tmp_path),
        log=logging.getLogger("fuzz"),
    )


def _fresh_groups(ctx: BrokerContext) -> None:
    topic = ctx.registry.get("__consumer_offsets")
    assert topic is not None
    driver = GroupDriver(
        LocalOffsetsLog(topic),
        num_partitions=2,
        config=ctx.config.group_config,
        clock=ManualClock(),
        partition_exists=lambda t, p: ctx.registry.partition(t, p) is not None,
    )
    driver.load_all()
    ctx.groups = driver


async def _handle(ctx: BrokerContext, api_key: int, request: Any) -> Any:
    if api_key in GROUP_HANDLERS:
        _fresh_groups(ctx)
        # Every group request of a fresh group is answered without waiting.
        return await asyncio.wait_for(SINGLE_NODE_HANDLERS[api_key](ctx, request), 10)
    return await SINGLE_NODE_HANDLERS[api_key](ctx, request)


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
        if hasattr(body, "retention_time"):
            # OffsetCommit v2-4: kio cannot decode a retention beyond timedelta's range
            # (millions of years); clients send -1. The broker ignores the field anyway.
            never = i64Timedelta.parse(datetime.timedelta(milliseconds=-1))
            body = dataclasses.replace(body, retention_time=never)
        buf = io.BytesIO()
        buf.write(struct.pack(">hhih", api_key, version, 7, -1))
        entity_writer(request_cls)(buf, body)
        request = decode_request(buf.getvalue(), table=TABLE)
        response = asyncio.run(_handle(ctx, api_key, request))
        if response is not None:
            encode_response(7, response)

    check()
