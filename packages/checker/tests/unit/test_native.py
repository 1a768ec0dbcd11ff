"""The native core (rift_checker/_native.c) is built, takes what it should, and is exact.

Whether its pass agrees with the Python one is tested with the other fast paths, in
test_decoding.py; here: that it exists, that it does take the bulk of a history
(a core that left every event to Python would agree and be slow), and its two
helpers, the block shape test and the sort.
"""

from __future__ import annotations

import io
from array import array

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rift_checker._analyzer as analyzer
import rift_checker._decode as decode
import rift_checker.stats as stats
from rift_checker import check_history
from rift_checker.synth import generate_history

try:
    from rift_checker import _native
except ImportError:  # reported by the first test, which fails
    _native = None  # type: ignore[assignment]

needs_native = pytest.mark.skipif(_native is None, reason="the native core is not built")


def test_the_native_core_is_built():
    assert _native is not None, (
        "rift_checker._native did not build: the checker runs, in pure Python and slower; "
        "install a C compiler and the Python headers (gcc, python3-dev) and reinstall"
    )
    assert analyzer._native_run is _native.run


@needs_native
def test_the_native_core_takes_the_bulk_of_a_history(monkeypatch):
    buf = io.StringIO()
    generate_history(buf, seed=11, ops=3000, workers=6, partitions=4)
    lines = buf.getvalue().splitlines(keepends=True)
    by_python = 0
    events = analyzer._Pass.events

    def counted(self, batch, typed):
        nonlocal by_python
        by_python += len(batch)
        return events(self, batch, typed)

    monkeypatch.setattr(analyzer._Pass, "events", counted)
    result = check_history(lines)
    assert result.valid is True
    total = result.statistics["events"]
    # Every line of this history is typed (no nemesis ops), so the core takes all.
    assert by_python == 0, (by_python, total)


def test_without_the_core_the_checker_gives_the_same_results(monkeypatch):
    # As on a machine without a C compiler: the Python pass, every block split into
    # lines, the latencies sorted as a list.
    buf = io.StringIO()
    generate_history(buf, seed=5, ops=2000, workers=5, partitions=3, fail_rate=0.1)
    lines = buf.getvalue().splitlines(keepends=True)
    with_core = check_history(lines).to_dict()
    monkeypatch.setattr(analyzer, "_native_run", None)
    monkeypatch.setattr(decode, "_object_lines", None)
    monkeypatch.setattr(stats, "_sort_q", None)
    assert check_history(lines).to_dict() == with_core
    assert with_core["statistics"]["latency_ms"]["send"]["count"] > 500


_INVOKE = b'{"index":%d,"time":0,"type":"invoke","process":%d,"f":"poll"}'


@needs_native
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [_INVOKE % (0, 0), _INVOKE % (1, 1), b"{", b"}", b"\n", b" ", b'"', b"{}", b"[]"]
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_block_decodes_as_its_lines_one_by_one(pieces):
    block = b"".join(pieces)
    if not block.endswith(b"\n"):
        block += b"\n"
    model = msgspec.json.Decoder(decode.ModelLine)
    lines = block.split(b"\n")[:-1]

    def shown(items):
        return [repr(x) if isinstance(x, ValueError) else x for x in items]

    assert shown(decode.decode_block(block, model)) == shown(decode.decode_lines(lines, model))


@needs_native
@pytest.mark.parametrize(
    ("block", "count"),
    [
        (b"{}\n", 1),
        (b'{"a":1}\n{"b":2}\n', 2),
        (b'{"a":1}\n {"b":2}\n', -1),
        (b'{"a":1} \n', -1),
        (b'{"a":1}\n\n{"b":2}\n', -1),
        (b'{"a":\n1}\n', -1),
        (b'{"a":1}', -1),
        (b"", -1),
        (b"[1]\n", -1),
    ],
)
def test_object_lines_counts_lines_of_one_object_shape(block, count):
    assert _native.object_lines(block) == count


@needs_native
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=300))
def test_sort_q_sorts_like_sorted(values):
    a = array("q", values)
    _native.sort_q(a)
    assert a.tolist() == sorted(values)


@needs_native
def test_sort_q_refuses_other_arrays():
    with pytest.raises(TypeError):
        _native.sort_q(array("i", [2, 1]))
    with pytest.raises(TypeError):
        _native.sort_q("not an array")  # type: ignore[arg-type]
