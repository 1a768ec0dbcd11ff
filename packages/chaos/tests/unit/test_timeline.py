from __future__ import annotations

import json

from rift_chaos.nemesis import FaultWindow, Timeline


def test_windows_pair_starts_with_ends() -> None:
    t = Timeline()
    t.start("partition", time=10, value={"g": 1})
    t.start("kill", time=12, node="n1")
    assert t.end("partition", time=20)
    assert not t.end("partition", time=21)  # nothing open: nothing recorded
    assert [w.kind for w in t.active()] == ["kill"]
    assert t.windows() == [
        FaultWindow(kind="partition", start=10, end=20, value={"g": 1}),
        FaultWindow(kind="kill", start=12, end=None, node="n1"),
    ]


def test_restarting_an_open_fault_ends_it_first() -> None:
    t = Timeline()
    t.start("partition", time=1)
    t.start("partition", time=5)
    assert [(w.start, w.end) for w in t.windows()] == [(1, 5), (5, None)]


def test_end_all_and_jsonl() -> None:
    t = Timeline()
    t.start("pause", time=1, node="n2")
    t.start("pause", time=2, node="n1")
    t.end_all(time=9)
    assert t.active() == []
    lines = [json.loads(x) for x in t.to_jsonl().splitlines()]
    assert lines[-2:] == [
        {"time": 9, "kind": "pause", "phase": "end", "node": "n1"},
        {"time": 9, "kind": "pause", "phase": "end", "node": "n2"},
    ]
    copy = Timeline()
    copy.extend(t.events)
    assert copy.windows() == t.windows()
