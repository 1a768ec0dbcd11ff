"""The fast reading of a history (typed decoding, binary blocks) answers as the json module would.

The checker decodes lines with msgspec into typed structs and hands whatever those
refuse to Python's json module (rift_checker._decode); files are read in binary
blocks. These tests pin down that neither shortcut changes a verdict or an error:
the same history checked with every line forced through the general path, or read
from a file in tiny blocks with other line endings, gives the same result.
"""

from __future__ import annotations

import io
import json
import random
import typing
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

import rift_checker._analyzer as analyzer
import rift_checker._decode as decode
import rift_checker.reader as reader
from rift_checker import HistoryReader, HistoryWriter, InvalidHistory, Op, check_history
from rift_checker.history import CLIENT_FS, NEMESIS, OBSERVATION_FS
from rift_checker.synth import generate_history

HEADER = '{"rift_history": 1}\n'


class _Refused(msgspec.Struct):
    """A type no history line decodes into: every line takes the general path."""

    never_in_a_history: int


def _general_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "_MODEL", msgspec.json.Decoder(_Refused))


def _result(source: Any) -> Any:
    try:
        return check_history(source).to_dict()
    except InvalidHistory as e:
        return ("error", str(e), e.line)


def _events(seed: int, **params: Any) -> tuple[str, list[dict[str, Any]]]:
    buf = io.StringIO()
    generate_history(buf, seed=seed, **params)
    header, *lines = buf.getvalue().splitlines()
    return header, [json.loads(line) for line in lines]


def _random_events(
    seed: int, rng: random.Random, *, ops: int, workers: int, partitions: int
) -> tuple[str, list[dict[str, Any]]]:
    """A valid history of random shape, sizes up to the given ones."""
    return _events(
        seed,
        ops=rng.randint(2, ops),
        workers=rng.randint(1, workers),
        partitions=rng.randint(1, partitions),
        fail_rate=rng.choice([0.0, 0.2]),
        info_rate=rng.choice([0.0, 0.2]),
        observe_rate=rng.choice([0.0, 0.1]),
    )


def _lines(header: str, events: list[dict[str, Any]]) -> list[str]:
    for i, e in enumerate(events):
        e["index"] = i
        e["time"] = i
    return [header + "\n"] + [json.dumps(e) + "\n" for e in events]


_SEND_INVOKE = [
    ("value", None),
    ("value", 1.5),
    ("value", True),
    ("value", [1]),
    ("topic", None),
    ("topic", "a/b"),
    ("topic", ""),
    ("topic", 5),
]
_SEND_OK = [
    *_SEND_INVOKE,
    ("topic", "u"),
    ("value", "other"),
    ("partition", None),
    ("partition", -1),
    ("partition", "0"),
    ("offset", None),
    ("offset", -1),
    ("offset", 1.5),
]
_RECORDS = [
    None,
    [],
    {"t": []},
    {"t/0": [[0]]},
    {"t/0": [[-1, 1]]},
    {"t/0": [[0, 1.5]]},
    {"t/0": 3},
]


