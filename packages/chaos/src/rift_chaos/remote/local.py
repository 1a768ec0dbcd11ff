"""The ``local`` backend: nodes are plain processes on this machine, no root needed.

Each node has its own work directory under ``<base>/rift-<runid>/<node>``. On Linux
every node gets its own loopback address (``127.0.77.<i>``; the whole of 127/8 is
local there), so a System can use the same ports on every node; elsewhere all nodes
share 127.0.0.1 and :attr:`Node.port_offset` separates their ports.

Nodes share one network stack, so there is no :class:`~rift_chaos.remote.Firewall`
ability and partition nemeses refuse this backend.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from rift_chaos.remote._cluster import ClusterBase
from rift_chaos.remote._process import ProcessRemote
from rift_chaos.remote._protocol import Node
from rift_chaos.remote.heal import kill_run_processes

__all__ = ["LocalCluster"]


class LocalCluster(ClusterBase[ProcessRemote]):
    """Cluster of ``nodes`` local nodes named n1..nN."""

    def __init__(
        self,
        *,
        nodes: int,
        run_id: str | None = None,
        base: Path | None = None,
        keep_files: bool = False,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be at least 1, got {nodes}")
        super().__init__(run_id=run_id)
        self._root = (base or Path(tempfile.gettempdir())) / f"rift-{self._run_id}"
        self._keep_files = keep_files
        distinct = sys.platform.startswith("linux")
        self._nodes = tuple(
            Node(
                name=f"n{i}",
                host=f"127.0.77.{i}" if distinct else "127.0.0.1",
                index=i,
                port_offset=0 if distinct else 100 * i,
            )
            for i in range(1, nodes + 1)
        )
        self._remotes = {
            node.name: ProcessRemote(node=node, workdir=self._root / node.name, run_id=self._run_id)
            for node in self._nodes
        }

    @property
    def root(self) -> Path:
        """The directory holding every node's work directory."""
        return self._root

    def setup(self) -> None:
        for remote in self._remotes.values():
            Path(remote.workdir).mkdir(parents=True, exist_ok=True)

    def teardown(self) -> None:
        for remote in self._remotes.values():
            remote.kill_all()
        # Daemons started through handles this object never saw (another process,
        # a crashed runner) are found by their RIFT_RUN_ID.
        kill_run_processes(self._run_id)
        if not self._keep_files:
            shutil.rmtree(self._root, ignore_errors=True)
