"""The ``broker`` command as a user runs it: a real subprocess, signals, restarts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

BROKER = [sys.executable, "-m", "rift_broker.cli"]
_SERVING = re.compile(r"serving on [^ ]+:(\d+)")


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BROKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``broker serve`` on an ephemeral loopback port; yields the process and bootstrap."""
    process = subprocess.Popen(
        [*BROKER, "serve", "--listen", "127.0.0.1:0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            if match := _SERVING.search(line):
                port = match.group(1)
        assert port is not None, "the broker did not start"
        yield process, f"127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()


def test_help_explains_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout
    serve = _run("serve", "--help")
    assert serve.returncode == 0
    for flag in ("--data-dir", "--listen", "--config", "--auto-create-topics", "--durability"):
        assert flag in serve.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["serve", "--bogus"], 2, "unrecognized arguments"),
        (["serve", "--listen", "127.0.0.1:1"], 1, "--data-dir is required"),
        (["serve", "--data-dir", "d", "--listen", "nonsense"], 1, "not HOST:PORT"),
        (["serve", "--data-dir", "d", "--listen", "127.0.0.1:70000"], 1, "out of range"),
        (["serve", "--data-dir", "d", "--config", "/nonexistent.toml"], 1, "cannot read config"),
        (["serve", "--data-dir", "d", "--listen", "192.0.2.1:9092"], 1, "cannot listen"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    args = [str(tmp_path / a) if a == "d" else a for a in args]
    result = _run(*args)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert says in lines[0]
    assert "Traceback" not in result.stderr


def test_config_file(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nauto-create-topics = true\ndefault_partitions = 2\n'
    )
    with serving("--config", str(config)) as (_process, bootstrap):
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        meta = producer.send("auto", b"x").get(30)
        producer.close()
        assert meta.offset == 0
    assert (tmp_path / "data" / "auto.topic.json").exists()
    assert (tmp_path / "data" / "auto-1").is_dir()
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense_setting = 1\n")
    result = _run("serve", "--config", str(bad))
    assert result.returncode == 1
    assert "unknown setting" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_keeps_acknowledged_data(tmp_path: Path, sig: signal.Signals) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    data = str(tmp_path / "data")
    acked: dict[int, list[bytes]] = {0: [], 1: []}
    with serving("--data-dir", data) as (process, bootstrap):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("kept", 2, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        futures = [(i, producer.send("kept", b"v%d" % i, partition=i % 2)) for i in range(3000)]
        producer.flush(60)
        for i, future in futures:
            future.get(30)
            acked[i % 2].append(b"v%d" % i)
        producer.close()
        process.send_signal(sig)
        assert process.wait(60) == 0
        assert process.stderr is not None
        assert "stopped" in process.stderr.read()

    with serving("--data-dir", data) as (process, bootstrap):
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition("kept", p) for p in (0, 1)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got: dict[int, list[bytes]] = {0: [], 1: []}
        deadline = time.monotonic() + 30
        while sum(map(len, got.values())) < 3000 and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=500).items():
                got[tp.partition].extend(m.value for m in messages)
        consumer.close()
        assert got == acked
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


def test_unreachable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _run("serve", "--data-dir", str(blocker / "sub"), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


if os.name != "posix":  # pragma: no cover
    pytest.skip("signals", allow_module_level=True)


def test_client_commands(tmp_path: Path) -> None:
    with serving("--data-dir", str(tmp_path / "data")) as (process, bootstrap):
        b = ["-b", bootstrap]
        created = _run("topics", "create", "demo", "-p", "3", "--config", "retention.ms=60000", *b)
        assert created.returncode == 0, created.stderr
        assert _run("topics", "list", *b).stdout.split() == ["demo"]
        described = _run("topics", "describe", "demo", *b).stdout
        assert "3 partitions" in described
        assert "partition 2: leader 0" in described
        again = _run("topics", "create", "demo", *b)
        assert again.returncode == 1
        assert len(again.stderr.strip().splitlines()) == 1
        lines = "".join(f"k{i % 5}:line {i}\n" for i in range(100))
        produced = subprocess.run(
            [*BROKER, "produce", "demo", "--key-separator", ":", *b],
            input=lines,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert produced.returncode == 0, produced.stderr
        consumed = _run(
            "consume", "demo", "--from-beginning", "--max-messages", "100", "--print-key", *b
        )
        assert consumed.returncode == 0, consumed.stderr
        got = consumed.stdout.splitlines()
        assert sorted(got) == sorted(f"k{i % 5}\tline {i}" for i in range(100))
        # Per key (hence per partition) the order is the order sent.
        for key in range(5):
            mine = [line for line in got if line.startswith(f"k{key}\t")]
            assert mine == [f"k{key}\tline {i}" for i in range(key, 100, 5)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


def test_consume_with_a_group_goes_on_where_the_last_run_stopped(tmp_path: Path) -> None:
    with serving("--data-dir", str(tmp_path / "data")) as (process, bootstrap):
        b = ["-b", bootstrap]
        assert _run("topics", "create", "shared", "-p", "3", *b).returncode == 0
        lines = "".join(f"line {i}\n" for i in range(100))
        produced = subprocess.run(
            [*BROKER, "produce", "shared", *b],
            input=lines,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert produced.returncode == 0, produced.stderr
        group = ["--group", "readers", "--from-beginning", "--session-timeout-ms", "6000"]
        first = _run("consume", "shared", *group, "--max-messages", "40", *b, timeout=60)
        assert first.returncode == 0, first.stderr
        second = _run("consume", "shared", *group, "--max-messages", "60", *b, timeout=60)
        assert second.returncode == 0, second.stderr
        got = first.stdout.splitlines() + second.stdout.splitlines()
        # The second run starts at what the first printed (and committed): nothing twice.
        assert sorted(got) == sorted(f"line {i}" for i in range(100))
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


def test_unreachable_broker_is_one_line() -> None:
    result = _run("topics", "list", "-b", "127.0.0.1:1", "--timeout-ms", "2000")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "127.0.0.1:1" in result.stderr


def test_kill_9_keeps_acknowledged_data(tmp_path: Path) -> None:
    """acks=all is answered after fsync: even SIGKILL loses nothing acknowledged."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    data = str(tmp_path / "data")
    acked: list[bytes] = []
    with serving("--data-dir", data) as (process, bootstrap):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic("durable", 1, 1)]).values():
            future.result(30)
        producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True}
        )

        def report(error: object, message: object) -> None:
            if error is None:
                acked.append(message.value())  # type: ignore[attr-defined]

        for i in range(5000):
            producer.produce("durable", value=b"v%d" % i, on_delivery=report)
            if i % 500 == 0:
                producer.poll(0)
        producer.flush(30)
        process.kill()  # no graceful anything
        process.wait(30)
    assert len(acked) == 5000

    with serving("--data-dir", data) as (process, bootstrap):
        # Manual assignment from offset 0: this test is about the log, not about groups.
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "g", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition("durable", 0, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < len(acked) and time.monotonic() < deadline:
            got.extend(m.value() for m in consumer.consume(1000, timeout=0.5) if m.error() is None)
        consumer.close()
        assert got[: len(acked)] == acked
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
