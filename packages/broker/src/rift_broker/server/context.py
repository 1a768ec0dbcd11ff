"""What every request handler may use: settings, the version table, the topics, the clock,
and the group coordinator's driver (``None`` on a broker that serves no groups)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Final

from rift_broker.protocol import VersionTable
from rift_broker.server.config import BrokerConfig
from rift_broker.server.groups import GroupDriver
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.registry import TopicRegistry

__all__ = ["BrokerContext", "CLOSE_CONNECTION", "wall_clock_ms"]

# A handler's answer meaning: send nothing and close the connection.
CLOSE_CONNECTION: Final = object()


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True, kw_only=True)
class BrokerContext:
    config: BrokerConfig
    table: VersionTable
    registry: TopicRegistry
    producer_ids: ProducerIdAllocator
    log: logging.Logger
    groups: GroupDriver | None = None
    # Set when the broker stops: long-polling fetches return at once.
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def now_ms(self) -> int:
        return wall_clock_ms()
