"""The asyncio broker: connections, request handlers, topics, partitions and consumer groups."""

from __future__ import annotations

from rift_broker.server.broker import Broker, run_broker
from rift_broker.server.config import BrokerConfig, parse_listen

__all__ = ["Broker", "BrokerConfig", "parse_listen", "run_broker"]
