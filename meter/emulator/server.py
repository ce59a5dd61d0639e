"""``Emulator``: the app served by uvicorn on a loopback port, in a background thread.

The listening socket is bound before the thread starts, so ``port=0`` gets a
free port whose number is known at once, and ``start`` returns only when the
server accepts connections. Tests and the demo talk to it over real sockets,
which is the point: the meter sits in the HTTP transport.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from meter.emulator.app import create_app
from meter.emulator.config import EmulatorConfig
from meter.emulator.state import EmulatorState

_START_TIMEOUT_S = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``0``: a free port, read it from ``getsockname``).

    It listens at once, so clients that connect before uvicorn is serving wait
    in the backlog instead of being refused.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class Emulator:
    """A running Azure OpenAI emulator; use as a context manager or ``start()`` / ``stop()``."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.state = EmulatorState()
        self.app = create_app(self.config, self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def usage_log(self) -> list[dict[str, Any]]:
        """One entry per answered request: what the emulator billed (live list)."""
        return self.state.ledger.entries

    def fail_next(self, status: int = 429, count: int = 1, deployment: str | None = None) -> None:
        """Fail the next ``count`` requests (to ``deployment``, or any) with ``status`` and Azure's body."""
        self.state.faults.add(status, count, deployment)

    def start(self) -> Self:
        if self._thread is not None:
            return self
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
                                access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="meter-emulator", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
