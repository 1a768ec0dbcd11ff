"""The asyncio admin client: create, list and describe topics; list offsets.

``create_topics`` goes to the controller the metadata names (any broker if none);
NOT_CONTROLLER and connection errors refresh the metadata and retry until the
deadline. Its per-topic result follows :mod:`rift_client.outcome`: ``None`` is ok;
an error's ``definite`` says whether the topic certainly was not created (a
REQUEST_TIMED_OUT or a lost connection is unknown). ``describe_topics`` reports
what Metadata says per partition: leader, leader epoch, replicas and ISR.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from rift_client import errors, protocol
from rift_client._offsets import EARLIEST, LATEST, list_offsets
from rift_client.cluster import Cluster
from rift_client.errors import ClientError, ClientTimeout, InvalidArgument, for_code
from rift_client.protocol import Api
from rift_client.types import BrokerInfo, NewTopic, TopicInfo, TopicPartition

__all__ = ["Admin"]

_SPECS = {"earliest": EARLIEST, "latest": LATEST}


class Admin:
    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str = "rift-admin",
        request_timeout_ms: float = 30000,
        retry_backoff_ms: float = 100,
    ) -> None:
        self.request_timeout = request_timeout_ms / 1000
        self.backoff = retry_backoff_ms / 1000
        self.cluster = Cluster(
            bootstrap_servers, client_id=client_id, request_timeout=self.request_timeout
        )

    async def start(self) -> None:
        await self.cluster.refresh([])

    async def __aenter__(self) -> Admin:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.cluster.close()

    # --- topics --------------------------------------------------------------

    async def create_topics(
        self, topics: Sequence[NewTopic], *, timeout_ms: float = 30000, validate_only: bool = False
    ) -> dict[str, ClientError | None]:
        """Create ``topics``; per topic ``None`` (created) or the error."""
        for topic in topics:
            if not topic.name or topic.partitions < 1 or topic.replication_factor < 1:
                raise InvalidArgument(f"bad topic spec {topic!r}")
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_ms / 1000
        pending = {t.name: t for t in topics}
        results: dict[str, ClientError | None] = {}
        maybe_applied: set[str] = set()
        while pending:
            try:
                answers = await self._create_once(
                    list(pending.values()),
                    broker_timeout=timeout_ms / 1000,
                    validate_only=validate_only,
                )
            except ClientError as exc:
                if not exc.definite:
                    maybe_applied.update(pending)
                if not exc.retriable or loop.time() + self.backoff >= give_up:
                    for name in pending:
                        results[name] = _with_definite(exc, name not in maybe_applied)
                    return results
                await self._stale()
                continue
            retry = False
            for name, error in answers.items():
                if name not in pending:
                    continue
                if error is None or (
                    isinstance(error, errors.TopicAlreadyExists)
                    and name in maybe_applied  # our earlier attempt won
                ):
                    results[name] = None
                elif error.retriable and loop.time() + self.backoff < give_up:
                    retry = True
                    if not error.definite:
                        maybe_applied.add(name)
                    continue
                else:
                    results[name] = _with_definite(
                        error, error.definite and name not in maybe_applied
                    )
                del pending[name]
            if retry:
                await self._stale()
        return results

    async def _stale(self) -> None:
        await asyncio.sleep(self.backoff)
        try:
            await self.cluster.refresh([])
        except ClientError:
            pass

    async def _create_once(
        self, topics: list[NewTopic], *, broker_timeout: float, validate_only: bool
    ) -> dict[str, ClientError | None]:
        if self.cluster.controller in self.cluster.brokers:
            conn = await self.cluster.connection(self.cluster.controller)
        else:
            conn = await self.cluster.any_connection()
        version = conn.version(Api.CREATE_TOPICS)
        body = protocol.request(
            Api.CREATE_TOPICS,
            version,
            topics=tuple(
                protocol.make(
                    Api.CREATE_TOPICS,
                    version,
                    "CreatableTopic",
                    name=t.name,
                    num_partitions=t.partitions,
                    replication_factor=t.replication_factor,
                    assignments=(),
                    configs=tuple(
                        protocol.make(
                            Api.CREATE_TOPICS, version, "CreatableTopicConfig", name=k, value=v
                        )
                        for k, v in t.configs
                    ),
                )
                for t in topics
            ),
            timeout=protocol.duration(broker_timeout),
            validate_only=validate_only,
        )
        response = await conn.send(body, time_limit=self.request_timeout + broker_timeout)
        answers: dict[str, ClientError | None] = {}
        for result in response.topics:
            code = int(result.error_code)
            message = getattr(result, "error_message", None)
            answers[result.name] = None if code == 0 else for_code(code, message or result.name)
        return answers

    async def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        replication_factor: int = 1,
        configs: Mapping[str, str] | None = None,
        timeout_ms: float = 30000,
    ) -> None:
        """Create one topic or raise its error (``.definite`` says if it surely failed)."""
        spec = NewTopic(
            name=name,
            partitions=partitions,
            replication_factor=replication_factor,
            configs=tuple((configs or {}).items()),
        )
        error = (await self.create_topics([spec], timeout_ms=timeout_ms))[name]
        if error is not None:
            raise error

    async def list_topics(self, *, internal: bool = False) -> list[str]:
        await self.cluster.refresh(None)
        return sorted(
            name for name, info in self.cluster.topics.items() if internal or not info.internal
        )

    async def describe_topics(self, topics: Iterable[str] | None = None) -> dict[str, TopicInfo]:
        """Per topic, every partition's leader, epoch, replicas and ISR.

        Raises UnknownTopicOrPartition (definite) for a named topic that does not exist."""
        names = None if topics is None else sorted(set(topics))
        await self.cluster.refresh(names)
        if names is None:
            return dict(sorted(self.cluster.topics.items()))
        missing = [n for n in names if n not in self.cluster.topics]
        if missing:
            raise for_code(3, f"no such topic: {', '.join(missing)}", definite=True)
        return {n: self.cluster.topics[n] for n in names}

    async def describe_cluster(self) -> tuple[list[BrokerInfo], int]:
        """The brokers and the controller id (-1 if unknown)."""
        await self.cluster.refresh([])
        return sorted(self.cluster.brokers.values(), key=lambda b: b.node), self.cluster.controller

    async def wait_for_leaders(self, topic: str, *, timeout_ms: float = 30000) -> TopicInfo:
        """Poll metadata until every partition of ``topic`` has a leader."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_ms / 1000
        while True:
            try:
                await self.cluster.refresh([topic])
            except ClientError:
                pass
            info = self.cluster.topics.get(topic)
            if info and info.partitions and all(p.leader >= 0 for p in info.partitions):
                return info
            if loop.time() >= give_up:
                raise ClientTimeout(
                    f"{topic!r} has no leader for every partition yet", definite=True
                )
            await asyncio.sleep(self.backoff)

    # --- offsets -------------------------------------------------------------

    async def list_offsets(
        self, partitions: Iterable[TopicPartition], *, spec: str | int = "latest"
    ) -> dict[TopicPartition, int]:
        """``spec``: "earliest", "latest", or a timestamp in ms."""
        timestamp = _SPECS.get(spec) if isinstance(spec, str) else spec
        if timestamp is None:
            raise InvalidArgument("spec is 'earliest', 'latest' or a timestamp in ms")
        tps = list(partitions)
        missing = {tp.topic for tp in tps if tp.topic not in self.cluster.topics}
        if missing:
            await self.cluster.refresh(missing)
        return await list_offsets(
            self.cluster,
            tps,
            timestamp=timestamp,
            deadline=self.request_timeout,
            backoff=self.backoff,
        )


def _with_definite(error: ClientError, definite: bool) -> ClientError:
    error.definite = definite
    return error
