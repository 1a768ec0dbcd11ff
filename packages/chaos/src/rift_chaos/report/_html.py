"""Renders one run as a single self-contained HTML page (inline SVG, no scripts).

Two charts share a time axis: operation latency (log scale, one dot per operation,
coloured by outcome) and throughput (completions per second, stacked by outcome).
Fault windows are shaded on both, so a reader sees what each fault did to the
clients. Below: the verdict, each anomaly the checker found with its explanation,
and the run's statistics. Every string from the run is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rift_chaos.report._samples import FaultWindow, OpSample

WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 1000, 260, 60, 20, 16, 30
COLOURS = {"ok": "#2e9d4f", "fail": "#d0413e", "info": "#e69a19"}
FAULT_COLOURS = ["#8c6bb1", "#3b7dd8", "#c2185b", "#00897b", "#6d4c41"]
MAX_DOTS = 20_000

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1060px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.valid{color:#2e9d4f}.invalid{color:#d0413e}.unknown{color:#e69a19}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5}code{background:#f3f3f3;padding:0 3px}.case{margin:6px 0 12px 12px}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
svg{background:#fcfcfc;border:1px solid #e4e4e4}
"""


def render_report(
    *,
    title: str,
    samples: Sequence[OpSample],
    faults: Sequence[FaultWindow],
    results: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> str:
    """The whole page as a string. ``results`` is the checker's results.json content."""
    t0 = min([s.start_ns for s in samples] + [w.start_ns for w in faults], default=0)
    t1 = max([s.end_ns for s in samples] + [w.end_ns for w in faults], default=t0 + 1)
    span = max(t1 - t0, 1)
    verdict = results.get("valid", "unknown")
    verdict_text = {True: "valid", False: "invalid"}.get(verdict, "unknown")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Verdict: <b class='{verdict_text}'>{verdict_text}</b></p>",
    ]
    if meta:
        parts.append(_table(["setting", "value"], [[k, v] for k, v in meta.items()]))
    parts.append("<h2>Latency</h2>")
    parts.append(_legend(faults))
    parts.append(_latency_chart(samples, faults, t0, span))
    parts.append("<h2>Throughput</h2>")
    parts.append(_throughput_chart(samples, faults, t0, span))
    parts.append(_faults_table(faults, t0))
    parts.append(_anomalies(results))
    stats = results.get("stats") or results.get("statistics")
    if isinstance(stats, Mapping):
        parts.append("<h2>Statistics</h2>")
        parts.append(_table(["statistic", "value"], [[k, v] for k, v in _flatten(stats)]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _x(t_ns: int, t0: int, span: int) -> float:
    return PAD_L + (t_ns - t0) / span * (WIDTH - PAD_L - PAD_R)


def _fault_colour(kind: str, faults: Sequence[FaultWindow]) -> str:
    kinds = sorted({w.kind for w in faults})
    return FAULT_COLOURS[kinds.index(kind) % len(FAULT_COLOURS)] if kind in kinds else "#999"


def _shading(faults: Sequence[FaultWindow], t0: int, span: int) -> list[str]:
    out = []
    for w in faults:
        x0, x1 = _x(w.start_ns, t0, span), _x(w.end_ns, t0, span)
        out.append(
            f"<rect x='{x0:.1f}' y='{PAD_T}' width='{max(x1 - x0, 1):.1f}' "
            f"height='{HEIGHT - PAD_T - PAD_B}' fill='{_fault_colour(w.kind, faults)}' "
            f"opacity='0.13'><title>{_e(w.description)}</title></rect>"
        )
    return out


def _time_axis(t0: int, span: int) -> list[str]:
    seconds = span / 1e9
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if seconds / s <= 12), 1200)
    out = []
    t = 0.0
    while t <= seconds + 1e-9:
        x = _x(t0 + int(t * 1e9), t0, span)
        out.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{HEIGHT - PAD_B}' y2='{HEIGHT - PAD_B + 4}' "
            f"stroke='#888'/><text x='{x:.1f}' y='{HEIGHT - 8}' font-size='11' "
            f"text-anchor='middle'>{t:g}s</text>"
        )
        t += step
    return out


def _svg(body: list[str]) -> str:
    return (
        f"<svg width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}' "
        f"xmlns='http://www.w3.org/2000/svg'>" + "".join(body) + "</svg>"
    )


def _latency_chart(
    samples: Sequence[OpSample], faults: Sequence[FaultWindow], t0: int, span: int
) -> str:
    body = _shading(faults, t0, span) + _time_axis(t0, span)
    if not samples:
        return _svg([*body, "<text x='80' y='60'>no operations</text>"])
    shown = _thin(samples)
    top = max(1.0, *(s.latency_ms for s in shown))
    lo, hi = math.log10(0.1), math.log10(top * 1.2)

    def y(ms: float) -> float:
        v = (math.log10(max(ms, 0.1)) - lo) / (hi - lo)
        return HEIGHT - PAD_B - v * (HEIGHT - PAD_T - PAD_B)

    for decade in range(-1, int(hi) + 1):
        ms = 10.0**decade
        yy = y(ms)
        body.append(
            f"<line x1='{PAD_L}' x2='{WIDTH - PAD_R}' y1='{yy:.1f}' y2='{yy:.1f}' stroke='#eee'/>"
            f"<text x='{PAD_L - 6}' y='{yy + 4:.1f}' font-size='11' "
            f"text-anchor='end'>{ms:g}ms</text>"
        )
    for s in shown:
        body.append(
            f"<circle cx='{_x(s.start_ns, t0, span):.1f}' cy='{y(s.latency_ms):.1f}' r='1.6' "
            f"fill='{COLOURS.get(s.type, '#555')}'/>"
        )
    return _svg(body)