def _sends(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(invoke value, ok value) of the sends that completed ok."""
    open_: dict[Any, dict[str, Any]] = {}
    out = []
    for e in events:
        if e["type"] == "invoke":
            open_[e["process"]] = e
        elif e["type"] in ("ok", "fail", "info") and e["process"] in open_:
            inv = open_.pop(e["process"])
            if e["f"] == "send" and e["type"] == "ok":
                out.append((inv["value"], e["value"]))
    return out


def _damage_records(rng: random.Random, recs: list[list[Any]]) -> None:
    i = rng.randrange(len(recs))
    kind = rng.randrange(4)
    if kind == 0:
        recs.pop(i)  # a skip, or a lost write
    elif kind == 1:
        recs.insert(i, recs[i - 1])  # a step back
    elif kind == 2:
        recs.append(recs[0])  # back to the first offset
    else:
        recs[i] = [recs[i][0], recs[i - 1][1]]  # one value at two offsets


def _damage(rng: random.Random, events: list[dict[str, Any]], n: int) -> None:
    """Plant anomalies and schema errors, the kinds a faulty system or writer makes."""
    sends = _sends(events)
    for _ in range(n):
        e = rng.choice(events)
        v = e.get("value")
        if sends and rng.random() < 0.1:
            # The same edit to a send's invoke and ok values: they still agree.
            key, new = rng.choice(_SEND_INVOKE)
            drop = rng.random() < 0.3
            for value in rng.choice(sends):
                if drop:
                    value.pop(key, None)
                else:
                    value[key] = new
        elif rng.random() < 0.1:
            e["process"] = "nemesis"
        elif rng.random() < 0.05:
            e["f"] = rng.choice(["kill", "Send"])  # no f of the model: not a ModelLine
        elif rng.random() < 0.1 and e["type"] == "ok":
            e["type"] = rng.choice(["fail", "info"])
        elif e["f"] == "send" and isinstance(v, dict):
            key, new = rng.choice(_SEND_OK if e["type"] == "ok" else _SEND_INVOKE)
            if rng.random() < 0.3:
                v.pop(key, None)
            else:
                v[key] = new
        elif e["type"] == "ok" and isinstance(v, dict) and isinstance(v.get("records"), dict):
            if rng.random() < 0.2:
                v["records"] = rng.choice(_RECORDS)
                continue
            for recs in v["records"].values():
                if recs and isinstance(recs, list) and all(len(r) == 2 for r in recs):
                    _damage_records(rng, recs)
        elif isinstance(v, dict) and "offset" in v:
            v["offset"] = max(0, v["offset"] + rng.choice([-2, -1, 1, 2]))


def test_the_model_fs_are_those_of_the_history_model():
    assert set(typing.get_args(decode.ModelF)) == CLIENT_FS | OBSERVATION_FS
    assert typing.get_args(decode.NemesisProcess) == (NEMESIS,)


def _changed_by(chunk: int, switch: Callable[[pytest.MonkeyPatch], None]) -> list[int]:
    """The seeds of damaged histories whose result changes when ``switch`` is applied.

    Deterministic seeds rather than Hypothesis: the damage is already random, and a
    fixed, wide spread of seeds reliably reaches the rarer kinds of it.
    """
    differ = []
    for seed in range(chunk * 60, chunk * 60 + 60):
        rng = random.Random(seed)
        header, events = _random_events(seed, rng, ops=120, workers=5, partitions=3)
        _damage(rng, events, rng.choice([0, 1, 2, 5, 20]))
        lines = _lines(header, events)
        before = _result(lines)
        with pytest.MonkeyPatch.context() as mp:
            switch(mp)
            after = _result(lines)
        if before != after:
            differ.append(seed)
    return differ


@pytest.mark.parametrize("chunk", range(6))
def test_typed_and_general_paths_agree(chunk):
    differ = _changed_by(chunk, _general_only)
    assert not differ, f"the typed and general paths disagree for seeds {differ}"


@pytest.mark.parametrize("chunk", range(6))
def test_the_native_core_and_the_python_pass_agree(chunk):
    # The native core (_native.c) is a second implementation of the pass's loop and
    # fast path; with it switched off, the same typed lines take the Python pass.
    differ = _changed_by(chunk, lambda mp: mp.setattr(analyzer, "NATIVE", False))
    assert not differ, f"the native core and the Python pass disagree for seeds {differ}"


@pytest.mark.parametrize(
    "big",
    [
        {"time": 2**63 - 20},
        {"time": 2**63 - 1},
        {"time": 2**64 + 5},
        {"offset": 2**63 - 1},
        {"offset": 2**63},
        {"offset": 2**70},
    ],
)
def test_integers_beyond_64_bits_are_checked_alike(big):
    # The native core works in 64-bit integers and leaves anything larger to Python.
    header, events = _events(3, ops=30, workers=2, partitions=1, fail_rate=0, info_rate=0)
    lines = _lines(header, events)
    events = [json.loads(line) for line in lines[1:]]
    if "time" in big:
        for i, e in enumerate(events):
            e["time"] = big["time"] + i
    else:
        for e in events:
            if e["type"] == "ok" and e["f"] in ("send", "poll", "final-read"):
                v = e["value"]
                if "offset" in v:
                    v["offset"] += big["offset"]
                for recs in (v.get("records") or {}).values():
                    for r in recs:
                        r[0] += big["offset"]
    lines = [lines[0]] + [json.dumps(e) + "\n" for e in events]
    native = _result(lines)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(analyzer, "NATIVE", False)
        python = _result(lines)
    assert native == python
    assert isinstance(native, dict), native  # any integer is a valid time or offset
    assert native["valid"] is True


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("block", [1, 7, 100, 1 << 16])
def test_a_file_in_any_blocks_and_line_endings_reads_like_its_lines(
    tmp_path, monkeypatch, ending, block
):
    header, events = _events(3, ops=80, workers=3, partitions=2, info_rate=0.1)
    lines = _lines(header, events)
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(line.encode().replace(b"\n", ending) for line in lines))
    monkeypatch.setattr(decode, "BLOCK_SIZE", block)
    from_file = check_history(path).to_dict()
    from_file["history"] = None
    assert from_file == check_history(lines).to_dict()


def test_cr_cr_lf_is_two_line_ends_whatever_the_blocks(tmp_path, monkeypatch):
    # Text mode reads "\r" then "\r\n": a blank line in between, even when a block
    # ends between the two carriage returns.
    event = {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": "poll"}
    data = (HEADER + json.dumps(event)).encode() + b"\r\r\n"
    path = tmp_path / "h.jsonl"
    path.write_bytes(data)
    for block in (1, 2, len(HEADER) + 30, 1 << 16):
        monkeypatch.setattr(decode, "BLOCK_SIZE", block)
        with pytest.raises(InvalidHistory, match="blank line") as info:
            check_history(path)
        assert info.value.line == 3


def test_a_last_line_without_newline_and_a_line_longer_than_a_block(tmp_path, monkeypatch):
    header, events = _events(5, ops=60, workers=2, partitions=1)
    lines = _lines(header, events)
    path = tmp_path / "h.jsonl"
    path.write_text("".join(lines).rstrip("\n"))
    monkeypatch.setattr(decode, "BLOCK_SIZE", 16)  # the final read spans many blocks
    assert check_history(path).valid is True


def test_not_utf8_even_in_a_key_no_check_reads(tmp_path):
    event = {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": "poll"}
    line = json.dumps(event).encode().replace(b'"f"', b'"\xff": 1, "f"')
    path = tmp_path / "h.jsonl"
    path.write_bytes(HEADER.encode() + line + b"\n")
    with pytest.raises(InvalidHistory, match="not UTF-8") as info:
        check_history(path)
    assert info.value.line == 2


def test_json_only_the_json_module_reads_is_still_read():
    # NaN and a lone surrogate are JSON to Python (and so were always accepted);
    # msgspec refuses them, so these lines take the general path.
    text = (
        HEADER + '{"index":0,"time":0,"type":"invoke","process":"nemesis","f":"kill",'
        '"value":{"x":NaN,"y":"\\ud800"}}\n'
        + '{"index":1,"time":1,"type":"ok","process":"nemesis","f":"kill"}\n'
    )
    result = check_history(io.StringIO(text))
    assert result.valid is True
    assert result.statistics["by_f"]["kill"]["ok"] == 1


def test_errors_come_in_line_order(tmp_path):
    # Line 3 completes a send with a bad value; line 4 is not JSON. Both sit in one
    # block, and the error reported is the first one, as when reading line by line.
    text = (
        HEADER + '{"index":0,"time":0,"type":"invoke","process":0,"f":"send",'
        '"value":{"topic":"t","partition":0,"value":1}}\n'
        + '{"index":1,"time":1,"type":"ok","process":0,"f":"send","value":{"partition":0}}\n'
        + "{nope\n"
    )
    path = tmp_path / "h.jsonl"
    path.write_text(text)
    for source in (path, io.StringIO(text)):
        with pytest.raises(InvalidHistory, match='"offset"') as info:
            check_history(source)
        assert info.value.line == 3


def test_a_value_sent_twice_is_refused_on_the_fast_path():
    out = io.StringIO()
    with HistoryWriter(out) as w:
        for p in (0, 1):
            w.invoke(process=p, f="send", value={"topic": "t", "partition": 0, "value": 7})
            w.ok(process=p, value={"topic": "t", "partition": 0, "value": 7, "offset": p})
    with pytest.raises(InvalidHistory, match="sent twice") as info:
        check_history(io.StringIO(out.getvalue()))
    assert info.value.line == 4


def test_the_reader_keeps_every_key_of_a_value(tmp_path):
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path) as w:
        w.invoke(process=0, f="send", value={"topic": "t", "key": "k", "value": 1, "x": [1]})
        w.ok(process=0, value={"topic": "t", "partition": 2, "offset": 0, "value": 1})
    with HistoryReader(path) as r:
        (op,) = list(r)
    assert isinstance(op, Op)
    assert op.invoke.value == {"topic": "t", "key": "k", "value": 1, "x": [1]}
    assert op.value == {"topic": "t", "partition": 2, "offset": 0, "value": 1}


def test_the_reader_hands_out_the_ops_before_a_bad_line(tmp_path):
    text = (
        HEADER
        + '{"index":0,"time":0,"type":"invoke","process":0,"f":"poll"}\n'
        + '{"index":1,"time":1,"type":"ok","process":0,"f":"poll","value":{"records":{}}}\n'
        + '{"index":2,"time":0,"type":"invoke","process":1,"f":"poll"}\n'
    )
    path = tmp_path / "h.jsonl"
    path.write_text(text)
    seen = []
    with pytest.raises(InvalidHistory, match="never decreasing") as info, HistoryReader(path) as r:
        seen.extend(r)
    assert [op.id for op in seen] == [0]
    assert info.value.line == 4


_INVOKE = '{"index":%d,"time":0,"type":"invoke","process":%d,"f":"poll"}'


@pytest.mark.parametrize(
    "block",
    [
        # two events on one line, and one event over two lines: as many values as
        # lines, yet not one per line
        (_INVOKE % (0, 0) + " " + _INVOKE % (1, 1)).encode()
        + b'\n{"index":2,"time":0,\n"type":"invoke","process":2,"f":"poll"}\n',
        (_INVOKE % (0, 0) + " " + _INVOKE % (1, 1) + "\n\n").encode(),
        (_INVOKE % (0, 0) + " " + _INVOKE % (1, 1) + "\n" + _INVOKE % (2, 2) + "\n").encode(),
        (_INVOKE % (0, 0) + "\n  \n" + _INVOKE % (1, 1) + "\n").encode(),
        (_INVOKE % (0, 0) + "\n" + _INVOKE % (1, 1) + " \n").encode(),
        ("\n".join(_INVOKE % (i, i) for i in range(5)) + "\n").encode(),
        (_INVOKE % (0, 0) + '\n{"index":1}\n').encode(),
    ],
)
def test_a_block_decodes_as_its_lines_one_by_one(block):
    model = msgspec.json.Decoder(decode.ModelLine)
    lines = block.split(b"\n")[:-1]

    def shown(items: list[Any]) -> list[Any]:
        return [repr(x) if isinstance(x, ValueError) else x for x in items]

    assert shown(decode.decode_block(block, model)) == shown(decode.decode_lines(lines, model))


# Edits to the envelope of one event: (key, new value, or a function of the event).
_ENVELOPE: list[tuple[str, Any]] = [
    ("index", lambda e: e["index"] + 1),
    ("index", lambda e: str(e["index"])),
    ("time", lambda e: e["time"] - 2),
    ("time", 1.5),
    ("time", None),
    ("type", "done"),
    ("type", "invoke"),
    ("type", "info"),
    ("type", "ok"),
    ("process", -1),
    ("process", "p"),
    ("process", None),
    ("process", True),
    ("process", NEMESIS),
    ("process", lambda e: (e["process"] + 1) if isinstance(e["process"], int) else 0),
    ("f", ""),
    ("f", 5),
    ("f", "poll"),
    ("f", "send"),
    ("f", "kill"),
    ("error", "boom"),
    ("error", 5),
    ("node", 5),
]


@pytest.mark.parametrize("chunk", range(4))
def test_the_checker_and_the_reader_find_the_same_envelope_errors(chunk, tmp_path):
    # The checker's pass tests the envelope and pairing rules inline, in their
    # cheapest form for the lines its typed decoder took; the reader pairs by the
    # one statement of those rules (rift_checker._jsonl). On any damaged envelope the
    # checker must report the reader's first error, unless it found a problem in a
    # value (which the reader does not judge) at an earlier line.
    differ = []
    for seed in range(chunk * 50, chunk * 50 + 50):
        rng = random.Random(seed)
        header, events = _random_events(seed, rng, ops=60, workers=4, partitions=2)
        for i, e in enumerate(events):
            e["index"] = i
            e["time"] = 2 * i
        for _ in range(rng.choice([1, 1, 2, 3])):
            e = rng.choice(events)
            key, new = rng.choice(_ENVELOPE)
            e[key] = new(e) if callable(new) else new
        path = tmp_path / f"h{seed}.jsonl"
        path.write_text(header + "\n" + "".join(json.dumps(e) + "\n" for e in events))
        try:
            with HistoryReader(path) as r:
                for _ in r:
                    pass
            by_reader = None
        except InvalidHistory as exc:
            by_reader = (exc.line, str(exc))
        try:
            check_history(path)
            by_checker = None
        except InvalidHistory as exc:
            by_checker = (exc.line, str(exc))
        if by_reader is None:
            agree = True  # the checker may still refuse a value
        else:
            agree = by_checker is not None and (
                by_checker == by_reader or by_checker[0] < by_reader[0]
            )
        if not agree:
            differ.append((seed, by_reader, by_checker))
    assert not differ, f"the checker and the reader disagree: {differ[:3]}"
