"""Generators: pure, seeded schedules of client operations and nemesis events."""

from __future__ import annotations

from rift_chaos.generator.schedule import NS, client_ops, generate, nemesis_ops, schedule
from rift_chaos.generator.spec import (
    CLIENT_FS,
    NEMESIS_KINDS,
    PARTITION_KINDS,
    SCHEDULES,
    TARGETS,
    ClientSpec,
    NemesisSpec,
)

__all__ = [
    "ClientSpec",
    "NemesisSpec",
    "CLIENT_FS",
    "NEMESIS_KINDS",
    "PARTITION_KINDS",
    "SCHEDULES",
    "TARGETS",
    "NS",
    "generate",
    "schedule",
    "client_ops",
    "nemesis_ops",
]
