"""``broker bench --start``: a broker in a child process the bench can ask for counters.

The broker runs in its own process (``spawn``), not in a thread of the bench: a
thread would share the bench's GIL with the load generator and measure the two
fighting over it, not the broker. A pipe carries three messages: the child sends
``("started", port)``; the parent asks ``"stats"`` (answered with
:class:`BrokerStats`: group-commit fsyncs, the log end offsets and the process's
CPU time, read on the broker's own loop) and ``"stop"`` (a graceful stop, answered ``"stopped"``).
The child's pid is what to give py-spy.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rift_broker.errors import BrokerError

__all__ = ["BrokerProcess", "BrokerStats"]

_START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerStats:
    fsyncs: int  # group commits (each fsyncs the log; indexes too when a segment rolled)
    records: int  # sum of the log end offsets: records appended since the topic began
    log_bytes: int
    cpu_seconds: float  # the broker process's CPU time (every thread) so far


class BrokerProcess:
    """``with BrokerProcess(data_dir=...) as broker: broker.bootstrap, broker.stats(topic)``."""

    def __init__(self, *, data_dir: Path, settings: dict[str, Any] | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(child, str(data_dir), dict(settings or {})),
            name="rift-bench-broker",
            daemon=True,
        )
        self._child = child
        self.port = 0

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> BrokerProcess:
        self._process.start()
        self._child.close()
        message = self._receive(_START_TIMEOUT_S)
        if not (isinstance(message, tuple) and message[0] == "started"):
            raise BrokerError(f"the benchmark's broker did not start: {message}")
        self.port = int(message[1])
        return self

    def _receive(self, timeout_s: float) -> Any:
        if not self._conn.poll(timeout_s):
            raise BrokerError(f"the benchmark's broker did not answer within {timeout_s:.0f} s")
        try:
            return self._conn.recv()
        except EOFError:
            raise BrokerError("the benchmark's broker exited (see its log above)") from None

    def stats(self, topic: str) -> BrokerStats:
        self._conn.send(("stats", topic))
        result = self._receive(30.0)
        assert isinstance(result, BrokerStats)
        return result

    def stop(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(("stop", ""))
                self._receive(60.0)
            except (BrokerError, OSError):
                pass
        self._process.join(60.0)
        if self._process.is_alive():  # pragma: no cover - a wedged broker
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _child_main(conn: Connection, data_dir: str, settings: dict[str, Any]) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s broker: %(message)s"
    )
    try:
        asyncio.run(_serve(conn, data_dir, settings))
    except BaseException as e:
        try:
            conn.send(("failed", f"{type(e).__name__}: {e}"))
        except OSError:
            pass
        raise


async def _serve(conn: Connection, data_dir: str, settings: dict[str, Any]) -> None:
    from rift_broker.server import Broker, BrokerConfig

    broker = Broker(BrokerConfig(data_dir=Path(data_dir), host="127.0.0.1", port=0, **settings))
    await broker.start()
    conn.send(("started", broker.port))
    loop = asyncio.get_running_loop()
    # Its own thread for the blocking recv: the default executor runs the fsyncs.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rift-bench-pipe") as pipe:
        while True:
            try:
                command, topic = await loop.run_in_executor(pipe, conn.recv)
            except EOFError:  # the bench went away: stop anyway
                await broker.stop()
                return
            if command == "stats":
                conn.send(_stats(broker, topic))
            elif command == "stop":
                await broker.stop()
                conn.send("stopped")
                return


def _stats(broker: Any, topic: str) -> BrokerStats:
    fsyncs = records = log_bytes = 0
    for partition in broker.context.registry.partitions():
        if partition.topic != topic:
            continue
        fsyncs += partition.fsyncs
        records += partition.log.log_end_offset
        log_bytes += partition.log.size_bytes
    return BrokerStats(
        fsyncs=fsyncs, records=records, log_bytes=log_bytes, cpu_seconds=time.process_time()
    )
