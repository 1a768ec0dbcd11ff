"""rift_checker: proves or refutes a log's promises from a history of operations.

The checker knows nothing of how a history was made. Write one with
:class:`HistoryWriter` (or any tool that follows HISTORY.md), then::

    result = check_history("run/history.jsonl", config=CheckConfig(tolerate={"duplicate"}))
    result.valid            # True, False or "unknown"
    result.write_json("run/results.json")

Read one back lazily with :class:`HistoryReader`; turn the op ids of a case back
into operations with :func:`fetch_ops`; show a result with :func:`render`.

Also here: :func:`generate_history` (valid histories from a model log, for tests
and benchmarks), :func:`history_graph` (the full networkx history graph of a small
history), ``rift_checker.testing.HistoryBuilder`` (small histories in memory, for
tests), ``rift_checker.cli.main`` (the ``rift-check`` command; the toolkit
re-exports it) and ``python -m rift_checker.bench``.
"""

from __future__ import annotations

from rift_checker.check import check_history
from rift_checker.config import CHECKS, CheckConfig
from rift_checker.errors import CheckerError, InvalidConfig, InvalidHistory
from rift_checker.graph import history_graph
from rift_checker.history import (
    ASSIGN,
    COMMIT,
    FINAL_READ,
    HIGH_WATERMARK,
    HISTORY_VERSION,
    LEADER,
    NEMESIS,
    POLL,
    SEND,
    SUBSCRIBE,
    Event,
    Op,
    split_tp,
    tp_key,
)
from rift_checker.reader import HistoryReader, HistorySource, fetch_ops
from rift_checker.render import print_result, render, shown_op_ids
from rift_checker.results import RESULTS_VERSION, Case, CheckResult, Result, Validity
from rift_checker.synth import generate_history
from rift_checker.writer import HistoryWriter

__all__ = [
    # checking
    "check_history",
    "CheckConfig",
    "CHECKS",
    "Result",
    "CheckResult",
    "Case",
    "Validity",
    "RESULTS_VERSION",
    "render",
    "print_result",
    "shown_op_ids",
    "history_graph",
    # histories
    "HistoryWriter",
    "HistoryReader",
    "HistorySource",
    "fetch_ops",
    "Event",
    "Op",
    "HISTORY_VERSION",
    "SEND",
    "POLL",
    "FINAL_READ",
    "ASSIGN",
    "SUBSCRIBE",
    "COMMIT",
    "LEADER",
    "HIGH_WATERMARK",
    "NEMESIS",
    "tp_key",
    "split_tp",
    "generate_history",
    # errors
    "CheckerError",
    "InvalidHistory",
    "InvalidConfig",
]
