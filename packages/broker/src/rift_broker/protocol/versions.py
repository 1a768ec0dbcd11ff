"""The API version table: which Kafka APIs the broker serves, in which versions.

Two ranges per API. ``supported`` is what the broker decodes and answers (kio has
schemas for it and the handler knows every field). ``advertised`` is what the broker
puts in its ApiVersions answer: DESIGN.md asks for a minimum of 0 everywhere, because
some clients refuse a broker that does not list version 0. A client always picks the
highest version both sides know, so in practice the advertised-but-unsupported low
versions are never used; if one arrives, the connection is closed (unsupported
version), exactly like any other undecodable request.

Only the flexible-free (pre-KIP-482) versions are served. :data:`BROKER_APIS` are
what every broker serves (:data:`DEFAULT_TABLE`); :data:`GROUP_APIS` are the
consumer-group APIs, which a broker adds to its table together with their handlers
(:func:`table_for` builds the table from the handlers a broker has).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ApiKey",
    "ApiSpec",
    "BROKER_APIS",
    "GROUP_APIS",
    "VersionTable",
    "DEFAULT_TABLE",
    "table_for",
]


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSpec:
    """One API: the versions decoded and answered, and the versions advertised."""

    key: ApiKey
    min_version: int
    max_version: int
    advertised_min: int = 0
    advertised_max: int | None = None  # None: same as max_version

    def __post_init__(self) -> None:
        if not 0 <= self.min_version <= self.max_version:
            raise ValueError(f"bad version range for {self.key.name}")
        if self.advertised_min > self.min_version:
            raise ValueError(f"{self.key.name} must advertise every supported version")

    @property
    def advertised(self) -> tuple[int, int]:
        top = self.max_version if self.advertised_max is None else self.advertised_max
        return self.advertised_min, top

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


BROKER_APIS: tuple[ApiSpec, ...] = (
    ApiSpec(key=ApiKey.PRODUCE, min_version=3, max_version=8),
    ApiSpec(key=ApiKey.FETCH, min_version=4, max_version=11),
    ApiSpec(key=ApiKey.LIST_OFFSETS, min_version=1, max_version=5),
    ApiSpec(key=ApiKey.METADATA, min_version=0, max_version=8),
    ApiSpec(key=ApiKey.API_VERSIONS, min_version=0, max_version=2),
    ApiSpec(key=ApiKey.CREATE_TOPICS, min_version=2, max_version=4),
    ApiSpec(key=ApiKey.INIT_PRODUCER_ID, min_version=0, max_version=1),
    ApiSpec(key=ApiKey.OFFSET_FOR_LEADER_EPOCH, min_version=2, max_version=3),
)

GROUP_APIS: tuple[ApiSpec, ...] = (
    ApiSpec(key=ApiKey.FIND_COORDINATOR, min_version=0, max_version=2),
    ApiSpec(key=ApiKey.JOIN_GROUP, min_version=0, max_version=5),
    ApiSpec(key=ApiKey.SYNC_GROUP, min_version=0, max_version=3),
    ApiSpec(key=ApiKey.HEARTBEAT, min_version=0, max_version=3),
    ApiSpec(key=ApiKey.LEAVE_GROUP, min_version=0, max_version=3),
    ApiSpec(key=ApiKey.OFFSET_COMMIT, min_version=2, max_version=7),
    ApiSpec(key=ApiKey.OFFSET_FETCH, min_version=1, max_version=5),
    ApiSpec(key=ApiKey.DESCRIBE_GROUPS, min_version=0, max_version=4),
    ApiSpec(key=ApiKey.LIST_GROUPS, min_version=0, max_version=2),
)


class VersionTable:
    """The APIs one broker serves, looked up by key."""

    __slots__ = ("_specs",)

    def __init__(self, specs: Iterable[ApiSpec]) -> None:
        table: dict[int, ApiSpec] = {}
        for spec in specs:
            if spec.key in table:
                raise ValueError(f"{spec.key.name} listed twice")
            table[int(spec.key)] = spec
        self._specs: Mapping[int, ApiSpec] = MappingProxyType(dict(sorted(table.items())))

    def get(self, api_key: int) -> ApiSpec | None:
        return self._specs.get(api_key)

    def supports(self, api_key: int, version: int) -> bool:
        spec = self._specs.get(api_key)
        return spec is not None and spec.supports(version)

    def specs(self) -> tuple[ApiSpec, ...]:
        return tuple(self._specs.values())

    def with_apis(self, extra: Iterable[ApiSpec]) -> VersionTable:
        return VersionTable((*self._specs.values(), *extra))


DEFAULT_TABLE = VersionTable(BROKER_APIS)


def table_for(served: Iterable[int]) -> VersionTable:
    """:data:`DEFAULT_TABLE` plus the group APIs among ``served`` (the API keys a broker
    has handlers for): a broker advertises a group API exactly when it can answer it."""
    keys = set(served)
    return DEFAULT_TABLE.with_apis(spec for spec in GROUP_APIS if spec.key in keys)
