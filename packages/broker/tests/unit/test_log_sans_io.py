"""DESIGN.md Rule 1: the log's decision modules import no asyncio, time, random or
socket; only the asyncio driver (and the benchmark) may."""

from __future__ import annotations

import ast
from pathlib import Path

import rift_broker.log

FORBIDDEN = {"asyncio", "time", "random", "socket", "threading", "os"}
DRIVERS = {"async_group_commit.py"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_log_core_modules_are_sans_io() -> None:
    package = Path(rift_broker.log.__file__).parent
    modules = sorted(p for p in package.glob("*.py") if p.name not in DRIVERS)
    assert len(modules) > 10
    for module in modules:
        assert not imported_roots(module) & FORBIDDEN, module.name
