"""Writer/reader round trip, schema validation with line numbers, fetch_ops."""

from __future__ import annotations

import io
import json

import pytest

from rift_checker import (
    CheckerError,
    Event,
    HistoryReader,
    HistoryWriter,
    InvalidHistory,
    Op,
    check_history,
    fetch_ops,
)


def _write(tmp_path):
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path, metadata={"workload": "w"}) as w:
        a = w.invoke(process=0, f="send", value={"topic": "t", "partition": 0, "value": 1}, time=5)
        w.observe(
            f="leader", value={"topic": "t", "partition": 0, "epoch": 1, "node": "n1"}, time=6
        )
        b = w.invoke(process=1, f="poll", time=7)
        w.ok(process=0, value={"topic": "t", "partition": 0, "offset": 0, "value": 1}, time=8)
        w.info(process=1, error="timeout", time=9)
        c = w.invoke(process=2, f="send", value={"topic": "t", "partition": 0, "value": 2}, time=3)
    return path, (a, b, c)


def test_round_trip(tmp_path):
    path, (a, b, c) = _write(tmp_path)
    with HistoryReader(path) as reader:
        assert reader.header == {"rift_history": 1, "workload": "w"}
        items = list(reader)
    obs, send, poll, dangling = items
    assert isinstance(obs, Event)
    assert obs.type == "observe"
    assert obs.index == 1
    assert isinstance(send, Op)
    assert send.id == a
    assert send.type == "ok"
    assert send.value["offset"] == 0
    assert send.latency == 3
    assert isinstance(poll, Op)
    assert poll.id == b
    assert poll.type == "info"
    assert poll.completion is not None
    assert poll.completion.error == "timeout"
    assert isinstance(dangling, Op)
    assert dangling.id == c
    assert dangling.completion is None
    assert dangling.type == "info"
    assert dangling.invoke.time == 9
    assert dangling.latency is None


def test_event_to_dict_round_trips_the_line(tmp_path):
    path, _ = _write(tmp_path)
    lines = path.read_text().splitlines()
    with HistoryReader(path) as reader:
        send = next(op for op in reader if isinstance(op, Op))
    assert json.loads(lines[send.id + 1]) == send.invoke.to_dict()


def test_fetch_ops(tmp_path):
    path, (a, _, c) = _write(tmp_path)
    found = fetch_ops(path, [a, c, 1])
    assert set(found) == {a, c, 1}
    assert isinstance(found[1], Event)


def test_writer_refuses_invalid_sequences():
    w = HistoryWriter(io.StringIO())
    w.invoke(process=0, f="poll")
    with pytest.raises(CheckerError, match="already has an open"):
        w.invoke(process=0, f="poll")
    with pytest.raises(CheckerError, match="no open op"):
        w.ok(process=1)
    w.info(process=0)
    with pytest.raises(CheckerError, match="must not be reused"):
        w.invoke(process=0, f="poll")
    with pytest.raises(ValueError, match="type must be"):
        w.complete(process=0, type="maybe")
    with pytest.raises(ValueError, match="rift_history"):
        HistoryWriter(io.StringIO(), metadata={"rift_history": 2})


HEADER = '{"rift_history": 1}\n'


