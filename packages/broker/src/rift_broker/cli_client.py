"""The client side of the ``broker`` command: topics, produce, consume (via rift_client).

Each command talks to a running broker (``--bootstrap-server``, default
127.0.0.1:9092) through the synchronous facade of :mod:`rift_client`. Client
errors become one-line messages and a non-zero exit, like everything else in
:mod:`rift_broker.cli`.

``consume`` reads every partition of a topic, or, with ``--group``, the partitions
the consumer group assigns it: it starts at the group's committed offsets (where
there are none, at the beginning with ``--from-beginning``, else at the end), and
after printing each poll's records it commits exactly what it printed, so another
member (or the next run) goes on after the last printed record. A commit refused
because the group rebalanced is reported on stderr and not fatal: those records
may be printed again by whoever gets their partition.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rift_broker.errors import BrokerError
from rift_client import ClientError, TopicPartition, sync
from rift_client.errors import KafkaError

__all__ = ["add_commands"]

T = TypeVar("T")


class CommandFailed(BrokerError):
    """A client command failed; the message says why."""


@contextmanager
def _client_errors(bootstrap: str) -> Iterator[None]:
    try:
        yield
    except ClientError as e:
        raise CommandFailed(f"{e} (broker {bootstrap})") from None


def _open(factory: Callable[..., T], args: argparse.Namespace, **settings: Any) -> T:
    with _client_errors(args.bootstrap_server):
        return factory(args.bootstrap_server, request_timeout_ms=args.timeout_ms, **settings)


def _bootstrap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-b",
        "--bootstrap-server",
        default="127.0.0.1:9092",
        metavar="HOST:PORT",
        help="a broker to talk to (default 127.0.0.1:9092)",
    )
    parser.add_argument(
        "--timeout-ms", type=float, default=10_000, help="request timeout (default 10000)"
    )


def _topics_create(args: argparse.Namespace) -> int:
    configs: dict[str, str] = {}
    for item in args.config or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CommandFailed(f"--config {item!r} is not KEY=VALUE")
        configs[key] = value
    admin = _open(sync.Admin, args)
    try:
        with _client_errors(args.bootstrap_server):
            admin.create_topic(
                args.topic,
                partitions=args.partitions,
                replication_factor=args.replication_factor,
                configs=configs,
            )
    finally:
        admin.close()
    print(f"created topic {args.topic} ({args.partitions} partitions)")
    return 0


def _topics_list(args: argparse.Namespace) -> int:
    admin = _open(sync.Admin, args)
    try:
        with _client_errors(args.bootstrap_server):
            for name in admin.list_topics():
                print(name)
    finally:
        admin.close()
    return 0


def _topics_describe(args: argparse.Namespace) -> int:
    admin = _open(sync.Admin, args)
    try:
        with _client_errors(args.bootstrap_server):
            infos = admin.describe_topics(args.topics or None)
            for name in sorted(infos):
                info = infos[name]
                if info.error:
                    raise CommandFailed(f"topic {name}: Kafka error {info.error}")
                print(f"topic {name}: {len(info.partitions)} partitions")
                for p in info.partitions:
                    print(
                        f"  partition {p.partition}: leader {p.leader} epoch {p.epoch}"
                        f" replicas {list(p.replicas)} isr {list(p.isr)}"
                    )
    finally:
        admin.close()
    return 0


def _produce(args: argparse.Namespace) -> int:
    producer = _open(sync.Producer, args, acks=args.acks)
    count = 0
    try:
        with _client_errors(args.bootstrap_server):
            pairs: list[tuple[bytes | None, bytes | None]] = []
            for line in sys.stdin.buffer:
                text = line.rstrip(b"\r\n")
                key: bytes | None = None
                if args.key_separator:
                    sep = args.key_separator.encode()
                    if sep in text:
                        key, text = text.split(sep, 1)
                pairs.append((key, text))
                if len(pairs) >= 1000:
                    count += _send(producer, args.topic, pairs)
                    pairs = []
            count += _send(producer, args.topic, pairs)
    finally:
        producer.close()
    print(f"produced {count} records to {args.topic}", file=sys.stderr)
    return 0


def _send(producer: Any, topic: str, pairs: list[tuple[bytes | None, bytes | None]]) -> int:
    if not pairs:
        return 0
    for report in producer.send_many(topic, pairs):
        if not report.ok:
            raise CommandFailed(f"a record was not delivered: {report}")
    return len(pairs)


def _consume(args: argparse.Namespace) -> int:
    admin = _open(sync.Admin, args)
    try:
        with _client_errors(args.bootstrap_server):
            info = admin.describe_topics([args.topic])[args.topic]
    finally:
        admin.close()
    if info.error:
        raise CommandFailed(f"topic {args.topic}: Kafka error {info.error}")
    if args.group is None:
        consumer = _open(sync.Consumer, args)
    else:
        consumer = _open(
            sync.Consumer,
            args,
            group_id=args.group,
            auto_offset_reset="earliest" if args.from_beginning else "latest",
            session_timeout_ms=args.session_timeout_ms,
            heartbeat_interval_ms=max(args.session_timeout_ms / 10, 100),
        )
    seen = 0
    try:
        with _client_errors(args.bootstrap_server):
            if args.group is None:
                tps = [
                    TopicPartition(topic=args.topic, partition=p.partition) for p in info.partitions
                ]
                consumer.assign(tps)
                if args.from_beginning:
                    consumer.seek_to_beginning(*tps)
                else:
                    consumer.seek_to_end(*tps)
            else:
                consumer.subscribe([args.topic])
            idle_since = time.monotonic()
            out = sys.stdout.buffer
            while args.max_messages is None or seen < args.max_messages:
                records = consumer.poll(timeout_ms=500)
                printed: dict[TopicPartition, int] = {}
                for record in records:
                    if args.print_key:
                        out.write((record.key or b"") + args.key_separator.encode())
                    out.write((record.value or b"") + b"\n")
                    printed[TopicPartition(topic=record.topic, partition=record.partition)] = (
                        record.offset + 1
                    )
                    seen += 1
                    if args.max_messages is not None and seen >= args.max_messages:
                        break
                out.flush()
                if printed and args.group is not None:
                    _commit_printed(consumer, printed)
                if records:
                    idle_since = time.monotonic()
                elif (
                    args.idle_timeout_ms is not None
                    and (time.monotonic() - idle_since) * 1000 >= args.idle_timeout_ms
                ):
                    break
    finally:
        consumer.close()  # in a group: leave it, so the others take over at once
    return 0


# A commit refused because the group moved on (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
# REBALANCE_IN_PROGRESS): the consumer rejoins; the printed records may come again.
_REBALANCED = frozenset({22, 25, 27})


def _commit_printed(consumer: Any, offsets: dict[TopicPartition, int]) -> None:
    try:
        consumer.commit(offsets)
    except KafkaError as e:
        if e.code not in _REBALANCED:
            raise
        sys.stderr.write(f"commit not applied, the group rebalanced: {e}\n")


def add_commands(sub: Any) -> None:
    """Add ``topics``, ``produce`` and ``consume`` to the ``broker`` command."""
    topics = sub.add_parser(
        "topics", help="create, list and describe topics", description="Manage topics."
    )
    topic_sub = topics.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = topic_sub.add_parser("create", help="create a topic", description="Create a topic.")
    create.add_argument("topic")
    create.add_argument("-p", "--partitions", type=int, default=1, help="number of partitions")
    create.add_argument("--replication-factor", type=int, default=1, help="replicas per partition")
    create.add_argument(
        "--config", action="append", metavar="KEY=VALUE", help="topic config (repeatable)"
    )
    _bootstrap(create)
    create.set_defaults(handler=_topics_create)
    listing = topic_sub.add_parser("list", help="list topic names", description="List topics.")
    _bootstrap(listing)
    listing.set_defaults(handler=_topics_list)
    describe = topic_sub.add_parser(
        "describe", help="show partitions and leaders", description="Describe topics."
    )
    describe.add_argument("topics", nargs="*", metavar="TOPIC", help="default: every topic")
    _bootstrap(describe)
    describe.set_defaults(handler=_topics_describe)

    produce = sub.add_parser(
        "produce",
        help="send lines from stdin as records",
        description="Send each line of stdin as one record (acks=all, idempotent by default).",
    )
    produce.add_argument("topic")
    produce.add_argument(
        "--key-separator", help="split each line at the first SEP into key and value"
    )
    produce.add_argument("--acks", choices=("0", "1", "all"), default="all")
    _bootstrap(produce)
    produce.set_defaults(handler=_produce)

    consume = sub.add_parser(
        "consume",
        help="print records to stdout",
        description=(
            "Print the values of a topic's records, one per line: every partition, or with"
            " --group the ones the consumer group assigns (committing what is printed)."
        ),
    )
    consume.add_argument("topic")
    consume.add_argument(
        "--from-beginning", action="store_true", help="start at the earliest offset, not the end"
    )
    consume.add_argument("--max-messages", type=int, help="stop after this many records")
    consume.add_argument(
        "--idle-timeout-ms", type=float, help="stop when nothing arrives for this long"
    )
    consume.add_argument(
        "--group",
        metavar="GROUP",
        help="consume as a member of this consumer group: its partitions only, from the"
        " group's committed offsets, committing what is printed",
    )
    consume.add_argument(
        "--session-timeout-ms",
        type=float,
        default=10_000,
        help="with --group: the group drops this member after this long without a"
        " heartbeat (default 10000)",
    )
    consume.add_argument("--print-key", action="store_true", help="print KEY<sep>VALUE")
    consume.add_argument("--key-separator", default="\t", help="separator for --print-key")
    _bootstrap(consume)
    consume.set_defaults(handler=_consume)
