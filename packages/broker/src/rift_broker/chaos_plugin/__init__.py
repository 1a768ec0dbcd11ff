"""The reference broker as a System of the toolkit (``rift.systems`` entry point).

Only this package imports ``rift_chaos``; the broker runs without the toolkit.
"""

from __future__ import annotations

from rift_broker.chaos_plugin._client import BrokerClient
from rift_broker.chaos_plugin._system import BrokerSystem

__all__ = ["BrokerSystem", "BrokerClient"]
