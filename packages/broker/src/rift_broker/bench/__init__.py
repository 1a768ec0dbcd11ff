"""Benchmark commands: they print figures, they never assert timings."""
