"""An OtlpReceiver serving from its own thread and event loop, for synchronous programs (`make
demo`, the benchmarks) and for a pytest session, whose tests each run in their own event loop."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from shop_devstack.traces.receiver import OtlpReceiver

OTLP_HTTP_PORT = 4318  # the standard OTLP/HTTP port: what an SDK with no endpoint exports to


class BackgroundReceiver:
    """`with BackgroundReceiver() as receiver:` — receiver is the running OtlpReceiver; its
    spans(), endpoint and counters can be read from any thread, and wait_for awaited in any loop."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", **options: Any) -> None:
        self.receiver = OtlpReceiver(port, host, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="otlp-receiver", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.receiver.start())
        except BaseException as exc:  # handed to start(), which raises it in the caller's thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.receiver.stop())
        self._loop.close()

    def start(self) -> OtlpReceiver:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.receiver

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_preferring(port: int, **options: Any) -> BackgroundReceiver:
    """A started BackgroundReceiver on `port` when it is free, else on an ephemeral port."""
    for candidate in (port, 0):
        background = BackgroundReceiver(candidate, **options)
        try:
            background.start()
        except OSError:
            continue
        return background
    raise OSError("no port for the OTLP receiver")  # unreachable: port 0 always binds
