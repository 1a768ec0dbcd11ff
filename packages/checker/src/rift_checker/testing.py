"""A fake for tests: build small histories in memory, op by op.

Other packages' tests can use it too (the toolkit's simulator tests, for one)::

    b = HistoryBuilder()
    w = b.send(process=0, value="a", partition=0, offset=0)
    r = b.poll(process=1, records={"t/0": [(0, "a")]})
    b.final_read(records={"t/0": [(0, "a")]})
    assert b.check().valid is True

Each helper writes an invoke and its completion at once and returns the op id;
use :meth:`invoke` and :meth:`complete` to interleave operations. Time advances
by 1 ns per event.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

from rift_checker.check import check_history
from rift_checker.config import CheckConfig
from rift_checker.history import FINAL_READ, HIGH_WATERMARK, LEADER, POLL, SEND
from rift_checker.results import Result
from rift_checker.writer import HistoryWriter

__all__ = ["HistoryBuilder"]

Records = Mapping[str, Iterable[tuple[int, Any] | list[Any]]]


def _records(records: Records) -> dict[str, list[list[Any]]]:
    return {key: [[o, v] for o, v in recs] for key, recs in records.items()}


class HistoryBuilder:
    """Writes a history into memory; see the module docstring."""

    def __init__(self, *, topic: str = "t", metadata: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self._buffer = io.StringIO()
        self._time = 0
        self._writer = HistoryWriter(self._buffer, metadata=metadata or {"test": True})

    def _now(self) -> int:
        self._time += 1
        return self._time

    def invoke(self, *, process: int | str, f: str, value: Any = None) -> int:
        return self._writer.invoke(process=process, f=f, value=value, time=self._now())

    def complete(
        self, *, process: int | str, type: str = "ok", value: Any = None, error: str | None = None
    ) -> int:
        return self._writer.complete(
            process=process, type=type, value=value, error=error, time=self._now()
        )

    def invoke_send(self, *, process: int, value: Any, partition: int = 0) -> int:
        v = {"topic": self.topic, "partition": partition, "value": value}
        return self.invoke(process=process, f=SEND, value=v)

    def complete_send(
        self,
        *,
        process: int,
        value: Any,
        partition: int = 0,
        offset: int | None = None,
        type: str = "ok",
    ) -> None:
        v: dict[str, Any] = {"topic": self.topic, "partition": partition, "value": value}
        if type == "ok":
            if offset is None:
                raise ValueError("an ok send needs an offset")
            v["offset"] = offset
        self.complete(process=process, type=type, value=v, error=None if type == "ok" else "x")

    def send(
        self,
        *,
        process: int,
        value: Any,
        partition: int = 0,
        offset: int | None = None,
        type: str = "ok",
    ) -> int:
        """An invoke and completion of a send; returns its op id."""
        op = self.invoke_send(process=process, value=value, partition=partition)
        self.complete_send(
            process=process, value=value, partition=partition, offset=offset, type=type
        )
        return op

    def poll(
        self,
        *,
        process: int,
        records: Records,
        type: str = "ok",
        assigned: dict[str, int] | None = None,
    ) -> int:
        """A poll returning ``records`` ({"topic/partition": [(offset, value), ...]});
        ``assigned``: the partitions a group handed the process, with their starts."""
        op = self.invoke(process=process, f=POLL)
        value: dict[str, Any] | None = None
        if type == "ok":
            value = {"records": _records(records)}
            if assigned is not None:
                value["assigned"] = dict(assigned)
        self.complete(process=process, type=type, value=value)
        return op

    def commit(self, *, process: int, offsets: dict[str, int], type: str = "ok") -> int:
        """A group commit of ``offsets`` ({"topic/partition": offset})."""
        op = self.invoke(process=process, f="commit")
        error = None if type == "ok" else "commit refused"
        self.complete(process=process, type=type, value={"offsets": dict(offsets)}, error=error)
        return op

    def final_read(
        self,
        *,
        records: Records,
        process: int = 1_000_000,
        log_start: Mapping[str, int] | None = None,
    ) -> int:
        op = self.invoke(process=process, f=FINAL_READ)
        value: dict[str, Any] = {"records": _records(records)}
        if log_start is not None:
            value["log-start"] = dict(log_start)
        self.complete(process=process, value=value)
        return op

    def leader(self, *, node: str, epoch: int, partition: int = 0) -> int:
        value = {"topic": self.topic, "partition": partition, "epoch": epoch, "node": node}
        return self._writer.observe(f=LEADER, value=value, node=node, time=self._now())

    def high_watermark(self, *, offset: int, partition: int = 0) -> int:
        value = {"topic": self.topic, "partition": partition, "offset": offset}
        return self._writer.observe(f=HIGH_WATERMARK, value=value, time=self._now())

    def lines(self) -> list[str]:
        """The history so far, one string per line (header first)."""
        self._writer.flush()
        return self._buffer.getvalue().splitlines(keepends=True)

    def text(self) -> str:
        return "".join(self.lines())

    def check(self, *, config: CheckConfig | None = None) -> Result:
        return check_history(self.lines(), config=config or CheckConfig())
