"""The history model: the values a history file is made of.

A history is a header and then *events*, one JSON object per line (HISTORY.md has
the full schema). Events come in two kinds:

* an **operation** is an ``invoke`` event and later a completion event of the same
  ``process`` and ``f`` whose ``type`` is ``ok`` (it happened), ``fail`` (it
  certainly did not happen) or ``info`` (unknown). An invoke with no completion by
  the end of the file counts as ``info``. A process whose operation ended ``info``
  never appears again: its operation may still take effect at any later time.
* an **observation** (``type == "observe"``) is a fact the system under test
  reported: who led a partition at which epoch, how far a high watermark got.

An operation is named by the index of its invoke event (:attr:`Op.id`), so a case
of an anomaly lists op ids that point straight at lines of the file
(line number = index + 2, the header being line 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "HISTORY_VERSION",
    "HEADER_KEY",
    "INVOKE",
    "OK",
    "FAIL",
    "INFO",
    "OBSERVE",
    "COMPLETIONS",
    "EVENT_TYPES",
    "NEMESIS",
    "SEND",
    "POLL",
    "FINAL_READ",
    "ASSIGN",
    "SUBSCRIBE",
    "COMMIT",
    "CLIENT_FS",
    "LEADER",
    "HIGH_WATERMARK",
    "OBSERVATION_FS",
    "Event",
    "Op",
    "tp_key",
    "split_tp",
]

HISTORY_VERSION: Final = 1
HEADER_KEY: Final = "rift_history"

INVOKE: Final = "invoke"
OK: Final = "ok"
FAIL: Final = "fail"
INFO: Final = "info"
OBSERVE: Final = "observe"
COMPLETIONS: Final = frozenset({OK, FAIL, INFO})
EVENT_TYPES: Final = frozenset({INVOKE, OK, FAIL, INFO, OBSERVE})

#: The process of nemesis operations; they may use any ``f`` and are not checked.
NEMESIS: Final = "nemesis"

SEND: Final = "send"
POLL: Final = "poll"
FINAL_READ: Final = "final-read"
ASSIGN: Final = "assign"
SUBSCRIBE: Final = "subscribe"
COMMIT: Final = "commit"
CLIENT_FS: Final = frozenset({SEND, POLL, FINAL_READ, ASSIGN, SUBSCRIBE, COMMIT})

LEADER: Final = "leader"
HIGH_WATERMARK: Final = "high-watermark"
OBSERVATION_FS: Final = frozenset({LEADER, HIGH_WATERMARK})


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One line of a history after the header."""

    index: int
    time: int
    type: str
    f: str
    process: int | str | None = None
    node: str | None = None
    value: Any = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this event, keys in schema order."""
        return {
            "index": self.index,
            "time": self.time,
            "type": self.type,
            "process": self.process,
            "node": self.node,
            "f": self.f,
            "value": self.value,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """An operation: its invoke event and its completion (``None``: never completed)."""

    invoke: Event
    completion: Event | None = None

    @property
    def id(self) -> int:
        """The index of the invoke event; what cases of anomalies refer to."""
        return self.invoke.index

    @property
    def process(self) -> int | str | None:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def type(self) -> str:
        """``ok``, ``fail`` or ``info`` (an operation that never completed is ``info``)."""
        return INFO if self.completion is None else self.completion.type

    @property
    def value(self) -> Any:
        """The completion's value when it is ok, else the invoked value."""
        if self.completion is not None and self.completion.type == OK:
            return self.completion.value
        return self.invoke.value

    @property
    def latency(self) -> int | None:
        """Nanoseconds from invoke to completion, ``None`` if it never completed."""
        return None if self.completion is None else self.completion.time - self.invoke.time


def tp_key(topic: str, partition: int) -> str:
    """The ``"topic/partition"`` key used in poll records (topic names have no ``/``)."""
    return f"{topic}/{partition}"


def split_tp(key: str) -> tuple[str, int]:
    """Inverse of :func:`tp_key`; raises ``ValueError`` on a malformed key."""
    topic, sep, partition = key.rpartition("/")
    if not sep or not topic or not partition.isdigit():
        raise ValueError(f"partition key {key!r} is not 'topic/partition'")
    return topic, int(partition)