def _line(**kw):
    event = {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": "poll"}
    event.update(kw)
    return json.dumps(event) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty history"),
        ("[1]\n", 1, "header object"),
        ('{"rift_history": 2}\n', 1, "unsupported history version"),
        ("{nope\n", 1, "not JSON"),
        (HEADER + "{nope\n", 2, "not JSON"),
        (HEADER + "\n", 2, "blank line"),
        (HEADER + "[]\n", 2, "JSON object"),
        (HEADER + _line(index=3), 2, "index is 3, expected 0"),
        (HEADER + _line(time=-1.5), 2, "time must be an integer"),
        (HEADER + _line(f=""), 2, "f must be"),
        (HEADER + _line(node=3), 2, "node must be"),
        (HEADER + _line(process=-1), 2, "process must be"),
        (HEADER + _line(process=True), 2, "process must be"),
        (HEADER + _line(type="done"), 2, "type must be"),
        (HEADER + _line(error="x"), 2, "an invoke has no error"),
        (HEADER + _line(type="ok"), 2, "no open invoke"),
        (HEADER + _line() + _line(index=1, time=1), 3, "still open"),
        (HEADER + _line() + _line(index=1, type="ok", f="send"), 3, "does not match"),
        (HEADER + _line() + _line(index=1, time=0, type="ok", error=1), 3, "error must be"),
        (HEADER + _line() + _line(index=1, type="info") + _line(index=2), 4, "reused"),
        (HEADER + _line(time=5) + _line(index=1, time=4, type="ok"), 3, "never decreasing"),
        # The log model: checked by check_history.
        (HEADER + _line(f="fetch") + _line(index=1, f="fetch", type="ok"), 2, "unknown f"),
        (HEADER + _line(f="send", value=[1]) + _line(index=1, f="send", type="fail"), 2, "send"),
        (
            HEADER
            + _line(f="send", value={"topic": "t", "partition": 0, "value": 1.5})
            + _line(index=1, f="send", type="fail"),
            2,
            "string or integer value",
        ),
        (
            HEADER
            + _line(f="send", value={"topic": "t", "partition": 0, "value": 1})
            + _line(index=1, f="send", type="ok", value={"partition": 0}),
            3,
            '"offset"',
        ),
        (
            HEADER
            + _line(f="send", value={"topic": "t", "partition": 0, "value": 1})
            + _line(index=1, f="send", type="ok", value={"partition": 0, "offset": 0, "value": 2}),
            3,
            "another topic or value",
        ),
        (
            HEADER
            + _line(f="send", value={"topic": "t", "partition": 0, "value": 1})
            + _line(index=1, f="send", type="fail")
            + _line(index=2, process=1, f="send", value={"topic": "t", "partition": 0, "value": 1}),
            4,
            "sent twice",
        ),
        (HEADER + _line() + _line(index=1, type="ok", value={}), 3, "records"),
        (HEADER + _line() + _line(index=1, type="ok", value={"records": {"t": []}}), 3, "topic/"),
        (HEADER + _line() + _line(index=1, type="ok", value={"records": {"t/0": [1]}}), 3, "["),
        (
            HEADER + _line() + _line(index=1, type="ok", value={"records": {"t/0": [[-1, 1]]}}),
            3,
            "offset >= 0",
        ),
        (HEADER + _line(type="observe", f="leader", value={}), 2, "topic"),
        (HEADER + _line(type="observe", f="weather", value={}), 2, "unknown observation"),
        (
            HEADER + _line(type="observe", f="leader", value={"topic": "t", "partition": 0}),
            2,
            "epoch",
        ),
        (
            HEADER
            + _line(type="observe", f="high-watermark", value={"topic": "t", "partition": 0}),
            2,
            "offset",
        ),
    ],
)
def test_invalid_histories_name_the_line(text, line, message):
    with pytest.raises(InvalidHistory) as info:
        check_history(io.StringIO(text))
    assert info.value.line == line
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_error_names_the_file(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(HEADER + "{nope\n")
    with pytest.raises(InvalidHistory, match=r"h\.jsonl:2: not JSON"):
        check_history(path)


def test_missing_file_is_an_invalid_history(tmp_path):
    with pytest.raises(InvalidHistory, match="cannot read history"):
        check_history(tmp_path / "absent.jsonl")


def test_not_utf8(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_bytes(HEADER.encode() + b"\xff\xfe\n")
    with pytest.raises(InvalidHistory, match="UTF-8"):
        check_history(path)


def test_reader_iterates_once(tmp_path):
    path, _ = _write(tmp_path)
    with HistoryReader(path) as reader:
        list(reader)
        with pytest.raises(ValueError, match="once"):
            list(reader)


def test_unknown_keys_are_ignored():
    text = HEADER + _line(extra=1) + _line(index=1, type="fail")
    assert check_history(io.StringIO(text)).valid is True


def test_the_nemesis_keeps_its_process_after_an_info_completion() -> None:
    import io

    from rift_checker import HistoryWriter, check_history

    out = io.StringIO()
    with HistoryWriter(out) as w:
        w.invoke(process="nemesis", f="start-partition", value={"grudge": {}}, time=1)
        w.info(process="nemesis", error="partly applied", time=2)
        w.invoke(process="nemesis", f="stop-partition", time=3)
        w.ok(process="nemesis", time=4)
        w.invoke(process=0, f="send", value={"topic": "t", "partition": 0, "value": 1}, time=5)
        w.info(process=0, error="timeout", time=6)
        with pytest.raises(CheckerError, match="must not be reused"):
            w.invoke(process=0, f="poll", time=7)
    result = check_history(io.StringIO(out.getvalue()))
    assert result.statistics


_MAPS = [
    # (f, key in the completion value, what the message says of a bad entry)
    ("commit", "offsets", "a committed offset needs"),
    ("poll", "assigned", "an assigned partition needs"),
    ("final-read", "log-start", "a log start needs"),
]


@pytest.mark.parametrize(("f", "key", "needs"), _MAPS)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([1], "must be {"),
        ({"t/0": -1}, "needs a 'topic/partition' key and an int >= 0: 't/0'"),
        ({"t": 3}, "needs a 'topic/partition' key and an int >= 0: 't'"),
        ({"t/0": "3"}, "needs a 'topic/partition' key and an int >= 0: 't/0'"),
    ],
)
def test_topic_partition_offset_maps_are_validated(f, key, needs, bad, message):
    value = {key: bad}
    if f != "commit":
        value["records"] = {}
    lines = [
        {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": f},
        {"index": 1, "time": 1, "type": "ok", "process": 0, "f": f, "value": value},
    ]
    text = HEADER + "".join(json.dumps(e) + "\n" for e in lines)
    with pytest.raises(InvalidHistory) as info:
        check_history(io.StringIO(text))
    assert info.value.line == 3
    assert message in str(info.value)
    if message != "must be {":
        assert needs in str(info.value)
