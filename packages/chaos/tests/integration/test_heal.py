"""`chaos heal` after a runner killed with SIGKILL in the middle of a partition."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rift_chaos.cli import main
from rift_chaos.remote import RUN_ID_ENV, netns_available, new_run_id
from rift_chaos.remote._process import pid_alive
from rift_chaos.remote.heal import run_links, run_namespaces

pytestmark = [pytest.mark.integration]

CRASHING_RUNNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rift_chaos.nemesis import NemesisContext, PartitionNemesis, Timeline, grudge
    from rift_chaos.remote import NetnsCluster

    cluster = NetnsCluster(nodes=3, run_id=sys.argv[1], base=Path(sys.argv[2]))
    cluster.setup()
    daemons = [
        cluster.remote(n.name).start_daemon(["sleep", "600"], log="s.log", pidfile="s.pid")
        for n in cluster.nodes
    ]
    ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=lambda: 0)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    nemesis.apply(grudge.halves(["n1", "n2", "n3"]), time=0)
    print("READY", " ".join(str(d.pid) for d in daemons), flush=True)
    time.sleep(600)
    """
)


def root_iptables() -> str:
    """The machine's own rules, which no backend may ever change."""
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("#"))


def processes_of(run_id: str) -> list[int]:
    wanted = f"{RUN_ID_ENV}={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


@pytest.mark.root
@pytest.mark.skipif(netns_available() is not None, reason=netns_available() or "")
def test_heal_removes_everything_a_killed_runner_left(tmp_path: Path, capsys) -> None:
    run_id = new_run_id()
    before = root_iptables()
    runner = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUNNER, run_id, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(runner, timeout=60)
        assert line.startswith("READY"), f"runner did not get ready: {line!r}"
        daemons = [int(p) for p in line.split()[1:]]
        # The crash: no teardown, no finally, nothing.
        runner.kill()
        runner.wait(timeout=30)
        assert len(run_namespaces(run_id)) == 4  # n1..n3 and the bridge
        assert run_links(run_id) == [f"rift{run_id}"]
        rules = subprocess.run(
            ["ip", "netns", "exec", f"rift-{run_id}-n1", "iptables", "-S"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"--comment rift-{run_id}" in rules
        assert all(pid_alive(p) for p in daemons)

        assert main(["heal", "--run-id", run_id]) == 0
        assert "healed run" in capsys.readouterr().out

        assert run_namespaces(run_id) == []
        assert run_links(run_id) == []
        assert processes_of(run_id) == []
        assert not any(pid_alive(p) for p in daemons)
        assert root_iptables() == before
        # Idempotent.
        assert main(["heal", "--run-id", run_id]) == 0
        assert "nothing to heal" in capsys.readouterr().out
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        assert runner.stdout is not None
        runner.stdout.close()
        from rift_chaos.remote import heal

        heal(run_id)


def test_heal_kills_local_daemons_of_a_crashed_run(tmp_path: Path, capsys) -> None:
    run_id = new_run_id()
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from rift_chaos.remote import LocalCluster
        cluster = LocalCluster(nodes=2, run_id=sys.argv[1], base=Path(sys.argv[2]))
        cluster.setup()
        d = cluster.remote("n1").start_daemon(["sleep", "600"], log="s.log", pidfile="s.pid")
        print("READY", d.pid, flush=True)
        time.sleep(600)
        """
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", script, run_id, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = read_line(runner, timeout=60)
        assert line.startswith("READY")
        daemon = int(line.split()[1])
        runner.kill()
        runner.wait(timeout=30)
        assert pid_alive(daemon)
        assert main(["heal", "--run-id", run_id]) == 0
        assert not pid_alive(daemon)
        assert processes_of(run_id) == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        assert runner.stdout is not None
        runner.stdout.close()


def test_heal_rejects_a_bad_run_id(capsys) -> None:
    assert main(["heal", "--run-id", "Not/Valid"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "run id" in err


def test_heal_of_an_unknown_run_does_nothing(capsys) -> None:
    assert main(["heal", "--run-id", "zz" + os.urandom(3).hex()]) == 0
    assert "nothing to heal" in capsys.readouterr().out
