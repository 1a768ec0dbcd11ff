"""Request handlers, one coroutine per API, and the tables that dispatch to them.

A handler takes the broker context and a decoded request and returns the kio
response to send, or ``None`` for no response (acks=0 Produce).

:data:`HANDLERS` are the APIs every broker serves; :data:`GROUP_HANDLERS` the
consumer-group APIs, which need a group driver in ``ctx.groups``. The single-node
broker serves both (:data:`SINGLE_NODE_HANDLERS`); a broker advertises the group
APIs exactly when its table has their handlers (``rift_broker.protocol.table_for``).
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
from rift_broker.server.handlers.groups import (
    handle_describe_groups,
    handle_find_coordinator,
    handle_heartbeat,
    handle_join_group,
    handle_leave_group,
    handle_list_groups,
    handle_offset_commit,
    handle_offset_fetch,
    handle_sync_group,
)
from rift_broker.server.handlers.offsets import (
    handle_init_producer_id,
    handle_list_offsets,
    handle_offset_for_leader_epoch,
)
from rift_broker.server.handlers.produce import handle_produce

__all__ = ["Handler", "HANDLERS", "GROUP_HANDLERS", "SINGLE_NODE_HANDLERS"]

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

GROUP_HANDLERS: Mapping[int, Handler] = MappingProxyType(
    {
        ApiKey.FIND_COORDINATOR: handle_find_coordinator,
        ApiKey.JOIN_GROUP: handle_join_group,
        ApiKey.SYNC_GROUP: handle_sync_group,
        ApiKey.HEARTBEAT: handle_heartbeat,
        ApiKey.LEAVE_GROUP: handle_leave_group,
        ApiKey.OFFSET_COMMIT: handle_offset_commit,
        ApiKey.OFFSET_FETCH: handle_offset_fetch,
        ApiKey.DESCRIBE_GROUPS: handle_describe_groups,
        ApiKey.LIST_GROUPS: handle_list_groups,
    }
)

SINGLE_NODE_HANDLERS: Mapping[int, Handler] = MappingProxyType({**HANDLERS, **GROUP_HANDLERS})
