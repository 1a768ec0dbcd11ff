"""Running a cluster: the durable Raft store and the drivers that join the cores.

Everything here is a *driver* piece (DESIGN.md Rule 1): it moves bytes between the
sans-IO cores (``rift_broker.raft``, ``rift_broker.controller``,
``rift_broker.replication``) and files, sockets and clocks.
"""

from __future__ import annotations

from rift_broker.cluster.raft_store import FileRaftStorage

__all__ = ["FileRaftStorage"]
