"""Hypothesis: valid histories from a model log pass; each planted anomaly is found.

Histories come from rift_checker.synth (concurrent workers, interleaved invokes and
completions, fail/info outcomes, rebalances, observations, a final read). A plant
edits the parsed events, then renumbers indexes and times, so the result is
still a well-formed history; tags (an extra key readers ignore) locate the proof
ops after renumbering.
"""

from __future__ import annotations

import io
import json
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rift_checker import CHECKS, check_history
from rift_checker.graph import history_graph
from rift_checker.synth import generate_history

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

params = st.fixed_dictionaries(
    {
        "ops": st.integers(2, 120),
        "seed": st.integers(0, 2**32),
        "workers": st.integers(1, 6),
        "partitions": st.integers(1, 3),
        "fail_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "info_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "max_poll": st.integers(0, 4),
        "observe_rate": st.sampled_from([0.0, 0.2]),
    }
)


def _events(p: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    buf = io.StringIO()
    generate_history(buf, **p)
    header, *lines = buf.getvalue().splitlines()
    return header, [json.loads(line) for line in lines]


def _text(header: str, events: list[dict[str, Any]]) -> list[str]:
    for i, e in enumerate(events):
        e["index"] = i
        e["time"] = i
    return [header + "\n"] + [json.dumps(e) + "\n" for e in events]


def _tagged(events: list[dict[str, Any]], tag: str) -> int:
    return next(e["index"] for e in events if e.get("tag") == tag)


def _final(events):
    return events[-1]["value"]["records"]


def _acked(events):
    """(invoke, completion) of ok sends."""
    inv: dict[Any, dict[str, Any]] = {}
    out = []
    for e in events:
        if e["type"] == "invoke":
            inv[e["process"]] = e
        elif e["type"] in ("ok", "fail", "info"):
            i = inv.pop(e["process"])
            if e["f"] == "send" and e["type"] == "ok":
                out.append((i, e))
    return out


def _pair(process, f, value, result, tag, type_="ok"):
    return [
        {"type": "invoke", "process": process, "f": f, "value": value, "tag": tag},
        {"type": type_, "process": process, "f": f, "value": result},
    ]


def _send(process, tp, value, offset, tag):
    topic, partition = tp.split("/")
    v = {"topic": topic, "partition": int(partition), "value": value}
    return _pair(process, "send", v, {**v, "offset": offset}, tag)


@SETTINGS
@given(params)
def test_valid_histories_pass_every_check(p):
    header, events = _events(p)
    result = check_history(_text(header, events))
    assert result.anomalies == {}, [c.explanation for c in result.cases()]
    assert result.valid is True


@SETTINGS
@given(params)
def test_cycle_criterion_agrees_with_the_full_graph(p):
    header, events = _events(p)
    lines = _text(header, events)
    assert nx.is_directed_acyclic_graph(history_graph(lines))
    # Now plant a real-time contradiction and compare again.
    final = _final(events)
    tp = next(iter(final))
    top = len(final[tp])
    planted = _send(10_000, tp, "x", top + 1, "x") + _send(10_001, tp, "y", top, "y")
    final[tp] += [[top, "y"], [top + 1, "x"]]
    events[-2:-2] = planted
    lines = _text(header, events)
    assert not nx.is_directed_acyclic_graph(history_graph(lines))
    assert check_history(lines).check("cycle").count >= 1


def _plant(kind: str, header: str, events: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """Plant one anomaly of ``kind``; return the history and the tags of its proof ops."""
    final = _final(events)
    tp = next(k for k, recs in final.items() if recs) if any(final.values()) else "t/0"
    recs = final.get(tp, [])
    top = len(recs)
    events[-2]["tag"] = "final"
    if kind in ("lost-write", "unseen", "failed-write-read"):
        acked = _acked(events)
        tops = {k: r[-1][1] for k, r in final.items() if r}
        if kind == "unseen":
            acked = [(i, d) for i, d in acked if d["value"]["value"] in tops.values()]
        elif kind == "lost-write":
            acked = [(i, d) for i, d in acked if d["value"]["value"] not in tops.values()]
        assume(acked)
        inv, done = acked[0]
        inv["tag"] = "w"
        value = inv["value"]["value"]
        if kind == "failed-write-read":
            done["type"] = "fail"
            done["value"] = None
            done["error"] = "planted"
            return _text(header, events), {"w"}
        for e in events:
            if e["type"] == "ok" and e["f"] in ("poll", "final-read"):
                for k, r in e["value"]["records"].items():
                    e["value"]["records"][k] = [x for x in r if x[1] != value]
        return _text(header, events), {"w"}
    if kind == "duplicate":
        assume(recs)
        recs.append([top, recs[0][1]])
        return _text(header, events), {"final"}
    if kind == "inconsistent-offsets":
        # Overwrite, in the final read only, an offset that an ack also vouches for.
        acked = {(f"t/{d['value']['partition']}", d["value"]["offset"]) for _, d in _acked(events)}
        spots = [
            (k, i) for k, r in final.items() for i, rec in enumerate(r) if (k, rec[0]) in acked
        ]
        assume(spots)
        k, i = spots[0]
        final[k][i][1] = "planted"
        return _text(header, events), {"final"}
    if kind in ("nonmonotonic-send", "cycle"):
        other = 10_000 if kind == "nonmonotonic-send" else 10_001
        planted = _send(10_000, tp, "x", top + 1, "a") + _send(other, tp, "y", top, "b")
        recs += [[top, "y"], [top + 1, "x"]]
        final[tp] = recs
        events[-2:-2] = planted
        return _text(header, events), {"a", "b"}
    if kind in ("nonmonotonic-poll", "poll-skip"):
        assume(len(recs) >= 3)
        read = [recs[1], recs[0]] if kind == "nonmonotonic-poll" else [recs[0], recs[2]]
        events[-2:-2] = _pair(10_000, "poll", None, {"records": {tp: read}}, "poll")
        return _text(header, events), {"poll"}
    if kind == "lost-commit":
        # The group committed past the start of the log, then a member was handed the
        # partition back at its start.
        commit = {"offsets": {tp: top + 1}}
        events[-2:-2] = _pair(10_000, "commit", None, commit, "commit") + _pair(
            10_001, "poll", None, {"records": {}, "assigned": {tp: 0}}, "poll"
        )
        return _text(header, events), {"commit", "poll"}
    topic, partition = tp.split("/")
    key = {"topic": topic, "partition": int(partition)}
    if kind == "multiple-leaders":
        obs = [
            {"type": "observe", "f": "leader", "value": {**key, "epoch": 99, "node": n}, "tag": n}
            for n in ("n1", "n2")
        ]
        events[-2:-2] = obs
        return _text(header, events), {"n1", "n2"}
    assert kind == "hw-regression"
    obs = [
        {"type": "observe", "f": "high-watermark", "value": {**key, "offset": o}, "tag": str(o)}
        for o in (10**9, 10**9 - 1)
    ]
    events[-2:-2] = obs
    return _text(header, events), {str(10**9), str(10**9 - 1)}


@pytest.mark.parametrize("kind", sorted(CHECKS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=params)
def test_planted_anomaly_is_found_with_its_proof(p, kind):
    header, events = _events(p)
    lines, tags = _plant(kind, header, events)
    result = check_history(lines)
    assert result.valid is False
    cases = result.cases(kind)
    assert cases, f"{kind} not found; found {result.anomalies}"
    proof = {_tagged(events, t) for t in tags}
    assert any(proof <= set(c.ops) for c in cases), (proof, [c.ops for c in cases])
    assert all(c.explanation for c in cases)


@SETTINGS
@given(params, st.data())
def test_cycle_criterion_agrees_after_swapping_two_writes(p, data):
    # Swap where two acknowledged values sit in one partition (acks and reads alike):
    # the log stays self-consistent, but real time may now contradict it. The
    # linear criterion must agree with the full networkx graph either way.
    header, events = _events(p)
    acked = _acked(events)
    by_tp: dict[str, list[Any]] = {}
    for inv, done in acked:
        by_tp.setdefault(f"t/{done['value']['partition']}", []).append((inv, done))
    candidates = [pairs for pairs in by_tp.values() if len(pairs) >= 2]
    assume(candidates)
    pairs = data.draw(st.sampled_from(candidates))
    i, j = data.draw(st.lists(st.integers(0, len(pairs) - 1), min_size=2, max_size=2, unique=True))
    (_, d1), (_, d2) = pairs[i], pairs[j]
    d1["value"]["offset"], d2["value"]["offset"] = d2["value"]["offset"], d1["value"]["offset"]
    v1, v2 = d1["value"]["value"], d2["value"]["value"]
    for e in events:
        if e["type"] == "ok" and e["f"] in ("poll", "final-read"):
            for recs in e["value"]["records"].values():
                for rec in recs:
                    rec[1] = {v1: v2, v2: v1}.get(rec[1], rec[1])
    lines = _text(header, events)
    acyclic = nx.is_directed_acyclic_graph(history_graph(lines))
    assert (check_history(lines).check("cycle").count == 0) == acyclic