def _thin(samples: Sequence[OpSample]) -> list[OpSample]:
    """Every failure and unknown, and an evenly spaced subset of the rest."""
    if len(samples) <= MAX_DOTS:
        return list(samples)
    rare = [s for s in samples if s.type != "ok"]
    ok = [s for s in samples if s.type == "ok"]
    keep = max(MAX_DOTS - len(rare), 1)
    stride = max(len(ok) // keep, 1)
    return rare[:MAX_DOTS] + ok[::stride]


def _throughput_chart(
    samples: Sequence[OpSample], faults: Sequence[FaultWindow], t0: int, span: int
) -> str:
    body = _shading(faults, t0, span) + _time_axis(t0, span)
    buckets = max(math.ceil(span / 1e9), 1)
    counts = [dict.fromkeys(COLOURS, 0) for _ in range(buckets)]
    for s in samples:
        i = min(int((s.end_ns - t0) / 1e9), buckets - 1)
        counts[i][s.type if s.type in COLOURS else "info"] += 1
    peak = max([sum(c.values()) for c in counts] + [1])
    bar_w = (WIDTH - PAD_L - PAD_R) / buckets
    scale = (HEIGHT - PAD_T - PAD_B) / peak
    body.append(
        f"<text x='{PAD_L - 6}' y='{PAD_T + 10}' font-size='11' text-anchor='end'>{peak}/s</text>"
    )
    for i, c in enumerate(counts):
        base = float(HEIGHT - PAD_B)
        for kind in ("ok", "info", "fail"):
            h = c[kind] * scale
            if h <= 0:
                continue
            base -= h
            body.append(
                f"<rect x='{PAD_L + i * bar_w:.1f}' y='{base:.1f}' width='{max(bar_w - 1, 1):.1f}' "
                f"height='{h:.1f}' fill='{COLOURS[kind]}'><title>{c[kind]} {kind}</title></rect>"
            )
    return _svg(body)


def _legend(faults: Sequence[FaultWindow]) -> str:
    items = [
        f"<span><i class='sw' style='background:{c}'></i>{k}</span>" for k, c in COLOURS.items()
    ]
    for kind in sorted({w.kind for w in faults}):
        colour = _fault_colour(kind, faults)
        items.append(
            f"<span><i class='sw' style='background:{colour};opacity:.35'></i>{_e(kind)}</span>"
        )
    return "<div class='legend'>" + "".join(items) + "</div>"


def _faults_table(faults: Sequence[FaultWindow], t0: int) -> str:
    if not faults:
        return "<h2>Faults</h2><p>none</p>"
    rows = [
        [w.kind, w.description, f"{(w.start_ns - t0) / 1e9:.2f}s", f"{(w.end_ns - t0) / 1e9:.2f}s"]
        for w in faults
    ]
    return "<h2>Faults</h2>" + _table(["fault", "what", "from", "to"], rows)


def _anomalies(results: Mapping[str, Any]) -> str:
    """Each check that found something: its cases, explanations and proof ops.

    Reads the checker's results.json shape (``checks: {name: {status, count,
    cases: [{ops, explanation, steps}]}}``); a plain ``anomalies: {name: [case]}``
    mapping is accepted too, for other tools' results.
    """
    checks = results.get("checks")
    if isinstance(checks, Mapping):
        found = [
            (str(name), c.get("status", ""), int(c.get("count", 0)), list(c.get("cases") or []))
            for name, c in checks.items()
            if isinstance(c, Mapping) and int(c.get("count", 0))
        ]
    else:
        raw = results.get("anomalies") or {}
        items = raw.items() if isinstance(raw, Mapping) else _group(raw)
        found = []
        for name, cases in items:
            listed = list(cases) if isinstance(cases, Sequence) else [cases]
            found.append((str(name), "anomaly", len(listed), listed))
    if not found:
        return "<h2>Anomalies</h2><p>none found</p>"
    parts = ["<h2>Anomalies</h2>"]
    for name, status, count, cases in found:
        parts.append(f"<h3>{_e(name)} — {count} ({_e(status)})</h3>")
        for case in cases[:20]:
            if isinstance(case, Mapping):
                text = case.get("explanation") or case.get("message") or ""
                ops = case.get("ops") or case.get("op_indexes") or []
                steps = "".join(f"<li>{_e(step)}</li>" for step in case.get("steps") or [])
                parts.append(
                    f"<div class='case'>{_e(text)}"
                    + (f"<ol>{steps}</ol>" if steps else "<br>")
                    + f"<small>operations: <code>{_e(ops)}</code></small></div>"
                )
            else:
                parts.append(f"<div class='case'>{_e(case)}</div>")
        if count > min(len(cases), 20):
            parts.append(f"<p>… {count - min(len(cases), 20)} more (see results.json)</p>")
    return "".join(parts)


def _group(anomalies: Any) -> list[tuple[str, list[Any]]]:
    grouped: dict[str, list[Any]] = {}
    for case in anomalies:
        name = case.get("check", "anomaly") if isinstance(case, Mapping) else "anomaly"
        grouped.setdefault(str(name), []).append(case)
    return list(grouped.items())


def _flatten(stats: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in stats.items():
        if isinstance(v, Mapping):
            out.extend(_flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
