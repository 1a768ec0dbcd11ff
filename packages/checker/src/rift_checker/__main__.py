"""``python -m rift_checker PATH``: the same as ``rift-check PATH``."""

from __future__ import annotations

import sys

from rift_checker.cli import main

sys.exit(main())
