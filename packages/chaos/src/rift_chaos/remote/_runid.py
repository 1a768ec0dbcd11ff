"""Run ids: the tag on everything a run creates.

A run id is 1-10 lowercase letters or digits, short enough that the names derived
from it fit Linux's 15-byte interface names (``rift<runid>``) and iptables' 28-byte
chain names (``RIFT-<runid>``).
"""

from __future__ import annotations

import re
import secrets

__all__ = ["RUN_ID_PATTERN", "new_run_id", "validate_run_id"]

RUN_ID_PATTERN = re.compile(r"[a-z0-9]{1,10}")


def new_run_id() -> str:
    """A fresh random run id (8 hex digits)."""
    return secrets.token_hex(4)


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` unchanged, or raise ``ValueError`` saying what a run id is."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r} must be 1-10 lowercase letters or digits")
    return run_id
