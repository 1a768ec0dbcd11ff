"""Request handlers, one coroutine per API, and the table that dispatches to them.

A handler takes the broker context and a decoded request and returns the kio
response to send, or ``None`` for no response (acks=0 Produce).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any

from rift_broker.protocol import ApiKey, Request
from rift_broker.server.context import BrokerContext
from rift_broker.server.handlers.admin import (
    handle_api_versions,
    handle_create_topics,
    handle_metadata,
)
from rift_broker.server.handlers.fetch import handle_fetch
from rift_broker.server.handlers.offsets import (
    handle_init_producer_id,
    handle_list_offsets,
    handle_offset_for_leader_epoch,
)
from rift_broker.server.handlers.produce import handle_produce

__all__ = ["Handler", "HANDLERS"]

Handler = Callable[[BrokerContext, Request], Coroutine[Any, Any, Any]]

HANDLERS: Mapping[int, Handler] = MappingProxyType(
    {
        ApiKey.API_VERSIONS: handle_api_versions,
        ApiKey.METADATA: handle_metadata,
        ApiKey.CREATE_TOPICS: handle_create_topics,
        ApiKey.PRODUCE: handle_produce,
        ApiKey.FETCH: handle_fetch,
        ApiKey.LIST_OFFSETS: handle_list_offsets,
        ApiKey.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
        ApiKey.INIT_PRODUCER_ID: handle_init_producer_id,
    }
)
