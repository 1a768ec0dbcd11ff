"""The Remote contract, checked against every backend (see remote/_protocol.py)."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from rift_chaos.errors import CommandFailed, CommandTimeout, RemoteError
from rift_chaos.remote import RUN_ID_ENV, Cluster, Daemon, FakeRemote, Remote


def first(cluster: Cluster) -> Remote:
    return cluster.remote(cluster.nodes[0].name)


def wait_until(predicate, *, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def proc_state(remote: Remote, daemon: Daemon) -> str:
    """'running', 'stopped' or 'dead', from the fake or from the node's /proc."""
    if isinstance(remote, FakeRemote):
        return remote.state(daemon)
    # Read on the node: docker pids are pids inside the container.
    stat = remote.run(["cat", f"/proc/{daemon.pid}/stat"], check=False).stdout
    if not stat:
        return "dead"
    letter = stat[stat.rindex(")") + 2]
    return {"T": "stopped", "t": "stopped", "Z": "dead", "X": "dead"}.get(letter, "running")


def test_nodes_are_named_and_addressed(cluster: Cluster) -> None:
    names = [n.name for n in cluster.nodes]
    assert names == ["n1", "n2", "n3"]
    assert len({(n.host, n.port_offset) for n in cluster.nodes}) == 3
    for node in cluster.nodes:
        assert cluster.remote(node.name).node == node
    with pytest.raises(KeyError):
        cluster.remote("n9")


def test_run_returns_stdout_and_exit_code(cluster: Cluster) -> None:
    result = first(cluster).run(["echo", "hello", "world"])
    assert (result.exit_code, result.stdout, result.stderr, result.ok) == (
        0,
        "hello world\n",
        "",
        True,
    )
    assert result.argv == ("echo", "hello", "world")
    assert result.node == "n1"


def test_run_separates_stderr_and_reports_exit_code(cluster: Cluster) -> None:
    script = "echo out; echo err >&2; exit 3"
    result = first(cluster).run(["sh", "-c", script], check=False)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not first(cluster).run(["false"], check=False).ok


def test_check_raises_command_failed_with_one_line(cluster: Cluster) -> None:
    with pytest.raises(CommandFailed) as info:
        first(cluster).run(["sh", "-c", "echo boom >&2; exit 4"])
    assert "exited 4" in str(info.value)
    assert "boom" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_program_fails(cluster: Cluster) -> None:
    with pytest.raises((CommandFailed, RemoteError)):
        first(cluster).run(["rift-no-such-program-x"])


