"""``python -m rift_chaos`` is ``chaos``."""

from __future__ import annotations

import sys

from rift_chaos.cli import main

sys.exit(main())
