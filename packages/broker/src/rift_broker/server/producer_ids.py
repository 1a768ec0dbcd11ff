"""Producer id allocation that never repeats an id, across restarts.

Ids are handed out from blocks. Before the first id of a block is used, the end of
the block is written to ``producer-ids.json`` (write, fsync, rename), so after a
crash the broker starts past every id it may have handed out; a reused id would
make a new producer look like an old one to the partitions' producer state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["ProducerIdAllocator"]

_BLOCK = 1000


class ProducerIdAllocator:
    __slots__ = ("_base", "_block_end", "_next", "_path")

    def __init__(self, data_dir: Path, *, node_id: int = 0) -> None:
        # In a cluster every node allocates on its own: its node id in the high bits
        # keeps the ids unique across nodes.
        self._base = node_id << 40
        self._path = data_dir / "producer-ids.json"
        start = 0
        if self._path.exists():
            start = int(json.loads(self._path.read_text())["next_block"])
        self._next = start
        self._block_end = start

    def allocate(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + _BLOCK
            self._persist(self._block_end)
        producer_id = self._next
        self._next += 1
        return self._base + producer_id

    def _persist(self, next_block: int) -> None:
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"next_block": next_block}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
