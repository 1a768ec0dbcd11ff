"""`chaos heal` after a docker runner killed with SIGKILL in the middle of a partition."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rift_chaos.cli import main
from rift_chaos.remote import new_run_id
from rift_chaos.remote._docker_daemon import docker_unavailable

SKIP = None if hasattr(os, "geteuid") and os.geteuid() == 0 else docker_unavailable()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
    # As root (CI) this must run: a missing package fails loudly instead of skipping.
    pytest.mark.skipif(SKIP is not None, reason=SKIP or ""),
]

CRASHING_RUNNER = textwrap.dedent(
    """
    import sys, time
    from rift_chaos.nemesis import NemesisContext, PartitionNemesis, Timeline, grudge
    from rift_chaos.remote import make_cluster

    cluster = make_cluster("docker", nodes=3, run_id=sys.argv[1])
    cluster.setup()
    for n in cluster.nodes:
        cluster.remote(n.name).start_daemon(["sleep", "600"], log="s.log", pidfile="s.pid")
    ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=lambda: 0)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    nemesis.apply(grudge.halves(["n1", "n2", "n3"]), time=0)
    print("READY", flush=True)
    time.sleep(600)
    """
)


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def labelled(run_id: str) -> tuple[list[str], list[str]]:
    import docker

    client = docker.from_env()
    selector = {"label": f"rift.run_id={run_id}"}
    return (
        [c.name for c in client.containers.list(all=True, filters=selector)],
        [n.name for n in client.networks.list(filters=selector)],
    )


def test_heal_removes_the_containers_and_network_of_a_killed_runner(tmp_path: Path, capsys) -> None:
    from rift_chaos.remote.docker import heal_docker

    run_id = new_run_id()
    runner = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUNNER, run_id], stdout=subprocess.PIPE, text=True
    )
    try:
        # The first run of a session may build the image (minutes, cold).
        line = read_line(runner, timeout=900)
        assert line.startswith("READY"), f"runner did not get ready: {line!r}"
        runner.kill()  # the crash: no teardown, no finally
        runner.wait(timeout=30)
        containers, networks = labelled(run_id)
        assert sorted(containers) == [f"rift-{run_id}-n{i}" for i in (1, 2, 3)]
        assert networks == [f"rift-{run_id}"]
        rules = subprocess.run(
            ["docker", "exec", f"rift-{run_id}-n1", "iptables", "-S"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"--comment rift-{run_id}" in rules

        assert main(["heal", "--run-id", run_id]) == 0
        assert "healed run" in capsys.readouterr().out
        assert labelled(run_id) == ([], [])
        assert (
            f"riftd{run_id}"
            not in subprocess.run(
                ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
            ).stdout
        )
        # Idempotent.
        assert main(["heal", "--run-id", run_id]) == 0
        assert "nothing to heal" in capsys.readouterr().out
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        assert runner.stdout is not None
        runner.stdout.close()
        heal_docker(run_id)
