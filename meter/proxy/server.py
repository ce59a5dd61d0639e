"""Serving the proxy with uvicorn: in a background thread (``ProxyServer``) or in the foreground (the CLI).

uvicorn is told to add nothing: no ``server`` or ``date`` header (the upstream's
own pass through) and no access log, since uvicorn's would print query
strings; the proxy writes its own access line (logger ``meter.proxy``).
uvicorn is imported only when a server starts, so ``meter --help`` works
without it (it comes with ``pip install meter[emulator]``).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from meter.meter import Meter
from meter.proxy.app import ProxyApp

if TYPE_CHECKING:
    import uvicorn

_START_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 5.0


def uvicorn_config(app: ProxyApp, **options: Any) -> uvicorn.Config:
    """uvicorn settings that keep the proxy transparent and quiet about secrets."""
    import uvicorn

    return uvicorn.Config(app, access_log=False, server_header=False, date_header=False, lifespan="on",
                          timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S), **options)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port=0``: a free one), bound before the server thread starts so the port is known."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


class ProxyServer:
    """A running proxy on ``host:port`` in a background thread; a context manager, for tests and embedding.

    ``port=0`` picks a free port; ``url`` is the address to point clients at.
    Keyword ``options`` go to ``ProxyApp`` (``max_concurrency``, ``connect_timeout``,
    ``read_timeout``, ``queue_timeout``, ``max_request_bytes``, ``transport``).
    It does not touch logging configuration (uvicorn's ``log_config`` is off).
    """

    def __init__(self, upstream: str, meter: Meter | None = None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> None:
        self.app = ProxyApp(upstream, meter, **options)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def meter(self) -> Meter:
        return self.app.meter

    def start(self) -> Self:
        import uvicorn

        if self._thread is not None:
            return self
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(self.app, log_config=None))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="meter-proxy", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("the proxy did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=GRACEFUL_SHUTDOWN_S + 5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
