"""Run ``ip`` (iproute2) from the control process, translating failures."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from rift_chaos.errors import RemoteError

__all__ = ["ip", "have_ip"]

_TIMEOUT = 30.0


def have_ip() -> bool:
    return shutil.which("ip") is not None


def ip(args: Sequence[str], *, check: bool = True) -> str:
    """Run ``ip ARGS`` in the control process's namespace and return its stdout."""
    try:
        done = subprocess.run(
            ("ip", *args), capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RemoteError(f"ip {' '.join(args)}: {exc}") from exc
    if check and done.returncode != 0:
        raise RemoteError(f"ip {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout
