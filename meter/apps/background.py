"""Running a uvicorn server in a background thread on a socket bound up front.

Shared by the embedded emulator and the proxy's ``ProxyServer``. The socket is
bound before the thread starts, so ``port=0`` yields a free port whose number
is known at once, and ``start`` returns only when uvicorn accepts connections.
uvicorn is imported here only when a server is built.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

START_TIMEOUT_S = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``0``: a free port, read it from ``getsockname``).

    It listens at once, so clients that connect before uvicorn is serving wait
    in the backlog instead of being refused.
    """
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets whose
    # ``proto`` says TCP. Without it a response written in two pieces (head, then body) waited
    # for the client's delayed ACK: 40 ms on every keep-alive request after the first.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class BackgroundServer:
    """One uvicorn server in a daemon thread; ``config`` builds its ``uvicorn.Config`` when it starts."""

    def __init__(self, config: Callable[[], uvicorn.Config], host: str, port: int, name: str,
                 join_timeout_s: float = 5.0) -> None:
        self._config = config
        self.host = host
        self.port = port
        self.name = name
        self.join_timeout_s = join_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        import uvicorn

        if self._thread is not None:
            return
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(self._config())
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=self.join_timeout_s)
