"""Coordinator settings (Kafka's broker-side group settings, same defaults)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GroupConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConfig:
    """Settings of the group coordinator.

    - ``min_session_timeout_ms`` / ``max_session_timeout_ms``: a JoinGroup outside this
      range gets INVALID_SESSION_TIMEOUT (``group.min/max.session.timeout.ms``).
    - ``initial_rebalance_delay_ms``: when an *empty* group gets its first member, the
      join waits this long (extended by the same again, up to the rebalance timeout,
      while new members keep arriving) so a starting fleet forms one generation
      instead of one per member (``group.initial.rebalance.delay.ms``). 0 disables it.
    - ``max_metadata_size``: longest commit metadata string
      (``offset.metadata.max.bytes``); longer gets OFFSET_METADATA_TOO_LARGE.
    """

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 3_000
    max_metadata_size: int = 4_096

    def __post_init__(self) -> None:
        if not 0 <= self.min_session_timeout_ms <= self.max_session_timeout_ms:
            raise ValueError(
                "need 0 <= min_session_timeout_ms <= max_session_timeout_ms, got "
                f"{self.min_session_timeout_ms} and {self.max_session_timeout_ms}"
            )
        if self.initial_rebalance_delay_ms < 0:
            raise ValueError("initial_rebalance_delay_ms must be >= 0")
        if self.max_metadata_size < 0:
            raise ValueError("max_metadata_size must be >= 0")
