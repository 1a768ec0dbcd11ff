"""Root pytest hooks shared by every package's tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage_after_integration_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect garbage when an integration test ends, so a resource it leaked (an
    unclosed socket, loop or file) fails that test and not whichever test the
    collector happens to run in later."""
    yield
    if request.node.get_closest_marker("integration") is not None:
        gc.collect()
