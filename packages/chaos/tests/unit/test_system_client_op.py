from __future__ import annotations

import pytest

from rift_chaos.client import DefiniteFailure, complete_exceptionally
from rift_chaos.errors import SystemNotFound
from rift_chaos.fake_system import FakeClient, FakeSystem
from rift_chaos.op import NEMESIS, Op, OpType, next_process
from rift_chaos.remote import FakeCluster
from rift_chaos.system import SystemSettings, available_systems, load_system


def invoke(f: str, value: object = None, process: int | str = 0) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=process, value=value, time=5)


def test_completions_keep_f_process_and_value() -> None:
    op = invoke("send", 7)
    done = op.ok(value={"value": 7, "offset": 0}, time=9)
    assert (done.type, done.f, done.process, done.time) == (OpType.OK, "send", 0, 9)
    assert op.info(error="timeout").value == 7
    assert op.fail(error="no").error == "no"
    with pytest.raises(ValueError, match="only an invocation"):
        done.ok()
    assert invoke("poll", process=NEMESIS).to_dict() == {
        "type": "invoke",
        "f": "poll",
        "process": "nemesis",
        "time": 5,
    }


def test_next_process_follows_jepsen() -> None:
    assert next_process(2, concurrency=5) == 7
    with pytest.raises(ValueError, match="concurrency"):
        next_process(0, concurrency=0)


def test_timeouts_are_info_and_only_definite_failures_fail() -> None:
    op = invoke("send", 1)
    assert complete_exceptionally(op, TimeoutError()).type is OpType.INFO
    assert complete_exceptionally(op, ConnectionResetError("reset")).type is OpType.INFO
    failed = complete_exceptionally(op, DefiniteFailure("NOT_LEADER"))
    assert (failed.type, failed.error) == (OpType.FAIL, "DefiniteFailure: NOT_LEADER")


def test_load_system_from_a_registry_and_unknown_names() -> None:
    system = load_system(SystemSettings(name="fake"), registry={"fake": FakeSystem})
    assert isinstance(system, FakeSystem)
    with pytest.raises(SystemNotFound, match=r"no system 'nope'.*installed: fake"):
        load_system(SystemSettings(name="nope"), registry={"fake": FakeSystem})
    assert isinstance(available_systems(), dict)


def send(value: int, partition: int = 0) -> Op:
    return invoke("send", {"topic": "rift", "partition": partition, "value": value})


def test_fake_client_sends_polls_and_reports_info_when_node_is_down() -> None:
    cluster = FakeCluster(nodes=3)
    system = FakeSystem(settings=SystemSettings(partitions=2))
    for node in cluster.nodes:
        system.start(cluster.remote(node.name))
    client = system.client()
    assert isinstance(client, FakeClient)
    client.open(cluster.nodes[0], timeout=1)
    assert client.invoke(send(1)).value == {
        "topic": "rift",
        "partition": 0,
        "value": 1,
        "offset": 0,
    }
    assert client.invoke(send(2, 1)).value["offset"] == 0
    assert client.invoke(send(3)).value["offset"] == 1
    assert client.invoke(invoke("poll")).value == {
        "records": {"rift/0": [[0, 1], [1, 3]], "rift/1": [[0, 2]]}
    }
    assert client.invoke(invoke("poll")).value == {"records": {}}
    assert client.invoke(invoke("assign", {"partitions": ["rift/1"]})).type is OpType.OK
    assert client.invoke(invoke("poll")).value == {"records": {"rift/1": [[0, 2]]}}
    final = client.invoke(invoke("final-read")).value["records"]
    assert final == {"rift/0": [[0, 1], [1, 3]], "rift/1": [[0, 2]]}
    assert client.invoke(invoke("commit")).type is OpType.OK
    assert client.invoke(invoke("explode")).type is OpType.FAIL
    system.kill(cluster.remote("n1"))
    assert client.invoke(send(4)).type is OpType.INFO
    with pytest.raises(ConnectionError):
        system.client().open(cluster.nodes[0], timeout=1)
    system.start(cluster.remote("n1"))
    assert client.invoke(send(4)).type is OpType.OK
    client.close()
