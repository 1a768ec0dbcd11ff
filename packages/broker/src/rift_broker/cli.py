"""The ``broker`` command: run a broker, and talk to one.

``broker serve`` runs the reference broker in the foreground, logging to stderr,
until SIGTERM or SIGINT (then it shuts down gracefully). Settings come from flags,
or from a TOML file given with ``--config`` (keys as the long flags, with ``-`` or
``_``); flags win over the file. Every error is one line on stderr and a non-zero
exit status; nothing prints a traceback unless ``--log-level debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rift_broker.errors import BrokerError, ConfigError

__all__ = ["main", "build_parser", "load_config"]

_PROG = "broker"
# File keys -> BrokerConfig fields, and how to convert them.
_FILE_KEYS: dict[str, str] = {
    "data_dir": "data_dir",
    "listen": "listen",
    "advertised_listener": "advertised_listener",
    "node_id": "node_id",
    "cluster_id": "cluster_id",
    "auto_create_topics": "auto_create_topics",
    "default_partitions": "default_partitions",
    "durability": "durability",
    "group_commit_max_wait_ms": "group_commit_max_wait_ms",
    "group_commit_max_batch": "group_commit_max_batch",
    "max_request_bytes": "max_request_bytes",
    "max_inflight_bytes_per_connection": "max_inflight_bytes_per_connection",
    "max_inflight_bytes": "max_inflight_bytes",
    "segment_bytes": "segment_bytes",
    "retention_ms": "retention_ms",
    "retention_bytes": "retention_bytes",
    "shutdown_timeout_s": "shutdown_timeout_s",
    "maintenance_interval_s": "maintenance_interval_s",
    "offsets_partitions": "offsets_partitions",
    "group_initial_rebalance_delay_ms": "group_initial_rebalance_delay_ms",
    "group_min_session_timeout_ms": "group_min_session_timeout_ms",
    "group_max_session_timeout_ms": "group_max_session_timeout_ms",
    "log_level": "log_level",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2 (argparse prints usage too)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run a broker in the foreground",
        description=(
            "Run the reference broker until SIGTERM or SIGINT, then stop gracefully "
            "(finish in-flight requests, fsync, close). Settings from flags or --config FILE "
            "(TOML, keys as the long flags); flags win."
        ),
    )
    serve.add_argument(
        "--config", type=Path, help="TOML file with settings (keys as the long flags)"
    )
    serve.add_argument(
        "--data-dir", type=Path, help="directory of the partition logs (created if missing)"
    )
    serve.add_argument(
        "--listen", help="HOST:PORT to listen on (default 127.0.0.1:9092; port 0 = any)"
    )
    serve.add_argument(
        "--advertised-listener", help="HOST:PORT to give clients in Metadata (default: --listen)"
    )
    serve.add_argument("--node-id", type=int, help="this broker's node id (default 0)")
    serve.add_argument(
        "--controllers",
        metavar="ID@HOST:PORT,...",
        help="run as one node of a cluster: every node's cluster listener (Raft metadata "
        "quorum and replication); this node listens on its own entry",
    )
    serve.add_argument(
        "--session-timeout-ms",
        type=int,
        default=6000,
        help="cluster: fence a broker whose heartbeats lapse this long (default 6000)",
    )
    serve.add_argument(
        "--election-timeout-ms",
        type=int,
        default=1000,
        help="cluster: Raft election timeout (default 1000)",
    )
    serve.add_argument(
        "--replica-lag-time-max-ms",
        type=int,
        default=10000,
        help="cluster: drop a follower from the ISR after lagging this long (default 10000)",
    )
    serve.add_argument("--cluster-id", help="cluster id reported in Metadata")
    serve.add_argument(
        "--auto-create-topics",
        action="store_true",
        default=None,
        help="create unknown topics on Metadata requests (off by default)",
    )
    serve.add_argument("--default-partitions", type=int, help="partitions of auto-created topics")
    serve.add_argument(
        "--durability",
        choices=("fsync", "none"),
        help=(
            "fsync (default): answer acks=1/all after a group-committed fsync;"
            " none: leave flushing to the OS"
        ),
    )
    serve.add_argument(
        "--group-commit-max-wait-ms",
        type=float,
        help="how long a group commit may wait for more appends",
    )
    serve.add_argument(
        "--group-commit-max-batch",
        type=int,
        help="start an fsync once this many appends wait (default 1024)",
    )
    serve.add_argument(
        "--max-request-bytes",
        type=int,
        help="largest request accepted (bigger closes the connection)",
    )
    serve.add_argument(
        "--max-inflight-bytes-per-connection", type=int, help="backpressure budget per connection"
    )
    serve.add_argument(
        "--max-inflight-bytes", type=int, help="backpressure budget of the whole broker"
    )
    serve.add_argument("--segment-bytes", type=int, help="roll log segments at this size")
    serve.add_argument(
        "--retention-ms", type=int, help="delete segments older than this (-1: never)"
    )
    serve.add_argument(
        "--retention-bytes", type=int, help="keep at most this much per partition (-1: no limit)"
    )
    serve.add_argument(
        "--shutdown-timeout-s",
        type=float,
        help="bound on waiting for in-flight requests at shutdown",
    )
    serve.add_argument(
        "--maintenance-interval-s",
        type=float,
        help="how often to roll aged segments and apply retention (default 30)",
    )
    serve.add_argument(
        "--offsets-partitions",
        type=int,
        help="partitions of __consumer_offsets when it is created (default 50)",
    )
    serve.add_argument(
        "--group-initial-rebalance-delay-ms",
        type=int,
        help="how long a new group waits for more members before its first generation"
        " (default 3000)",
    )
    serve.add_argument(
        "--group-min-session-timeout-ms",
        type=int,
        help="shortest session timeout a group member may ask for (default 6000)",
    )
    serve.add_argument(
        "--group-max-session-timeout-ms",
        type=int,
        help="longest session timeout a group member may ask for (default 1800000)",
    )
    serve.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="stderr log level (default info)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Rift's reference broker: a Kafka-compatible commit log you can run and study.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_serve(sub)
    from rift_broker.cluster.dev import add_cluster_command

    add_cluster_command(sub)
    try:
        from rift_broker import cli_client
    except ImportError:  # the client commands need rift_client
        pass
    else:
        cli_client.add_commands(sub)
    from rift_broker.bench.broker_bench import add_bench_command

    add_bench_command(sub)
    return parser


def load_config(args: argparse.Namespace) -> Any:
    """The :class:`BrokerConfig` from ``--config`` and the flags (flags win)."""
    from rift_broker.server import BrokerConfig, parse_listen

    values: dict[str, Any] = {}
    if args.config is not None:
        try:
            raw = tomllib.loads(Path(args.config).read_text())
        except OSError as e:
            raise ConfigError(f"cannot read config file {args.config}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {args.config} is not valid TOML: {e}") from None
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name not in _FILE_KEYS:
                raise ConfigError(f"unknown setting {key!r} in {args.config}")
            values[name] = value
    for name in _FILE_KEYS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    values.pop("log_level", None)
    if "data_dir" not in values:
        raise ConfigError("--data-dir is required (or data_dir in the config file)")
    values["data_dir"] = Path(values["data_dir"])
    listen = values.pop("listen", "127.0.0.1:9092")
    values["host"], values["port"] = parse_listen(str(listen))
    advertised = values.pop("advertised_listener", None)
    if advertised is not None:
        values["advertised_host"], values["advertised_port"] = parse_listen(str(advertised))
    try:
        return BrokerConfig(**values)
    except TypeError as e:
        raise ConfigError(f"bad setting: {e}") from None


def _serve(args: argparse.Namespace) -> int:
    from rift_broker.server import run_broker

    config = load_config(args)
    try:
        if args.controllers:
            from rift_broker.cluster.server import (
                ClusterSettings,
                parse_controllers,
                run_cluster_broker,
            )

            settings = ClusterSettings(
                controllers=parse_controllers(args.controllers),
                session_timeout_ms=args.session_timeout_ms,
                election_timeout_ms=args.election_timeout_ms,
                heartbeat_interval_ms=max(args.election_timeout_ms // 10, 10),
                broker_heartbeat_ms=max(args.session_timeout_ms // 6, 50),
                replica_lag_time_max_ms=args.replica_lag_time_max_ms,
            )
            asyncio.run(run_cluster_broker(config, settings))
        else:
            asyncio.run(run_broker(config))
    except OSError as e:
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {e.strerror or e}"
        ) from None
    return 0


def _log_level(args: argparse.Namespace) -> str:
    level = getattr(args, "log_level", None)
    if level is None and args.command == "serve" and args.config is not None:
        try:
            level = tomllib.loads(Path(args.config).read_text()).get("log_level")
        except (OSError, tomllib.TOMLDecodeError):
            level = None
    return str(level or "info")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    level = _log_level(args)
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return _serve(args)
        handler = args.handler
        return int(handler(args))
    except (BrokerError, OSError) as e:
        if level == "debug":
            raise
        message = str(e) if isinstance(e, BrokerError) else f"{type(e).__name__}: {e}"
        sys.stderr.write(f"{_PROG}: error: {message}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
