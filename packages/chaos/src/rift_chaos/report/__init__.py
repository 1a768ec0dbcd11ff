"""The per-run HTML report: latency and throughput over time, faults shaded, anomalies explained."""

from __future__ import annotations

from rift_chaos.report._html import render_report
from rift_chaos.report._samples import FaultWindow, OpSample, fault_windows, op_samples

__all__ = ["render_report", "OpSample", "FaultWindow", "op_samples", "fault_windows"]
