"""The HTML report: pairing ops, fault windows, and a page that says what happened."""

from __future__ import annotations

from html.parser import HTMLParser

from rift_chaos.report import fault_windows, op_samples, render_report

S = 1_000_000_000


def history() -> list[dict]:
    ops: list[dict] = []
    for i in range(50):
        t = i * S // 10
        ops.append({"type": "invoke", "f": "send", "process": i % 3, "time": t})
        kind = "ok" if i % 10 else ("info" if i % 20 else "fail")
        ops.append({"type": kind, "f": "send", "process": i % 3, "time": t + 2_000_000})
    ops.append({"type": "invoke", "f": "poll", "process": 7, "time": 4 * S})  # never completed
    ops.append({"type": "info", "f": "partition", "process": "nemesis", "time": 2 * S})
    return ops


def test_pairs_invocations_with_completions_and_closes_open_ones_as_info() -> None:
    samples = op_samples(history())
    assert len(samples) == 51
    kinds = [s.type for s in samples]
    assert kinds.count("fail") == 3
    assert kinds.count("info") == 3  # two timed out, one never completed
    assert all(abs(s.latency_ms - 2.0) < 1e-9 for s in samples if s.f == "send")


def test_fault_windows_from_start_end_events() -> None:
    timeline = [
        {"time": 1 * S, "phase": "start", "kind": "partition", "description": "halves"},
        {"time": 3 * S, "phase": "end", "kind": "partition"},
        {"time": 4 * S, "phase": "start", "kind": "kill", "description": "kill n2"},
    ]
    windows = fault_windows(timeline, end_ns=5 * S)
    assert [(w.kind, w.start_ns, w.end_ns) for w in windows] == [
        ("partition", 1 * S, 3 * S),
        ("kill", 4 * S, 5 * S),
    ]
    assert windows[0].description == "halves"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_page_shows_verdict_charts_faults_and_escaped_anomalies() -> None:
    results = {
        "valid": False,
        "anomalies": {
            "lost-write": [
                {
                    "explanation": "value <v-17> was acknowledged at offset 4 but never read",
                    "ops": [3, 9],
                }
            ]
        },
        "stats": {"ops": {"ok": 45, "fail": 3}},
    }
    windows = fault_windows(
        [{"start": 1 * S, "end": 3 * S, "kind": "partition", "description": "isolate n1"}],
        end_ns=5 * S,
    )
    page = render_report(
        title="partition run", samples=op_samples(history()), faults=windows, results=results
    )
    parser = _Collect()
    parser.feed(page)
    text = " ".join(parser.text)
    assert parser.tags.count("svg") == 2
    assert parser.tags.count("circle") == 51
    assert "invalid" in text
    assert "isolate n1" in text
    assert "value <v-17> was acknowledged" in text  # parsed back: it was escaped
    assert "<v-17>" not in page
    assert "ops.ok" in text


def test_checker_results_shape_with_cycle_steps() -> None:
    results = {
        "valid": False,
        "checks": {
            "cycle": {
                "status": "anomaly",
                "count": 1,
                "cases": [
                    {
                        "ops": [4, 10],
                        "explanation": "a cycle of 2 operations",
                        "steps": [
                            "op 4 precedes op 10 because ...",
                            "op 10 precedes op 4 because ...",
                        ],
                    }
                ],
            },
            "duplicate": {"status": "ok", "count": 0, "cases": []},
        },
    }
    page = render_report(title="r", samples=[], faults=[], results=results)
    parser = _Collect()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "cycle — 1 (anomaly)" in text
    assert parser.tags.count("li") == 2
    assert "duplicate" not in text


def test_empty_run_renders() -> None:
    page = render_report(title="empty", samples=[], faults=[], results={"valid": "unknown"})
    assert "no operations" in page
    assert "unknown" in page
