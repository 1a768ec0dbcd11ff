"""Settings of one broker process, validated at the boundary."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rift_broker.errors import ConfigError
from rift_broker.group import GroupConfig
from rift_broker.log import LogConfig

__all__ = ["BrokerConfig", "Durability", "parse_listen"]

Durability = Literal["fsync", "none"]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9092`` for IPv6) as a pair; :class:`ConfigError` if malformed."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"listen address {value!r} is not HOST:PORT")
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"port {port_text!r} in {value!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} in {value!r} is out of range 0-65535")
    return host, port


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    """Everything ``broker serve`` can be told; defaults suit a laptop."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    # Host and port put in Metadata answers; default: the listening ones.
    advertised_host: str | None = None
    advertised_port: int | None = None
    node_id: int = 0
    cluster_id: str = "rift"
    auto_create_topics: bool = False
    default_partitions: int = 1
    # "fsync": acks=1/all are answered after a (group-committed) fsync covering the
    # batch, and consumers only see fsynced data. "none": leave flushing to the OS.
    durability: Durability = "fsync"
    # Group commit: an fsync starts when this many appends wait, or the oldest has
    # waited this long (0: at once; batches still form while an fsync runs).
    group_commit_max_wait_ms: float = 0.0
    group_commit_max_batch: int = 1024
    max_request_bytes: int = 64 * 1024 * 1024
    max_inflight_bytes_per_connection: int = 64 * 1024 * 1024
    max_inflight_bytes: int = 256 * 1024 * 1024
    segment_bytes: int = 256 * 1024 * 1024
    retention_ms: int | None = None
    retention_bytes: int | None = None
    shutdown_timeout_s: float = 30.0
    maintenance_interval_s: float = 30.0
    # Consumer groups (Kafka's offsets.topic.num.partitions and group.* settings). The
    # partition count applies when __consumer_offsets is created; it never changes after.
    offsets_partitions: int = 50
    group_min_session_timeout_ms: int = 6_000
    group_max_session_timeout_ms: int = 1_800_000
    group_initial_rebalance_delay_ms: int = 3_000

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range 0-65535")
        if self.node_id < 0:
            raise ConfigError(f"node id must be >= 0, got {self.node_id}")
        if self.maintenance_interval_s <= 0:
            raise ConfigError("maintenance interval must be positive")
        if self.default_partitions < 1:
            raise ConfigError("default partitions must be >= 1")
        if self.durability not in ("fsync", "none"):
            raise ConfigError(f"durability must be 'fsync' or 'none', got {self.durability!r}")
        for name in (
            "max_request_bytes",
            "max_inflight_bytes_per_connection",
            "max_inflight_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        try:  # the log settings, checked by the log's own rules
            LogConfig(
                segment_bytes=self.segment_bytes,
                retention_ms=-1 if self.retention_ms is None else self.retention_ms,
                retention_bytes=-1 if self.retention_bytes is None else self.retention_bytes,
                group_commit_max_batch=self.group_commit_max_batch,
                group_commit_max_wait_ms=round(self.group_commit_max_wait_ms),
            )
        except ValueError as e:
            raise ConfigError(str(e).replace("_", "-")) from None
        if not 1 <= self.offsets_partitions <= 10_000:
            raise ConfigError(f"offsets-partitions must be 1-10000, got {self.offsets_partitions}")
        try:
            self.group_config  # noqa: B018 - validated by the coordinator's own rules
        except ValueError as e:
            raise ConfigError(f"group settings: {e}") from None
        if self.max_request_bytes > self.max_inflight_bytes_per_connection:
            raise ConfigError("max-request-bytes cannot exceed max-inflight-bytes-per-connection")
        if self.max_inflight_bytes_per_connection > self.max_inflight_bytes:
            raise ConfigError("max-inflight-bytes-per-connection cannot exceed max-inflight-bytes")

    @property
    def group_config(self) -> GroupConfig:
        return GroupConfig(
            min_session_timeout_ms=self.group_min_session_timeout_ms,
            max_session_timeout_ms=self.group_max_session_timeout_ms,
            initial_rebalance_delay_ms=self.group_initial_rebalance_delay_ms,
        )

    @property
    def advertised(self) -> tuple[str, int]:
        host = self.advertised_host or self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        try:
            if ipaddress.ip_address(host).version == 6 and host == "::":
                host = "::1"
        except ValueError:
            pass
        return host, self.advertised_port or self.port
