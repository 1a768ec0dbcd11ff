"""A broker in a background thread, for tests and tools that use blocking clients.

``with BrokerThread(config) as broker: ...`` starts a real broker (real sockets,
real files) on its own event loop and thread, and stops it gracefully on exit;
``broker.bootstrap`` is the ``host:port`` to give a client. Use port 0 for an
ephemeral port.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

from rift_broker.server.broker import Broker
from rift_broker.server.config import BrokerConfig

__all__ = ["BrokerThread"]

T = TypeVar("T")


class BrokerThread:
    def __init__(self, config: BrokerConfig, *, start_timeout_s: float = 30.0) -> None:
        self.config = config
        self._timeout = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Broker | None = None
        self._started: Future[int] = Future()
        self._thread = threading.Thread(target=self._main, name="rift-broker", daemon=True)

    @property
    def port(self) -> int:
        return self._started.result(self._timeout)

    @property
    def bootstrap(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def broker(self) -> Broker:
        assert self._broker is not None
        return self._broker

    def call(self, function: Callable[[Broker], T], *, timeout_s: float = 30.0) -> T:
        """Run ``function(broker)`` on the broker's loop thread (its state is not thread-safe)."""
        assert self._loop is not None
        assert self._broker is not None
        broker = self._broker

        async def run() -> T:
            return function(broker)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        broker = Broker(self.config)
        self._broker = broker
        try:
            await broker.start()
        except BaseException as e:
            self._started.set_exception(e)
            return
        self._started.set_result(broker.port)
        await broker.wait_stopped()

    def start(self) -> BrokerThread:
        self._thread.start()
        self._started.result(self._timeout)
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        if self._loop is not None and self._broker is not None and self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._broker.stop(), self._loop)
            done.result(timeout_s)
        self._thread.join(timeout_s)

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
