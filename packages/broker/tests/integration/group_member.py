"""One consumer-group member as a process, for the group tests (``test_groups.py``).

``python group_member.py CLIENT BOOTSTRAP TOPIC GROUP`` subscribes to TOPIC in GROUP
with one of kafka-python, aiokafka, confluent-kafka or rift_client, and loops: poll,
report the records on stdout, commit exactly what it reported (synchronously), and
report the assignment whenever it changes. Each report is one JSON line::

    {"event": "assigned", "partitions": [0, 3]}
    {"event": "records", "items": [[partition, offset, "value"], ...]}
    {"event": "committed", "offsets": {"0": 17}}  /  {"event": "commit_failed", ...}
    {"event": "closed"}

A line ``close`` on stdin (or its end) makes it close the consumer, which leaves the
group, and exit 0. Killing it is a crash: no LeaveGroup, the session has to expire.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
MAX_POLL_INTERVAL_MS = 30000  # also the rebalance timeout the clients send
POLL_MS = 200


def report(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Loop:
    """What every client does with its consumer; subclasses adapt one library."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.stop = threading.Event()
        self.assignment: list[int] | None = None
        threading.Thread(target=self._watch_stdin, daemon=True).start()

    def _watch_stdin(self) -> None:
        for line in sys.stdin:
            if line.strip() == "close":
                break
        self.stop.set()

    def note_assignment(self, partitions: list[int]) -> None:
        partitions = sorted(partitions)
        if partitions != self.assignment:
            self.assignment = partitions
            report("assigned", partitions=partitions)

    def handle(self, items: list[tuple[int, int, bytes]]) -> dict[int, int] | None:
        """Report polled records; the offsets to commit (None: nothing polled)."""
        if not items:
            return None
        report("records", items=[[p, o, v.decode()] for p, o, v in items])
        offsets: dict[int, int] = {}
        for partition, offset, _ in items:
            offsets[partition] = max(offsets.get(partition, 0), offset + 1)
        return offsets

    def committed(self, offsets: dict[int, int]) -> None:
        report("committed", offsets={str(p): o for p, o in offsets.items()})


class KafkaPython(Loop):
    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id="kafka-python-member",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )
        consumer.subscribe([self.topic])
        while not self.stop.is_set():
            polled = consumer.poll(timeout_ms=POLL_MS)
            self.note_assignment([tp.partition for tp in consumer.assignment()])
            items = [(tp.partition, m.offset, m.value) for tp, ms in polled.items() for m in ms]
            offsets = self.handle(items)
            if offsets:
                try:
                    consumer.commit(
                        {
                            TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                            for p, o in offsets.items()
                        }
                    )
                except Exception as e:
                    report("commit_failed", error=repr(e))
                else:
                    self.committed(offsets)
        consumer.close()


class AioKafka(Loop):
    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id="aiokafka-member",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )
        await consumer.start()
        try:
            while not self.stop.is_set():
                polled = await consumer.getmany(timeout_ms=POLL_MS)
                self.note_assignment([tp.partition for tp in consumer.assignment()])
                items = [(tp.partition, m.offset, m.value) for tp, ms in polled.items() for m in ms]
                offsets = self.handle(items)
                if offsets:
                    try:
                        await consumer.commit(
                            {TopicPartition(self.topic, p): o for p, o in offsets.items()}
                        )
                    except Exception as e:
                        report("commit_failed", error=repr(e))
                    else:
                        self.committed(offsets)
        finally:
            await consumer.stop()


class Confluent(Loop):
    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "client.id": "confluent-member",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_MS,
                "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            }
        )
        consumer.subscribe([self.topic])
        while not self.stop.is_set():
            messages = consumer.consume(num_messages=500, timeout=POLL_MS / 1000)
            self.note_assignment([tp.partition for tp in consumer.assignment()])
            items = []
            for m in messages:
                if m.error() is not None:
                    report("poll_error", error=str(m.error()))
                    continue
                items.append((m.partition(), m.offset(), m.value()))
            offsets = self.handle(items)
            if offsets:
                try:
                    consumer.commit(
                        offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()],
                        asynchronous=False,
                    )
                except Exception as e:
                    report("commit_failed", error=repr(e))
                else:
                    self.committed(offsets)
        consumer.close()


class Rift(Loop):
    def run(self) -> None:
        from rift_client import ClientError, TopicPartition, sync

        consumer = sync.Consumer(
            self.bootstrap,
            client_id="rift-member",
            group_id=self.group,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            rebalance_timeout_ms=MAX_POLL_INTERVAL_MS,
        )
        try:
            consumer.subscribe([self.topic])
            while not self.stop.is_set():
                records = consumer.poll(timeout_ms=POLL_MS)
                self.note_assignment([tp.partition for tp in consumer.assignment()])
                offsets = self.handle([(r.partition, r.offset, r.value or b"") for r in records])
                if offsets:
                    try:
                        consumer.commit(
                            {
                                TopicPartition(topic=self.topic, partition=p): o
                                for p, o in offsets.items()
                            }
                        )
                    except ClientError as e:
                        report("commit_failed", error=repr(e))
                    else:
                        self.committed(offsets)
        finally:
            consumer.close()


CLIENTS: dict[str, type[Any]] = {
    "kafka-python": KafkaPython,
    "aiokafka": AioKafka,
    "confluent-kafka": Confluent,
    "rift": Rift,
}


def main() -> None:
    client, bootstrap, topic, group = sys.argv[1:5]
    CLIENTS[client](bootstrap, topic, group).run()
    report("closed")


if __name__ == "__main__":
    main()