def test_timeout_kills_and_raises(cluster: Cluster) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        first(cluster).run(["sleep", "30"], timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert time.monotonic() - started < 15


def test_env_and_run_id_reach_the_command(cluster: Cluster) -> None:
    remote = first(cluster)
    out = remote.run(["printenv", "RIFT_TEST_VAR", RUN_ID_ENV], env={"RIFT_TEST_VAR": "x y"})
    assert out.stdout == f"x y\n{cluster.run_id}\n"


def test_stdin_is_fed(cluster: Cluster) -> None:
    assert first(cluster).run(["cat"], stdin=b"abc\n").stdout == "abc\n"


def test_upload_download_and_files(cluster: Cluster, tmp_path: Path) -> None:
    remote = first(cluster)
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01payload")
    remote.upload(src, "sub/dir/file.bin")
    remote.download("sub/dir/file.bin", tmp_path / "out" / "file.bin")
    assert (tmp_path / "out" / "file.bin").read_bytes() == b"\x00\x01payload"
    remote.write_file(f"{remote.workdir}/abs.txt", b"one")
    remote.write_file("abs.txt", b"two")  # relative paths are under workdir
    assert remote.read_file(f"{remote.workdir}/abs.txt") == b"two"
    with pytest.raises(RemoteError):
        remote.read_file("missing.txt")


def test_missing_files_are_remote_errors(cluster: Cluster, tmp_path: Path) -> None:
    remote = first(cluster)
    with pytest.raises(RemoteError):
        remote.upload(tmp_path / "absent", "x")
    with pytest.raises(RemoteError):
        remote.download("absent", tmp_path / "y")


def test_nodes_do_not_share_files(cluster: Cluster) -> None:
    a, b = (cluster.remote(n.name) for n in cluster.nodes[:2])
    a.write_file("same.txt", b"a")
    b.write_file("same.txt", b"b")
    assert (a.read_file("same.txt"), b.read_file("same.txt")) == (b"a", b"b")


def test_daemon_lifecycle(cluster: Cluster) -> None:
    remote = first(cluster)
    daemon = remote.start_daemon(["sleep", "300"], log="logs/sleep.log", pidfile="sleep.pid")
    assert daemon.node == "n1"
    assert remote.read_file(daemon.pidfile).decode().strip() == str(daemon.pid)
    assert remote.alive(daemon)
    assert remote.signal(daemon, signal.SIGSTOP)
    assert wait_until(lambda: proc_state(remote, daemon) == "stopped")
    assert remote.alive(daemon)
    assert remote.signal(daemon, signal.SIGCONT)
    assert wait_until(lambda: proc_state(remote, daemon) == "running")
    assert remote.signal(daemon, signal.SIGKILL)
    assert not remote.alive(daemon)  # the contract: dead once SIGKILL returns
    assert not remote.signal(daemon, signal.SIGKILL)


def test_sigkill_reaches_a_stopped_daemon(cluster: Cluster) -> None:
    remote = first(cluster)
    daemon = remote.start_daemon(["sleep", "300"], log="s.log", pidfile="s.pid")
    remote.signal(daemon, signal.SIGSTOP)
    remote.signal(daemon, signal.SIGKILL)
    assert not remote.alive(daemon)


def test_sigterm_ends_a_daemon(cluster: Cluster) -> None:
    remote = first(cluster)
    daemon = remote.start_daemon(["sleep", "300"], log="t.log", pidfile="t.pid")
    assert remote.signal(daemon, signal.SIGTERM)
    assert wait_until(lambda: not remote.alive(daemon))


def test_unsupported_signal_is_rejected(cluster: Cluster) -> None:
    remote = first(cluster)
    daemon = remote.start_daemon(["sleep", "300"], log="u.log", pidfile="u.pid")
    with pytest.raises(ValueError, match="unsupported signal"):
        remote.signal(daemon, signal.SIGHUP)
    remote.signal(daemon, signal.SIGKILL)


def test_collect_logs(cluster: Cluster, tmp_path: Path) -> None:
    remote = first(cluster)
    daemon = remote.start_daemon(["sh", "-c", "echo hello-log"], log="d.log", pidfile="d.pid")
    if not isinstance(remote, FakeRemote):
        assert wait_until(lambda: not remote.alive(daemon))
    collected = remote.collect_logs(tmp_path / "logs")
    assert [p.name for p in collected] == ["d.log"]
    assert collected[0].read_bytes()


def test_teardown_kills_daemons_and_is_idempotent(cluster: Cluster) -> None:
    remote = first(cluster)
    daemon = remote.start_daemon(["sleep", "300"], log="k.log", pidfile="k.pid")
    cluster.teardown()
    assert not remote.alive(daemon)
    cluster.teardown()


# --- netns only: real networking between nodes and from the control process ---

ECHO_SERVER = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(8)
while True:
    conn, _ = srv.accept()
    with conn:
        conn.sendall(conn.recv(1024))
"""

ECHO_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(b"ping")
    print(s.recv(1024).decode())
"""

PORT = 7070


def start_echo_server(remote: Remote) -> Daemon:
    remote.write_file("echo_server.py", ECHO_SERVER.encode())
    return remote.start_daemon(
        [sys.executable, "echo_server.py", str(PORT)], log="echo.log", pidfile="echo.pid"
    )


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"hi")
            return s.recv(16) == b"hi"
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.root
@pytest.mark.parametrize("cluster", ["netns"], indirect=True)
def test_netns_nodes_and_control_reach_each_other_over_tcp(cluster: Cluster) -> None:
    n1, n2, n3 = cluster.nodes
    start_echo_server(cluster.remote("n1"))
    assert wait_until(lambda: connects(n1.host, PORT)), "control cannot reach n1"
    for node in (n2, n3):
        remote = cluster.remote(node.name)
        remote.write_file("echo_client.py", ECHO_CLIENT.encode())
        out = remote.run([sys.executable, "echo_client.py", n1.host, str(PORT)], timeout=20)
        assert out.stdout == "ping\n"


@pytest.mark.integration
@pytest.mark.root
@pytest.mark.parametrize("cluster", ["netns"], indirect=True)
def test_netns_nodes_have_no_route_off_the_machine(cluster: Cluster) -> None:
    remote = first(cluster)
    routes = remote.run(["ip", "-4", "route", "show"]).stdout
    assert "default" not in routes
    assert all(line.startswith("10.213.") for line in routes.splitlines())
    assert remote.run(["ip", "-6", "addr", "show"]).stdout.strip() == ""
    links = remote.run(["ip", "-o", "link", "show"]).stdout.splitlines()
    assert [line.split(":")[1].strip().split("@")[0] for line in links] == ["lo", "eth0"]
