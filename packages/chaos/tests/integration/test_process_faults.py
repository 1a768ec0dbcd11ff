"""Process and clock faults with real processes on the local backend."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_chaos.fake_system import FakeSystem
from rift_chaos.nemesis import (
    ComposedNemesis,
    KillNemesis,
    NemesisContext,
    PauseNemesis,
    Timeline,
    faketime_env,
    write_offset,
)
from rift_chaos.nemesis.clock import find_libfaketime
from rift_chaos.op import NEMESIS, Op, OpType
from rift_chaos.remote import LocalCluster
from rift_chaos.system import SystemSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(nodes=3, base=tmp_path) as built:
        yield built


def op(f: str, value: object = None) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=NEMESIS, value=value)


def test_kill_pause_and_teardown_with_real_processes(cluster: LocalCluster) -> None:
    system = FakeSystem(settings=SystemSettings())
    for node in cluster.nodes:
        system.start(cluster.remote(node.name))
    ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=time.monotonic_ns, system=system)
    nemesis = ComposedNemesis([KillNemesis(), PauseNemesis()])
    nemesis.setup(ctx)
    assert nemesis.invoke(op("kill", {"nodes": ["n1"]})).type is OpType.OK
    assert not system.serving("n1")
    assert nemesis.invoke(op("pause", {"nodes": ["n2"]})).type is OpType.OK
    assert not system.serving("n2")
    stat = Path(f"/proc/{system._daemons['n2'][1].pid}/stat").read_text()
    assert stat[stat.rindex(")") + 2] in "Tt"
    nemesis.teardown()
    assert all(system.serving(n.name) for n in cluster.nodes)
    assert {w.kind for w in ctx.timeline.windows()} == {"kill", "pause"}
    assert ctx.timeline.active() == []


@pytest.mark.skipif(sys.platform != "linux", reason="libfaketime is Linux-only here")
def test_faketime_offset_file_moves_the_wall_clock(cluster: LocalCluster) -> None:
    try:
        find_libfaketime()
    except Exception as exc:  # a clear skip on machines without the Debian package
        pytest.skip(str(exc))
    remote = cluster.remote("n1")
    env = faketime_env(f"{remote.workdir}/faketime")
    show = [sys.executable, "-c", "import time; print(time.time(), time.monotonic())"]

    write_offset(remote, "faketime", 3600)
    wall, mono = map(float, remote.run(show, env=env).stdout.split())
    assert 3500 < wall - time.time() < 3700
    assert abs(mono - time.monotonic()) < 60  # the monotonic clock is left alone

    write_offset(remote, "faketime", -120)
    wall, _ = map(float, remote.run(show, env=env).stdout.split())
    assert -220 < wall - time.time() < -20
