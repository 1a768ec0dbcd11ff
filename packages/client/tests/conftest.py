"""Shared test setup for rift_client."""

from __future__ import annotations

import warnings

# kafka-python (an independent decoder in our tests) uses importlib APIs that
# newer Pythons deprecate; import it once here, where the warning is expected.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.partitioner.default
    import kafka.record.default_records  # noqa: F401
