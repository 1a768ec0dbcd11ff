"""Rich terminal rendering of a Result: verdict, counts per check, first cases."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rift_checker.history import Event, Op
from rift_checker.results import Result

__all__ = ["render", "print_result", "shown_op_ids", "describe_op"]

_STYLE = {
    "ok": "green",
    "anomaly": "bold red",
    "tolerated": "yellow",
    "unknown": "magenta",
    "skipped": "dim",
}


def _verdict(result: Result) -> Text:
    if result.valid is True:
        return Text("VALID", style="bold green")
    if result.valid is False:
        return Text("INVALID", style="bold red")
    return Text("UNKNOWN", style="bold magenta")


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_op(item: Op | Event) -> str:
    """One line for an op or observation: who did what, and how it ended."""
    if isinstance(item, Event):
        return f"observe {item.f} {_short(item.value)} (from {item.node or '?'})"
    where = f"process {item.process}" + (f" on {item.invoke.node}" if item.invoke.node else "")
    head = f"{where}: {item.f} {_short(item.invoke.value)}"
    done = item.completion
    if done is None:
        return f"{head} -> never completed (info)"
    tail = _short(done.value) if done.type == "ok" else (done.error or "")
    return f"{head} -> {done.type} {tail}".rstrip()


def shown_op_ids(result: Result, *, cases_per_check: int = 3) -> set[int]:
    """The op ids :func:`render` would show, to fetch them with ``fetch_ops``."""
    return {op for c in result.checks for case in c.cases[:cases_per_check] for op in case.ops}


def render(
    result: Result,
    *,
    cases_per_check: int = 3,
    ops: Mapping[int, Op | Event] | None = None,
) -> RenderableType:
    """A rich renderable: the verdict table and the first cases of each anomaly.

    With ``ops`` (from :func:`~rift_checker.fetch_ops` of :func:`shown_op_ids`),
    each case also lists its proof operations in full.
    """
    stats = result.statistics
    table = Table(title="rift-check", title_justify="left", show_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("cases", justify="right")
    table.add_column("what it finds", style="dim")
    for c in result.checks:
        count = str(c.count) if c.count else ("-" if c.status == "skipped" else "0")
        if c.unknown:
            count += f" (+{c.unknown} unknown)"
        table.add_row(c.name, Text(c.status, style=_STYLE[c.status]), count, c.description)
    by_type = stats.get("by_type", {})
    summary = Text.assemble(
        ("verdict: ", "bold"),
        _verdict(result),
        f"   ops {stats.get('ops', 0)} (ok {by_type.get('ok', 0)}, fail "
        f"{by_type.get('fail', 0)}, info {by_type.get('info', 0)})",
        f"   {stats.get('throughput_ok_per_s', 0.0):.1f} ok ops/s",
    )
    parts: list[RenderableType] = [summary, table]
    for reason in result.unknown_reasons:
        parts.append(Text(f"unknown: {reason}", style="magenta"))
    for c in result.checks:
        if not c.cases:
            continue
        lines = Text()
        for case in c.cases[:cases_per_check]:
            lines.append(f"ops {', '.join(map(str, case.ops))}: ", style="bold")
            lines.append(case.explanation + "\n")
            for i, step in enumerate(case.steps, 1):
                lines.append(f"    {i}. {step}\n", style="dim")
            if ops is not None:
                for op in case.ops:
                    item = ops.get(op)
                    if item is not None:
                        lines.append(f"    op {op}: {describe_op(item)}\n", style="cyan")
        lines.rstrip()
        more = c.count - min(cases_per_check, len(c.cases))
        if more > 0:
            lines.append(f"... and {more} more (see results.json)\n", style="dim")
        parts.append(
            Panel(
                lines,
                title=f"{c.name} ({c.count})",
                title_align="left",
                border_style=_STYLE[c.status],
            )
        )
    return Group(*parts)


def print_result(
    result: Result,
    *,
    console: Console | None = None,
    cases_per_check: int = 3,
    ops: Mapping[int, Op | Event] | None = None,
) -> None:
    """Print :func:`render` of ``result`` to ``console`` (default: stdout)."""
    (console or Console()).print(render(result, cases_per_check=cases_per_check, ops=ops))
