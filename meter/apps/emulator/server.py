"""``Emulator``: the app served by uvicorn on a loopback port, in a background thread.

The listening socket is bound before the thread starts, so ``port=0`` gets a
free port whose number is known at once, and ``start`` returns only when the
server accepts connections. Tests and the demo talk to it over real sockets,
which is the point: the meter sits in the HTTP transport.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import uvicorn

from meter.apps.background import BackgroundServer
from meter.apps.emulator.app import create_app
from meter.apps.emulator.config import EmulatorConfig
from meter.apps.emulator.state import EmulatorState


class Emulator:
    """A running Azure OpenAI emulator; use as a context manager or ``start()`` / ``stop()``."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.state = EmulatorState()
        self.app = create_app(self.config, self.state)
        self._background = BackgroundServer(
            lambda: uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
                                   access_log=False),
            host, port, "meter-emulator")

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return self._background.url

    @property
    def usage_log(self) -> list[dict[str, Any]]:
        """One entry per answered request: what the emulator billed (live list)."""
        return self.state.ledger.entries

    def fail_next(self, status: int = 429, count: int = 1, deployment: str | None = None) -> None:
        """Fail the next ``count`` requests (to ``deployment``, or any) with ``status`` and Azure's body."""
        self.state.faults.add(status, count, deployment)

    def start(self) -> Self:
        self._background.start()
        self.port = self._background.port
        return self

    def stop(self) -> None:
        self._background.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
